// Prompt-lookup (input-lookup) speculative decoding for rewrites. A rewrite mostly copies the code
// it was given: when the last generated token also occurs in the user's message, the token that
// followed it there is proposed as a draft, and the model checks the draft in the same batch as its
// next step. Accepted drafts save a decode step; every token is still the model's own choice. The
// choice is made from logits computed in a batch of two instead of one, though, and llama.cpp's
// results are not always bitwise the same for both (see PROMPT_LOOKUP_FOR_REWRITES).
import { InputLookupTokenPredictor, type LlamaContextSequence } from "node-llama-cpp";
import type { Usage } from "./protocol.js";

/**
 * Whether rewrites use prompt lookup when the request does not say. Off: greedy output is the same
 * token for token as plain decoding's only where a token's logits do not depend on the batch it was
 * computed in. On the CPU that holds with one thread, or with flash attention off, but not with
 * flash attention (node-llama-cpp's default) and two or more threads: for a one-token batch over
 * 512 or more cache cells, llama.cpp splits the attention across threads and merges the parts, a
 * different order of sums than a two-token batch's, so a near tie can go the other way. The GPU
 * backends choose kernels by batch size as well (not checked here). test/model/speculative.test.ts
 * shows both, and fails if this is turned on while the difference remains. Rewrites that sample
 * (temperature > 0) never use it, so that a seed means the same thing everywhere.
 */
export const PROMPT_LOOKUP_FOR_REWRITES = false;

/**
 * Draft tokens per step. node-llama-cpp 3.21.1 validates only the first draft token of a batch: it
 * compares the later ones with a list it never fills, so they are always refuted. Longer drafts
 * would cost compute and never be accepted.
 */
const DRAFT_TOKENS = 1;

export function promptLookupPredictor(): InputLookupTokenPredictor {
    return new InputLookupTokenPredictor({ predictionLength: { max: DRAFT_TOKENS } });
}

export type PredictionCounts = LlamaContextSequence["tokenPredictions"];

/**
 * Tokens generated since the counts `before` were taken. The sequence's token meter counts one
 * output per position with logits, so a drafted position (accepted or not) counts although it
 * produced no token yet, and a used draft's token was already counted at its own position.
 */
export function generatedTokens(
    sequence: LlamaContextSequence,
    meteredBefore: number,
    before: PredictionCounts,
): number {
    const now = sequence.tokenPredictions;
    const metered = sequence.tokenMeter.usedOutputTokens - meteredBefore;
    return (
        metered -
        (now.validated - before.validated) -
        (now.refuted - before.refuted) +
        (now.used - before.used)
    );
}

/** The draft figures for `usage`, present only when the sequence decodes with a predictor. */
export function draftUsage(
    sequence: LlamaContextSequence,
    before: PredictionCounts,
): Pick<Usage, "draftTokens" | "acceptedDraftTokens"> {
    if (!sequence.tokenPredictor) return {};
    const now = sequence.tokenPredictions;
    const accepted = now.validated - before.validated;
    return { draftTokens: accepted + now.refuted - before.refuted, acceptedDraftTokens: accepted };
}
