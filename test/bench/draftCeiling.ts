// What drafts can gain on this machine at most: node-llama-cpp alone checks a whole draft (the
// longest the sidecar sends, plus the step's own token) in one batch, with a token sampled at
// every position as drafting needs, against as many one-token steps. A draft accepted whole
// decodes at that batch's rate, so the ratio bounds what the copying rewrite can show; on a CPU it
// is close to prefill over decode, less the logits every drafted position costs.
import type { Llama, LlamaContextSequence, Token } from "node-llama-cpp";
import { createContext, type SideSettings } from "./baselineSide.js";
import { spread, type Spread } from "./stats.js";

const CONTEXT_TOKENS = 256;
const ROUNDS = 3;

export interface DraftCeiling {
    draftTokens: number;
    /** One one-token step, ms. */
    stepMs?: Spread;
    /** One batch of draftTokens + 1 tokens, ms. */
    batchMs?: Spread;
    /** Tokens per second in the batch over tokens per second one at a time, per round. */
    ratio?: Spread;
}

export async function measureDraftCeiling(
    llama: Llama,
    settings: SideSettings,
    draftTokens: number,
    log: (line: string) => void,
): Promise<DraftCeiling> {
    const model = await llama.loadModel({ modelPath: settings.modelPath, gpuLayers: "auto" });
    try {
        const context = await createContext(model, settings);
        const sequence = context.getSequence();
        const text = "function add(a, b) { return a + b; }\n".repeat(64);
        const tokens = model.tokenize(text).slice(0, CONTEXT_TOKENS + draftTokens + 1);
        if (tokens.length < CONTEXT_TOKENS + draftTokens + 1)
            throw new Error("draft ceiling: the text is too short for the measurement");
        await sequence.controlledEvaluate(tokens.slice(0, CONTEXT_TOKENS));
        const checked = tokens.slice(CONTEXT_TOKENS);
        const steps: number[] = [];
        const batches: number[] = [];
        for (let round = 0; round < ROUNDS; round++) {
            const order = round % 2 === 0 ? ["steps", "batch"] : ["batch", "steps"];
            for (const kind of order) {
                const started = performance.now();
                if (kind === "steps") {
                    for (const token of checked) await evaluateSampled(sequence, [token]);
                    steps.push((performance.now() - started) / checked.length);
                } else {
                    await evaluateSampled(sequence, checked);
                    batches.push(performance.now() - started);
                }
                await sequence.eraseContextTokenRanges([
                    { start: CONTEXT_TOKENS, end: CONTEXT_TOKENS + checked.length },
                ]);
            }
        }
        log(`draft ceiling: ${ROUNDS} rounds done`);
        return {
            draftTokens,
            stepMs: spread(steps),
            batchMs: spread(batches),
            ratio: spread(steps.map((step, i) => (step * checked.length) / batches[i])),
        };
    } finally {
        await model.dispose();
    }
}

/** Evaluates `tokens` in one batch with a token sampled after each, as a drafted step does. */
async function evaluateSampled(sequence: LlamaContextSequence, tokens: Token[]): Promise<void> {
    await sequence.controlledEvaluate(
        tokens.map((token) => [token, { generateNext: { token: true } }] as const),
    );
}
