// Prompt-lookup (input-lookup) speculative decoding for rewrites. A rewrite mostly copies the code
// it was given: when the last generated tokens also occur in the user's message, the tokens that
// followed them there are proposed as a draft, and the model checks the whole draft in one batch
// with its next step. Each drafted position is sampled from the model's own logits and a draft
// token is kept only where that sample equals it, so every token is still the model's own choice,
// greedy or sampled. Needs patches/node-llama-cpp+3.21.1.patch: unpatched, node-llama-cpp refutes
// every draft token after the first.
import {
    InputLookupTokenPredictor,
    TokenPredictor,
    type LlamaContextSequence,
    type SequenceEvaluateOptions,
    type Token,
} from "node-llama-cpp";
import type { Usage } from "./protocol.js";

/**
 * Whether rewrites use prompt lookup when the request does not say. A drafted position's logits
 * come from a batch of several tokens, and llama.cpp's sums are not always bitwise those of a
 * one-token batch (flash attention with 2 or more CPU threads splits a one-token batch's attention
 * differently), so greedy output can differ from plain decoding's at a near tie of the two best
 * tokens, and only there (test/model/speculative.test.ts reports each case with its logit gap).
 */
export const PROMPT_LOOKUP_FOR_REWRITES = true;

/**
 * The longest draft. Drafting decodes at best at the batch (prefill) rate, less the logits each
 * drafted position needs: on the 1B shape, 1 thread, an Intel Xeon whose prefill ran 5.9× its
 * decode gave 3.4× with 16-token drafts, an AMD EPYC whose prefill runs 3.3–4× its decode 2.1×
 * with 32 (README, Performance). Longer drafts waste little: the backing off keeps refuted ones short.
 */
export const MAX_DRAFT_TOKENS = 32;
/** Drafts in a row with nothing accepted before drafting pauses. */
const FAILURES_BEFORE_PAUSE = 2;
/** Decode steps the first pause lasts; each further pause in a row lasts twice as long. */
const FIRST_PAUSE_STEPS = 4;
const LONGEST_PAUSE_STEPS = 64;
/** The first draft's length: a new answer has no record yet, and a refuted draft costs its length. */
const FIRST_DRAFT_TOKENS = 4;

/**
 * Prompt lookup whose draft length follows how the drafts fare: a draft accepted whole doubles
 * the next one (up to MAX_DRAFT_TOKENS), a draft refuted part way shrinks the next to what was
 * accepted plus one, and drafts that keep failing pause drafting for a growing number of steps.
 * Every refuted draft token costs compute (on the CPU a two-token step costs nearly two one-token
 * steps), so an answer that copies nothing stays near the speed of plain decoding.
 */
export class BackingOffLookupPredictor extends TokenPredictor {
    private readonly lookup = new InputLookupTokenPredictor({
        // One matching token is too weak a sign: an answer that copies nothing still shares single
        // tokens with the code (" x" in " x y"), and each such draft was refuted.
        patternLength: { min: 2 },
        predictionLength: { max: MAX_DRAFT_TOKENS },
    });
    private draftLength = FIRST_DRAFT_TOKENS;
    /** The last draft, and how many of its tokens the pushed tokens have matched so far. */
    private draft: Token[] = [];
    private matched = 0;
    private mismatched = false;
    private failuresInARow = 0;
    private pauseSteps = 0;
    private nextPause = FIRST_PAUSE_STEPS;

    reset(params: {
        targetSequence: LlamaContextSequence;
        stateTokens: Token[];
        evaluateOptions: Readonly<SequenceEvaluateOptions>;
    }): void {
        this.lookup.reset(params);
        this.draft = [];
        this.draftLength = FIRST_DRAFT_TOKENS;
        this.failuresInARow = 0;
        this.pauseSteps = 0;
        this.nextPause = FIRST_PAUSE_STEPS;
    }

    override updateInputTokens(tokens: Token[]): void {
        this.lookup.updateInputTokens(tokens);
    }

    pushTokens(tokens: Token[]): void {
        this.lookup.pushTokens(tokens);
        for (const token of tokens) {
            if (this.mismatched || this.matched >= this.draft.length) break;
            if (token === this.draft[this.matched]) this.matched++;
            else this.mismatched = true;
        }
    }

    predictTokens(): Token[] {
        this.settleLastDraft();
        if (this.pauseSteps > 0) {
            this.pauseSteps--;
            return [];
        }
        this.draft = this.lookup.predictTokens().slice(0, this.draftLength);
        this.matched = 0;
        this.mismatched = false;
        return this.draft;
    }

    override dispose(): void {
        this.lookup.dispose();
    }

    /** Adapts the draft length and the pause to what became of the last draft. */
    private settleLastDraft(): void {
        if (this.draft.length === 0) return;
        const accepted = this.matched;
        if (accepted === this.draft.length)
            this.draftLength = Math.min(MAX_DRAFT_TOKENS, 2 * this.draftLength);
        else this.draftLength = Math.max(1, accepted + 1);
        if (accepted > 0) {
            this.failuresInARow = 0;
            this.nextPause = FIRST_PAUSE_STEPS;
        } else if (++this.failuresInARow >= FAILURES_BEFORE_PAUSE) {
            this.pauseSteps = this.nextPause;
            this.nextPause = Math.min(LONGEST_PAUSE_STEPS, 2 * this.nextPause);
            this.failuresInARow = 0;
        }
        this.draft = [];
    }
}

export function promptLookupPredictor(): TokenPredictor {
    return new BackingOffLookupPredictor();
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
