// The scheduling section of `npm run bench`, on the product as the extension loads it (the
// engine's default sequences, no `sequences` sent):
// - a chat's follow-up after a rewrite ran between its two turns, against the same follow-up
//   without it (target: within 20%), each round a fresh sidecar, the order alternating;
// - the first turn of a new conversation with no warm-up at all, in one sidecar, against
//   node-llama-cpp with a fresh context each round (target: ≥ 98% of its prefill rate).
import type { Llama } from "node-llama-cpp";
import type { ChatMessage } from "../../sidecar/protocol.js";
import { SidecarProcess } from "../support/sidecarProcess.js";
import { BaselineSide, type SideSettings } from "./baselineSide.js";
import { formatRatio, formatSpread } from "./report.js";
import { spread, type Spread } from "./stats.js";
import { FOLLOW_UP_QUESTION, FOLLOW_UP_TOKENS, GREEDY } from "./workload.js";

export const INTERLEAVE_ROUNDS = 3;
export const NEW_CONVERSATION_ROUNDS = 7;
/** Tokens of the first answer, which the follow-up sends back. */
const FIRST_ANSWER_TOKENS = 16;
const REWRITE = {
    code: "export function add(a: number, b: number): number {\n    return a + b;\n}\n",
    language: "typescript",
    instruction: "Add a doc comment",
    sampling: { ...GREEDY, maxTokens: 32 },
};

interface Turn {
    timeToFirstTokenMs: number;
    promptTokens: number;
    reusedTokens: number;
}

export interface InterleaveRound {
    round: number;
    order: string[];
    sequences: number;
    plain: Turn;
    interleaved: Turn;
}

export interface NewConversationRound {
    round: number;
    order: string[];
    baseline: Turn;
    product: Turn;
}

export interface InterleaveResult {
    followUps: InterleaveRound[];
    newConversations: NewConversationRound[];
}

type Log = (line: string) => void;

async function startSidecar(settings: SideSettings): Promise<{
    sidecar: SidecarProcess;
    sequences: number;
}> {
    const { sidecar } = await SidecarProcess.start();
    const info = await sidecar.request("olmo/load", {
        modelPath: settings.modelPath,
        gpu: settings.gpu,
        gpuLayers: "auto",
        contextSize: settings.contextSize,
        threads: settings.threads,
    });
    return { sidecar, sequences: info.sequences };
}

/** One chat turn through the sidecar, timed from sending to the first delta. */
async function productTurn(
    sidecar: SidecarProcess,
    conversationId: string,
    messages: ChatMessage[],
    maxTokens: number,
): Promise<Turn & { text: string }> {
    const sent = performance.now();
    let firstAt: number | undefined;
    const { result } = await sidecar.chat(
        { conversationId, messages, sampling: { ...GREEDY, maxTokens } },
        () => (firstAt ??= performance.now()),
    );
    if (firstAt === undefined) throw new Error(`no text streamed\n${sidecar.stderr}`);
    return {
        text: result.text,
        timeToFirstTokenMs: firstAt - sent,
        promptTokens: result.usage.promptTokens,
        reusedTokens: result.usage.reusedTokens,
    };
}

export async function runInterleave(
    llama: Llama,
    settings: SideSettings,
    prompt: string,
    log: Log,
): Promise<InterleaveResult> {
    const opening: ChatMessage[] = [{ role: "user", content: prompt }];
    const followUps: InterleaveRound[] = [];
    for (let round = 0; round < INTERLEAVE_ROUNDS; round++) {
        const order = round % 2 === 0 ? ["plain", "interleaved"] : ["interleaved", "plain"];
        const { sidecar, sequences } = await startSidecar(settings);
        try {
            const turns: Record<string, Turn> = {};
            for (const variant of order) {
                const id = `${variant}-${round}`;
                const first = await productTurn(sidecar, id, opening, FIRST_ANSWER_TOKENS);
                if (variant === "interleaved") await sidecar.task("olmo/rewrite", REWRITE);
                turns[variant] = await productTurn(
                    sidecar,
                    id,
                    [
                        ...opening,
                        { role: "assistant", content: first.text },
                        { role: "user", content: FOLLOW_UP_QUESTION },
                    ],
                    FOLLOW_UP_TOKENS,
                );
            }
            followUps.push({
                round: round + 1,
                order,
                sequences,
                plain: turns.plain,
                interleaved: turns.interleaved,
            });
            log(
                `interleave round ${round + 1}: follow-up TTFT ${turns.plain.timeToFirstTokenMs.toFixed(0)} ms plain, ` +
                    `${turns.interleaved.timeToFirstTokenMs.toFixed(0)} ms after a rewrite (${sequences} sequences)`,
            );
        } finally {
            await sidecar.stop();
        }
    }

    const newConversations: NewConversationRound[] = [];
    const { sidecar } = await startSidecar(settings);
    const model = await llama.loadModel({ modelPath: settings.modelPath, gpuLayers: "auto" });
    try {
        for (let round = 0; round < NEW_CONVERSATION_ROUNDS; round++) {
            const order = round % 2 === 0 ? ["baseline", "product"] : ["product", "baseline"];
            const turns: Record<string, Turn> = {};
            for (const side of order) {
                if (side === "product") {
                    turns.product = await productTurn(
                        sidecar,
                        `new-${round}`,
                        opening,
                        FOLLOW_UP_TOKENS,
                    );
                } else {
                    const bare = await BaselineSide.onModel(model, settings);
                    try {
                        turns.baseline = await bare.chat({
                            conversationId: `new-${round}`,
                            messages: opening,
                            maxTokens: FOLLOW_UP_TOKENS,
                        });
                    } finally {
                        await bare.stop();
                    }
                }
            }
            newConversations.push({
                round: round + 1,
                order,
                baseline: turns.baseline,
                product: turns.product,
            });
        }
        log(`new conversations without warm-up: ${NEW_CONVERSATION_ROUNDS} rounds done`);
    } finally {
        await sidecar.stop();
        await model.dispose();
    }
    return { followUps, newConversations };
}

export interface InterleaveSummary {
    plainFollowUpMs?: Spread;
    interleavedFollowUpMs?: Spread;
    /** Interleaved over plain, per round. */
    followUpRatio?: Spread;
    plainReused?: Spread;
    interleavedReused?: Spread;
    sequences: number[];
    baselinePrefill?: Spread;
    productPrefill?: Spread;
    /** Product over baseline prefill rate, per round. */
    prefillRatio?: Spread;
}

const prefill = (t: Turn) => t.promptTokens / (t.timeToFirstTokenMs / 1000);

export function summarizeInterleave(result: InterleaveResult): InterleaveSummary {
    const f = result.followUps;
    const n = result.newConversations;
    return {
        plainFollowUpMs: spread(f.map((r) => r.plain.timeToFirstTokenMs)),
        interleavedFollowUpMs: spread(f.map((r) => r.interleaved.timeToFirstTokenMs)),
        followUpRatio: spread(
            f.map((r) => r.interleaved.timeToFirstTokenMs / r.plain.timeToFirstTokenMs),
        ),
        plainReused: spread(f.map((r) => r.plain.reusedTokens)),
        interleavedReused: spread(f.map((r) => r.interleaved.reusedTokens)),
        sequences: [...new Set(f.map((r) => r.sequences))],
        baselinePrefill: spread(n.map((r) => prefill(r.baseline))),
        productPrefill: spread(n.map((r) => prefill(r.product))),
        prefillRatio: spread(n.map((r) => prefill(r.product) / prefill(r.baseline))),
    };
}

export function interleaveMarkdown(s: InterleaveSummary): string {
    const followUpOk = (s.followUpRatio?.median ?? Infinity) <= 1.2;
    const prefillOk = (s.prefillRatio?.median ?? 0) >= 0.98;
    return [
        `Scheduling and cache (the product as the extension loads it: ${s.sequences.join("/")} sequences; median (min–max)):`,
        "",
        "| Figure | Without | With | With / without, per round |",
        "|---|---|---|---|",
        `| Chat follow-up TTFT, ms: without / with a rewrite between the turns (${INTERLEAVE_ROUNDS} rounds) | ${formatSpread(s.plainFollowUpMs, 0)} | ${formatSpread(s.interleavedFollowUpMs, 0)} | ${formatRatio(s.followUpRatio)} |`,
        `| Follow-up tokens reused from the cache | ${formatSpread(s.plainReused, 0)} | ${formatSpread(s.interleavedReused, 0)} | — |`,
        `| First turn of a new conversation, prefill tok/s, no warm-up: bare node-llama-cpp (fresh context) / product (${NEW_CONVERSATION_ROUNDS} rounds) | ${formatSpread(s.baselinePrefill, 1)} | ${formatSpread(s.productPrefill, 1)} | ${formatRatio(s.prefillRatio)} |`,
        "",
        `- ${followUpOk ? "PASS" : "MISS"} Follow-up after an interleaved rewrite within 20% of the same follow-up without it: median ${formatRatio(s.followUpRatio)}`,
        `- ${prefillOk ? "PASS" : "MISS"} First turn of a new conversation without warm-up ≥ 98% of bare node-llama-cpp: median ${formatRatio(s.prefillRatio)}`,
    ].join("\n");
}
