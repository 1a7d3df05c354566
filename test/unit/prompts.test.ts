import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { explainPrompt, fenceFor, languageName, rewritePrompt } from "../../sidecar/prompts.js";

describe("unit: explain and rewrite prompts", () => {
    test("explain: exact text with language, file and lines", () => {
        assert.equal(
            explainPrompt({
                code: "const x = 1;\n",
                language: "typescript",
                fileName: "src/a.ts",
                lines: "3-4",
            }),
            "Explain what this TypeScript code from src/a.ts (lines 3-4) does. Start with a one-sentence summary, " +
                "then walk through the important steps, then point out anything surprising or risky. Be concise.\n\n" +
                "```typescript\nconst x = 1;\n```",
        );
    });

    test("explain: a focus instruction is added; untitled files have no location", () => {
        assert.equal(
            explainPrompt({ code: "SELECT 1", language: "sql", instruction: "  performance " }),
            "Explain what this SQL code does. Start with a one-sentence summary, then walk through the important steps, " +
                "then point out anything surprising or risky. Be concise.\nFocus on: performance\n\n```sql\nSELECT 1\n```",
        );
    });

    test("rewrite: exact text asking for code only", () => {
        assert.equal(
            rewritePrompt({
                code: "def f(x):\n  return x*2",
                language: "python",
                fileName: "m.py",
                instruction: "Add types",
            }),
            "Rewrite this Python code from m.py.\nInstruction: Add types\n\n" +
                "Reply with only the complete rewritten code in one python code block. " +
                "No explanation before or after it. Keep the original indentation style.\n\n" +
                "```python\ndef f(x):\n  return x*2\n```",
        );
    });

    test("code containing fences gets a longer fence", () => {
        assert.equal(fenceFor("no ticks"), "```");
        assert.equal(fenceFor("has ``` inside"), "````");
        assert.equal(fenceFor("````` five"), "``````");
        const prompt = rewritePrompt({
            code: "```js\nx\n```",
            language: "markdown",
            instruction: "fix",
        });
        assert.ok(prompt.endsWith("````markdown\n```js\nx\n```\n````"));
    });

    test("language ids get readable names, unknown ones pass through", () => {
        assert.equal(languageName("typescriptreact"), "TypeScript (React)");
        assert.equal(languageName("zig"), "zig");
    });
});
