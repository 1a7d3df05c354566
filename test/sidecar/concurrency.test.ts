// Many requests at once through the real sidecar: streams stay apart, the queue limit refuses the
// excess with `busy`, a cancel frees the model for the next request, the user's own requests go
// before other extensions' (each of which may queue two), and a chat keeps its cache while a
// rewrite runs. Timings are printed as figures; speed targets belong to `npm run bench`.
// vscode-jsonrpc swallows exceptions thrown in `$/progress` handlers: callbacks only record.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { CancellationTokenSource, ResponseError } from "vscode-jsonrpc/node";
import { ErrorCodes, type ChatMessage, type ChatResult } from "../../sidecar/protocol.js";
import { MAX_QUEUED_PER_CALLER, MAX_QUEUED_REQUESTS } from "../../sidecar/scheduler.js";
import { SidecarProcess, type StreamedChat } from "../support/sidecarProcess.js";
import { ensureTestModel } from "../support/models.js";

const user = (content: string): ChatMessage => ({ role: "user", content });
/** Greedy, and the trigger token banned: the answer runs to maxTokens (no early EOS). */
const long = (maxTokens: number) => ({ temperature: 0, maxTokens, tokenBias: { "~": -100 } });

describe("sidecar: concurrency", () => {
    let sidecar: SidecarProcess;
    let modelPath: string;
    const latencies: number[] = [];

    before(async () => {
        modelPath = await ensureTestModel("tiny");
        ({ sidecar } = await SidecarProcess.start());
    });
    after(async () => {
        await sidecar?.stop();
        if (latencies.length > 0) {
            const sorted = [...latencies].sort((a, b) => a - b);
            console.log(
                `# cancel → next request's first delta (ms): ${latencies.map((l) => l.toFixed(1)).join(", ")}; ` +
                    `median ${sorted[Math.floor(sorted.length / 2)].toFixed(1)}, max ${sorted.at(-1)!.toFixed(1)}`,
            );
        }
    });

    test("20 chats across 3 conversations at once: own deltas only, in order per conversation, the excess refused with busy", async () => {
        await sidecar.request("olmo/load", {
            modelPath,
            gpu: "cpu",
            contextSize: 1024,
            threads: 1,
            sequences: 2,
        });
        const total = 20;
        const running = 2;
        const finishedOrder = new Map<string, number[]>();
        /** Answers (refusals and results) in the order they came back. */
        const answered: string[] = [];
        // The first two run long, so that all 20 have arrived before anything finishes.
        const outcomes = await Promise.all(
            Array.from({ length: total }, (_, i) => {
                const conversationId = `conversation-${i % 3}`;
                const sent = performance.now();
                return sidecar
                    .chat({
                        conversationId,
                        messages: [user(`Request ${i}: say something about the number ${i}.`)],
                        sampling: long(i < running ? 300 : 16),
                    })
                    .then(
                        (streamed) => {
                            answered.push(`served ${i}`);
                            finishedOrder.set(conversationId, [
                                ...(finishedOrder.get(conversationId) ?? []),
                                i,
                            ]);
                            return { i, streamed };
                        },
                        (error: unknown) => {
                            answered.push(`refused ${i}`);
                            return { i, error, ms: performance.now() - sent };
                        },
                    );
            }),
        );
        const refused = outcomes.filter((o) => "error" in o);
        const served = outcomes.filter(
            (o): o is { i: number; streamed: StreamedChat } => "streamed" in o,
        );
        for (const o of refused) {
            assert.ok(
                o.error instanceof ResponseError && o.error.code === ErrorCodes.busy,
                `request ${o.i}: ${String(o.error)}`,
            );
        }
        assert.ok(
            answered.slice(0, refused.length).every((a) => a.startsWith("refused")),
            `refusals come before any request finishes, not after waiting: ${answered.join(", ")}`,
        );
        assert.equal(
            refused.length,
            total - running - MAX_QUEUED_REQUESTS,
            "exactly the requests beyond the queue limit are refused",
        );
        for (const { i, streamed } of served) {
            assert.equal(
                streamed.deltas.join(""),
                streamed.result.text,
                `request ${i}: its deltas add up to its own text`,
            );
            assert.equal(streamed.result.stopReason, "maxTokens");
            assert.ok(streamed.result.text.length > 0);
        }
        for (const [conversationId, order] of finishedOrder) {
            assert.deepEqual(
                order,
                [...order].sort((a, b) => a - b),
                `${conversationId} finished in the order sent`,
            );
        }
        console.log(
            `# ${total} concurrent chats: ${served.length} served, ${refused.length} refused with busy (queue limit ${MAX_QUEUED_REQUESTS}, ${running} sequences), ` +
                `refusals answered in ${Math.max(...refused.map((o) => o.ms)).toFixed(0)} ms at most`,
        );
    });

    test("cancelling any subset frees the model at once: the next request starts right after", async () => {
        await sidecar.request("olmo/load", {
            modelPath,
            gpu: "cpu",
            contextSize: 1024,
            threads: 1,
            sequences: 1,
        });
        const count = 10;
        const cancels = Array.from({ length: count }, () => new CancellationTokenSource());
        // Waiting requests cancelled before they start: 2, 5 and 7 (of three conversations).
        const cancelledWhileWaiting = new Set([2, 5, 7]);
        let cancelSentAt: number | undefined;
        let started = 0;
        const firstDeltaOrder: number[] = [];
        const requests = cancels.map((cancel, i) =>
            sidecar.chat(
                {
                    conversationId: `c${i % 3}`,
                    messages: [user(`Question ${i}: write at length.`)],
                    sampling: long(600),
                },
                (_text, all) => {
                    if (all.length === 1) {
                        firstDeltaOrder.push(i);
                        if (cancelSentAt !== undefined)
                            latencies.push(performance.now() - cancelSentAt);
                        cancelSentAt = undefined;
                        started++;
                    }
                    // A few deltas in, cancel the running request; measure until the next one streams.
                    if (all.length === 3) {
                        cancelSentAt =
                            started < count - cancelledWhileWaiting.size
                                ? performance.now()
                                : undefined;
                        cancel.cancel();
                    }
                },
                cancel,
            ),
        );
        for (const i of cancelledWhileWaiting) cancels[i].cancel();
        const results = await Promise.all(
            requests.map((r, i) => r.then((streamed) => ({ i, streamed, at: performance.now() }))),
        );
        for (const { i, streamed } of results) {
            assert.equal(streamed.result.stopReason, "cancelled", `request ${i}`);
            assert.equal(streamed.deltas.join(""), streamed.result.text);
            if (cancelledWhileWaiting.has(i)) {
                assert.equal(streamed.deltas.length, 0, `request ${i} never ran`);
                assert.equal(streamed.result.usage.completionTokens, 0);
            } else {
                assert.ok(
                    streamed.deltas.length >= 3 && streamed.result.usage.completionTokens < 600,
                    `request ${i} ran, then stopped early`,
                );
            }
        }
        // Not at their turn: before even the first request (cancelled a few deltas in) has ended.
        for (const i of cancelledWhileWaiting)
            assert.ok(
                results[i].at < results[0].at,
                `cancelled waiting request ${i} was answered at once`,
            );
        // Per conversation, the requests that ran started in the order sent.
        for (const c of [0, 1, 2]) {
            const ran = firstDeltaOrder.filter((i) => i % 3 === c);
            assert.deepEqual(
                ran,
                [...ran].sort((a, b) => a - b),
            );
        }
        assert.equal(
            latencies.length,
            count - cancelledWhileWaiting.size - 1,
            "one measurement per hand-over",
        );
    });

    test("explain and rewrite wait behind a streaming chat, keep their own streams, and start at once when it is cancelled", async () => {
        await sidecar.request("olmo/load", {
            modelPath,
            gpu: "cpu",
            contextSize: 1024,
            threads: 1,
            sequences: 1,
        });
        const code = "function add(a, b) {\n  return a + b;\n}\n";
        let cancelSentAt: number | undefined;
        const measured: number[] = [];
        const chatCancel = new CancellationTokenSource();
        /** Every delta's request, in arrival order. */
        const streamed: string[] = [];
        const chat = sidecar.chat(
            {
                conversationId: "chat",
                messages: [user("Tell me a long story.")],
                sampling: long(600),
            },
            (_text, all) => {
                streamed.push("chat");
                if (all.length === 3) {
                    cancelSentAt = performance.now();
                    chatCancel.cancel();
                }
            },
            chatCancel,
        );
        const explain = sidecar.task(
            "olmo/explain",
            { conversationId: "explain", code, language: "javascript", sampling: long(600) },
            (_shown, n, cancel) => {
                streamed.push("explain");
                if (n === 1) measured.push(performance.now() - cancelSentAt!);
                if (n === 3) cancel.cancel();
            },
        );
        // Rewrite streams extracted code, which may lag the first token: it is checked for order, not timed.
        const rewrite = sidecar.task(
            "olmo/rewrite",
            {
                code,
                language: "javascript",
                instruction: "Add a comment",
                sampling: { maxTokens: 24 },
            },
            () => streamed.push("rewrite"),
        );
        const [c, e, r] = await Promise.all([chat, explain, rewrite]);
        const runs = streamed.filter((name, i) => name !== streamed[i - 1]);
        assert.deepEqual(
            runs,
            ["chat", "explain", "rewrite"],
            "one request streams at a time on the one sequence, in the order sent",
        );
        assert.ok(streamed.filter((n) => n === "chat").length >= 3);
        assert.equal(c.result.stopReason, "cancelled");
        assert.equal(c.deltas.join(""), c.result.text);
        assert.equal(e.result.stopReason, "cancelled");
        assert.equal(e.shown, e.result.text, "explain's deltas add up to its own text");
        assert.ok(e.result.prompt.includes(code));
        assert.equal(r.shown, r.result.code, "rewrite's deltas add up to its own code");
        assert.ok(r.result.usage.completionTokens > 0);
        assert.equal(measured.length, 1);
        latencies.push(...measured);
    });

    test("a result is what its request asked for: two conversations run side by side without mixing", async () => {
        await sidecar.request("olmo/load", {
            modelPath,
            gpu: "cpu",
            contextSize: 1024,
            threads: 1,
            sequences: 2,
        });
        const ask = (conversationId: string, content: string): Promise<ChatResult> =>
            sidecar
                .chat({
                    conversationId,
                    messages: [user(content)],
                    sampling: { ...long(32), seed: 1 },
                })
                .then((s) => s.result);
        const alone = [
            await ask("solo-a", "Alpha alpha alpha."),
            await ask("solo-b", "Beta beta beta."),
        ];
        const together = await Promise.all([
            ask("pair-a", "Alpha alpha alpha."),
            ask("pair-b", "Beta beta beta."),
        ]);
        assert.notEqual(alone[0].text, alone[1].text, "different prompts give different answers");
        assert.deepEqual(
            together.map((r) => r.text),
            alone.map((r) => r.text),
            "side by side, each gets the answer it gets alone",
        );
    });

    test(`the user's own requests go before other extensions'; an extension may queue ${MAX_QUEUED_PER_CALLER}, one more is refused with busy`, async () => {
        await sidecar.request("olmo/load", {
            modelPath,
            gpu: "cpu",
            contextSize: 1024,
            threads: 1,
            sequences: 1,
        });
        const firstDeltas: string[] = [];
        const holdCancel = new CancellationTokenSource();
        const ask = (name: string, caller?: string) =>
            sidecar.chat(
                {
                    conversationId: name,
                    messages: [user(`${name}: a short answer.`)],
                    sampling: long(4),
                    caller,
                },
                (_text, all) => {
                    if (all.length === 1) firstDeltas.push(name);
                },
            );
        let holdStreaming!: () => void;
        const holdStreamed = new Promise<void>((resolve) => (holdStreaming = resolve));
        const hold = sidecar.chat(
            { conversationId: "hold", messages: [user("Write at length.")], sampling: long(600) },
            (_text, all) => {
                if (all.length === 1) {
                    firstDeltas.push("hold");
                    holdStreaming();
                }
            },
            holdCancel,
        );
        // Sent in this order; requests are taken in the order they arrive, so when the last is
        // refused, every one before it waits.
        const waiting = [
            ask("lm-a1", "ext.a"),
            ask("lm-a2", "ext.a"),
            ask("lm-b1", "ext.b"),
            ask("chat", undefined),
        ];
        const refusal = await ask("lm-a3", "ext.a").then(
            () => undefined,
            (error: unknown) => error,
        );
        await holdStreamed;
        holdCancel.cancel();
        const results = await Promise.all([hold, ...waiting]);
        assert.ok(
            refusal instanceof ResponseError && refusal.code === ErrorCodes.busy,
            `the third waiting request of one extension is refused: ${String(refusal)}`,
        );
        assert.match(refusal.message, /ext\.a already has 2 requests waiting/);
        assert.equal(results[0].result.stopReason, "cancelled");
        for (const { result } of results.slice(1)) assert.equal(result.stopReason, "maxTokens");
        assert.deepEqual(
            firstDeltas,
            ["hold", "chat", "lm-a1", "lm-a2", "lm-b1"],
            "the user's chat first, then the extensions' requests in the order sent",
        );
    });

    test("a chat keeps its cache while a rewrite runs between two turns (two sequences by default)", async () => {
        const info = await sidecar.request("olmo/load", {
            modelPath,
            gpu: "cpu",
            contextSize: 1024,
            threads: 1,
        });
        assert.equal(info.sequences, 2, "room for a second conversation's cache");
        const first = [user("Tell me about rivers.")];
        const turn1 = (
            await sidecar.chat({ conversationId: "a", messages: first, sampling: long(16) })
        ).result;
        const rewrite = await sidecar.task(
            "olmo/rewrite",
            { code: "let x = 1;\n", language: "javascript", instruction: "Rename x" },
            () => undefined,
        );
        assert.ok(rewrite.result.usage.completionTokens > 0);
        const followUp = [
            ...first,
            { role: "assistant" as const, content: turn1.text },
            user("And lakes?"),
        ];
        const turn2 = (
            await sidecar.chat({ conversationId: "a", messages: followUp, sampling: long(4) })
        ).result;
        assert.ok(
            turn2.usage.reusedTokens >= turn1.usage.promptTokens,
            `the follow-up reused ${turn2.usage.reusedTokens} tokens; the first prompt had ${turn1.usage.promptTokens}`,
        );
    });

    test("with one sequence, a conversation's state is saved when another takes it and restored at its next turn", async () => {
        await sidecar.request("olmo/load", {
            modelPath,
            gpu: "cpu",
            contextSize: 1024,
            threads: 1,
            sequences: 1,
        });
        const firstA = [user("Tell me about rivers.")];
        const turnA = (
            await sidecar.chat({ conversationId: "a", messages: firstA, sampling: long(16) })
        ).result;
        const turnB = (
            await sidecar.chat({
                conversationId: "b",
                messages: [user("Something else entirely.")],
                sampling: long(16),
            })
        ).result;
        assert.ok(turnB.usage.reusedTokens < turnA.usage.promptTokens, "b started afresh");
        const followUp = (
            await sidecar.chat({
                conversationId: "a",
                messages: [
                    ...firstA,
                    { role: "assistant", content: turnA.text },
                    user("And lakes?"),
                ],
                sampling: long(4),
            })
        ).result;
        assert.ok(
            followUp.usage.reusedTokens >= turnA.usage.promptTokens,
            `a's follow-up reused ${followUp.usage.reusedTokens} tokens; its first prompt had ${turnA.usage.promptTokens}`,
        );
    });

    test("a request cancelled before its first token ends as cancelled, not as an error", async () => {
        await sidecar.request("olmo/load", {
            modelPath,
            gpu: "cpu",
            contextSize: 1024,
            threads: 1,
            sequences: 1,
        });
        // Cancelled at once, while waiting, while its prompt is evaluated: each ends the same way.
        const outcomes: string[] = [];
        for (const delayMs of [0, 2, 5, 10]) {
            const cancel = new CancellationTokenSource();
            const request = sidecar.chat(
                {
                    conversationId: `prefill-${delayMs}`,
                    messages: [user("word ".repeat(500))],
                    sampling: long(50),
                },
                undefined,
                cancel,
            );
            setTimeout(() => cancel.cancel(), delayMs);
            outcomes.push(
                await request.then(
                    ({ result, deltas }) =>
                        `${result.stopReason}${deltas.join("") === result.text ? "" : " (deltas differ)"}`,
                    (error: unknown) => String(error),
                ),
            );
        }
        assert.deepEqual(outcomes, ["cancelled", "cancelled", "cancelled", "cancelled"]);
    });
});
