// olmo/rewrite with and without prompt-lookup drafts through the real sidecar: on unless
// `speculative: false`, greedy unless a temperature is sent, the same answer (one thread: see
// sidecar/speculation.ts), sampled rewrites drafted too, draft figures in the usage, and chat
// beside it unchanged (plain decoding, its KV cache kept); Explain and chat with drafts only when asked.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ErrorCodes, type RewriteParams } from "../../sidecar/protocol.js";
import { SidecarProcess } from "../support/sidecarProcess.js";
import { ensureTestModel } from "../support/models.js";

const code = "function add(a, b) {\n  return a + b;\n}\n".repeat(3);

describe("sidecar: speculative rewrite", () => {
    let sidecar: SidecarProcess;
    const rewrite = (params: Partial<RewriteParams>) =>
        sidecar.task("olmo/rewrite", {
            code,
            language: "javascript",
            instruction: "Add comments",
            sampling: { maxTokens: 64 },
            ...params,
        });

    before(async () => {
        ({ sidecar } = await SidecarProcess.start());
        await sidecar.request("olmo/load", {
            modelPath: await ensureTestModel("tiny"),
            gpu: "cpu",
            contextSize: 2048,
            threads: 1,
            sequences: 2,
        });
    });
    after(() => sidecar?.stop());

    test("a rewrite drafts unless told not to", async () => {
        assert.equal(typeof (await rewrite({})).result.usage.draftTokens, "number");
        assert.equal((await rewrite({ speculative: false })).result.usage.draftTokens, undefined);
    });

    test("a rewrite is greedy unless the request sends a temperature", async () => {
        // The sidecar draws a fresh seed per request: only greedy decoding repeats itself.
        const greedy = [await rewrite({}), await rewrite({})].map((r) => r.result.text);
        const sampled = await Promise.all(
            [1, 2].map(async (seed) => {
                const { result } = await rewrite({
                    sampling: { temperature: 0.7, seed, maxTokens: 64 },
                });
                return result.text;
            }),
        );
        assert.equal(greedy[1], greedy[0]);
        assert.notEqual(sampled[1], sampled[0]);
    });

    test("a greedy rewrite with drafts answers exactly as without", async () => {
        // The model's own answer appended to the code: its next answer partly copies it, so drafts are checked.
        const answer = (await rewrite({})).result.text;
        for (const input of [code, `${code}\n${answer}`]) {
            const plain = await rewrite({ code: input, speculative: false });
            const drafted = await rewrite({ code: input, speculative: true });
            assert.equal(drafted.result.text, plain.result.text);
            assert.equal(drafted.result.code, plain.result.code);
            assert.equal(drafted.shown, plain.shown);
            assert.equal(
                drafted.result.usage.completionTokens,
                plain.result.usage.completionTokens,
            );
            assert.equal(plain.result.usage.draftTokens, undefined);
            assert.equal(typeof drafted.result.usage.draftTokens, "number");
            assert.ok(
                drafted.result.usage.acceptedDraftTokens! <= drafted.result.usage.draftTokens!,
            );
            if (input !== code)
                assert.ok(
                    drafted.result.usage.acceptedDraftTokens! > 0,
                    "the copied answer was drafted",
                );
        }
    });

    test("a sampled rewrite takes drafts too", async () => {
        // A forced continuation that the code holds: the sample equals the draft at every position.
        const { result } = await rewrite({
            code: " x".repeat(80),
            language: "plaintext",
            sampling: { temperature: 0.8, seed: 3, maxTokens: 48, tokenBias: { " x": 50 } },
        });
        assert.ok(
            result.usage.acceptedDraftTokens! > 1,
            `${result.usage.acceptedDraftTokens} accepted`,
        );
        assert.equal(result.text, " x".repeat(result.usage.completionTokens));
    });

    test("chat around rewrites keeps plain decoding and its cache", async () => {
        const history = [{ role: "user" as const, content: "Hello there, how are you today?" }];
        const first = await sidecar.chat({
            conversationId: "chat",
            messages: history,
            sampling: { temperature: 0, maxTokens: 8 },
        });
        await rewrite({ speculative: true });
        const followUp = await sidecar.chat({
            conversationId: "chat",
            messages: [
                ...history,
                { role: "assistant", content: first.result.text },
                { role: "user", content: "And now?" },
            ],
            sampling: { temperature: 0, maxTokens: 8 },
        });
        // A new conversation takes the least recently used sequence: the rewrite's, which had drafts.
        const other = await sidecar.chat({
            conversationId: "other",
            messages: history,
            sampling: { temperature: 0, maxTokens: 8 },
        });
        assert.equal(first.result.usage.draftTokens, undefined);
        assert.equal(followUp.result.usage.draftTokens, undefined);
        assert.equal(other.result.usage.draftTokens, undefined);
        assert.equal(other.result.text, first.result.text);
        assert.ok(
            followUp.result.usage.reusedTokens > 0,
            "the follow-up reused the first turn's cache",
        );
    });

    test("Explain and chat draft only when asked", async () => {
        const explain = (speculative?: boolean) =>
            sidecar.task("olmo/explain", {
                conversationId: `explain-${String(speculative)}`,
                code,
                language: "javascript",
                sampling: { temperature: 0, maxTokens: 16 },
                speculative,
            });
        const chat = (speculative?: boolean) =>
            sidecar.chat({
                conversationId: `chat-${String(speculative)}`,
                messages: [{ role: "user", content: code }],
                sampling: { temperature: 0, maxTokens: 16 },
                speculative,
            });
        assert.equal((await explain()).result.usage.draftTokens, undefined);
        assert.equal(typeof (await explain(true)).result.usage.draftTokens, "number");
        assert.equal((await chat()).result.usage.draftTokens, undefined);
        assert.equal(typeof (await chat(true)).result.usage.draftTokens, "number");
    });

    test("speculative must be a boolean", async () => {
        await assert.rejects(
            sidecar.request("olmo/rewrite", {
                code,
                language: "javascript",
                instruction: "x",
                speculative: "yes" as unknown as boolean,
            }),
            (error: { code?: number }) => error.code === ErrorCodes.invalidParams,
        );
    });
});
