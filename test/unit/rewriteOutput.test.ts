import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { extractRewrittenCode, RewriteCodeStream } from "../../sidecar/rewriteOutput.js";

const code = "function add(a: number, b: number): number {\n    return a + b;\n}";

// [name, model output, expected code]
const cases: Array<[string, string, string]> = [
    ["bare fence", "```\n" + code + "\n```", code],
    ["fence with language", "```typescript\n" + code + "\n```", code],
    ["fence with language and trailing spaces", "```ts   \n" + code + "\n```   ", code],
    ["prose before", "Here is the rewritten code:\n\n```ts\n" + code + "\n```", code],
    ["prose after", "```ts\n" + code + "\n```\n\nThis version adds explicit types.", code],
    [
        "prose before and after",
        "Sure! Here you go:\n```ts\n" + code + "\n```\nI simplified the loop.\nLet me know!",
        code,
    ],
    ["tilde fence", "~~~ts\n" + code + "\n~~~", code],
    [
        "longer fence around code containing a fence",
        "````markdown\n# Title\n```js\nx()\n```\n````",
        "# Title\n```js\nx()\n```",
    ],
    ["unclosed fence (cut off)", "```ts\n" + code, code],
    [
        "unclosed fence after prose",
        "Here it is:\n```python\ndef f():\n    return 1\n",
        "def f():\n    return 1\n",
    ],
    [
        "two blocks: the longer one is the code",
        "```ts\nconst x = 1;\n```\nand usage:\n```ts\n" + code + "\n```",
        code,
    ],
    ["indentation kept exactly", "```py\n    if x:\n\t\treturn y\n```", "    if x:\n\t\treturn y"],
    [
        "trailing whitespace inside the code kept",
        "```\nline one   \nline two\t\n```",
        "line one   \nline two\t",
    ],
    ["blank lines inside the code kept", "```\na\n\n\nb\n```", "a\n\n\nb"],
    [
        "CRLF line endings",
        "```ts\r\nconst a = 1;\r\nconst b = 2;\r\n```\r\n",
        "const a = 1;\nconst b = 2;",
    ],
    ["empty block", "```ts\n```", ""],
    ["no fence: plain code", code, code],
    ["no fence: lead-in line dropped", "Here is the updated code:\n" + code, code],
    [
        "no fence: trailing prose paragraph dropped",
        code + "\n\nThis keeps the behaviour the same.",
        code,
    ],
    [
        "no fence: code mentioning 'this' inside kept",
        "class A {\n    run() { return this.x; }\n}",
        "class A {\n    run() { return this.x; }\n}",
    ],
    ["fence indented by up to three spaces", "   ```js\nlet a;\n   ```", "let a;"],
    [
        "inline backticks in prose are not fences",
        "Use `map` instead:\n```js\nxs.map(f)\n```",
        "xs.map(f)",
    ],
    ["language with a dash or plus", "```c++\nint main() {}\n```", "int main() {}"],
    ["closing fence longer than the opening", "```\nx = 1\n`````", "x = 1"],
];

describe("unit: rewrite output parsing", () => {
    for (const [name, output, expected] of cases) {
        test(name, () => assert.equal(extractRewrittenCode(output), expected));
    }

    test(`covers at least 20 cases (${cases.length})`, () => assert.ok(cases.length >= 20));
});

describe("unit: rewrite code stream", () => {
    const stream = (chunks: string[]) => {
        const s = new RewriteCodeStream();
        let shown = "";
        const apply = (d?: { text: string; replace?: true }) => {
            if (d) shown = d.replace ? d.text : shown + d.text;
        };
        for (const c of chunks) apply(s.push(c));
        const done = s.finish();
        apply(done.delta);
        return { shown, code: done.code };
    };

    test("token-sized chunks end with exactly the parsed code", () => {
        const answer = "Here is the code:\n```ts\n" + code + "\n```\nDone.";
        const chunks = answer.match(/.{1,3}/gs)!;
        const { shown, code: final } = stream(chunks);
        assert.equal(final, code);
        assert.equal(shown, code);
    });

    test("a fence appearing after unfenced text replaces what was shown", () => {
        const { shown } = stream(["Sure\n", "Here it is:\n", "```js\n", "let a = 1;\n", "```\n"]);
        assert.equal(shown, "let a = 1;");
    });

    test("a closing fence split across chunks never shows up in the code", () => {
        const s = new RewriteCodeStream();
        const seen: string[] = [];
        for (const c of ["```\n", "a\n", "``", "`\n", "tail"]) {
            const d = s.push(c);
            if (d) seen.push(d.text);
        }
        assert.ok(!seen.join("").includes("`"), JSON.stringify(seen));
    });
});
