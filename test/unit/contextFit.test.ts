import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ContextOverflowError, fitToContext } from "../../sidecar/contextFit.js";
import type { ChatMessage } from "../../sidecar/protocol.js";

// One token per character plus 3 per message: enough to exercise the policy without a model.
const count = (messages: readonly ChatMessage[]) =>
    messages.reduce((n, m) => n + m.content.length + 3, 1);
const msg = (role: ChatMessage["role"], content: string): ChatMessage => ({ role, content });

describe("unit: fitting history into the context", () => {
    test("keeps everything when it fits", () => {
        const messages = [
            msg("system", "sys"),
            msg("user", "hello"),
            msg("assistant", "hi"),
            msg("user", "again"),
        ];
        const fit = fitToContext(messages, 1000, count);
        assert.deepEqual(fit.kept, messages);
        assert.deepEqual(fit.droppedIndices, []);
        assert.equal(fit.promptTokens, count(messages));
    });

    test("drops the oldest exchanges first, keeping the system prompt and the newest turn", () => {
        const messages = [
            msg("system", "S"),
            msg("user", "u1".repeat(10)),
            msg("assistant", "a1".repeat(10)),
            msg("user", "u2".repeat(10)),
            msg("assistant", "a2".repeat(10)),
            msg("user", "newest"),
        ];
        const budget = count([messages[0], messages[3], messages[4], messages[5]]);
        const fit = fitToContext(messages, budget, count);
        assert.deepEqual(fit.droppedIndices, [1, 2]);
        assert.deepEqual(fit.kept, [messages[0], messages[3], messages[4], messages[5]]);
        assert.ok(fit.promptTokens <= budget);
    });

    test("can drop everything but the system prompt and the newest message", () => {
        const messages = [
            msg("system", "S"),
            msg("user", "x".repeat(50)),
            msg("assistant", "y".repeat(50)),
            msg("user", "last"),
        ];
        const fit = fitToContext(messages, count([messages[0], messages[3]]), count);
        assert.deepEqual(fit.droppedIndices, [1, 2]);
        assert.equal(fit.kept.at(-1), messages[3]);
    });

    test("a single message larger than the context is an overflow error, never a silent cut", () => {
        const messages = [msg("user", "z".repeat(500))];
        assert.throws(
            () => fitToContext(messages, 100, count),
            (error: unknown) => {
                assert.ok(error instanceof ContextOverflowError);
                assert.equal(error.availableTokens, 100);
                assert.equal(error.neededTokens, count(messages));
                assert.match(error.message, /needs \d+ tokens but only 100 fit/);
                return true;
            },
        );
    });

    test("the system prompt plus the newest turn too large is an overflow too", () => {
        const messages = [
            msg("system", "s".repeat(200)),
            msg("user", "old"),
            msg("assistant", "old"),
            msg("user", "new"),
        ];
        assert.throws(() => fitToContext(messages, 100, count), ContextOverflowError);
    });

    test("an assistant message without a preceding user message is dropped with the first exchange", () => {
        const messages = [
            msg("assistant", "greeting".repeat(20)),
            msg("user", "q1"),
            msg("assistant", "a1"),
            msg("user", "q2"),
        ];
        const fit = fitToContext(messages, count(messages.slice(1)), count);
        assert.deepEqual(fit.droppedIndices, [0]);
    });
});
