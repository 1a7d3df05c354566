// olmo/explain and olmo/rewrite through the real sidecar on the generated model.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { SidecarProcess } from "../support/sidecarProcess.js";
import { ensureTestModel } from "../support/models.js";
import { explainPrompt } from "../../sidecar/prompts.js";
import { extractRewrittenCode } from "../../sidecar/rewriteOutput.js";

const code = "function add(a, b) {\n  return a + b;\n}\n";

describe("sidecar: explain and rewrite", () => {
    let sidecar: SidecarProcess;
    before(async () => {
        ({ sidecar } = await SidecarProcess.start());
        await sidecar.request("olmo/load", {
            modelPath: await ensureTestModel("tiny"),
            gpu: "cpu",
            contextSize: 1024,
            threads: 1,
        });
    });
    after(() => sidecar?.stop());

    test("explain builds the prompt in the sidecar, appends it to the history and streams the answer", async () => {
        const history = [
            { role: "user" as const, content: "hi" },
            { role: "assistant" as const, content: "hello" },
        ];
        const task = {
            conversationId: "explain",
            code,
            language: "javascript",
            fileName: "math.js",
            lines: "1-3",
        };
        const { result, shown, deltas } = await sidecar.task("olmo/explain", {
            ...task,
            history,
            sampling: { temperature: 0, maxTokens: 24 },
        });
        assert.equal(result.prompt, explainPrompt(task));
        assert.ok(deltas.length >= 2);
        assert.equal(shown, result.text);
        const counted = await sidecar.request("olmo/countTokens", {
            messages: [...history, { role: "user", content: result.prompt }],
        });
        assert.equal(result.usage.promptTokens, counted.tokens);
    });

    test("rewrite streams only code, and the deltas add up to the parsed code", async () => {
        const { result, shown } = await sidecar.task("olmo/rewrite", {
            code,
            language: "javascript",
            instruction: "Add comments",
            sampling: { maxTokens: 40 },
        });
        assert.equal(result.code, extractRewrittenCode(result.text));
        assert.equal(shown, result.code);
        assert.ok(result.usage.completionTokens > 0);
    });

    test("rewrite is greedy by default: the same request gives the same code", async () => {
        const ask = () =>
            sidecar.task("olmo/rewrite", {
                code,
                language: "javascript",
                instruction: "Simplify",
                sampling: { maxTokens: 24 },
            });
        assert.equal((await ask()).result.text, (await ask()).result.text);
    });

    test("cancelling a rewrite mid-stream returns the partial answer, marked cancelled", async () => {
        const { result, shown } = await sidecar.task(
            "olmo/rewrite",
            {
                code: code.repeat(8),
                language: "javascript",
                instruction: "Make it faster",
                sampling: { maxTokens: 400 },
            },
            (_shown, count, cancel) => {
                if (count === 2) cancel.cancel();
            },
        );
        assert.equal(result.stopReason, "cancelled");
        assert.ok(result.usage.completionTokens < 400);
        assert.equal(shown, result.code);
    });

    test("a selection too large for the context is refused with the token counts", async () => {
        await assert.rejects(
            sidecar.task("olmo/rewrite", {
                code: "let x = 1;\n".repeat(400),
                language: "javascript",
                instruction: "Simplify",
            }),
            (error: Error) => /needs \d+ tokens but only \d+ fit/.test(error.message),
        );
    });
});
