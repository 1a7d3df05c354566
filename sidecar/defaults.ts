// Defaults and the one formula both ends must agree on. The sidecar applies them; the extension
// reads them for its settings fallbacks and for what it reports to VS Code about the model. No
// runtime dependencies, so the extension can import it as it imports protocol.ts. package.json's
// `contributes.configuration` repeats the defaults as JSON (test/unit/defaults.test.ts holds them equal).

/**
 * `olmo.contextSize`'s default, "auto": the largest context that fits beside the layers on the GPU
 * (or in RAM on the CPU), up to the model's training context (4096 on OLMo 2, 65,536 on OLMo 3).
 */
export const DEFAULT_CONTEXT_SIZE = "auto";
/**
 * The context assumed where a number is needed before a model is loaded (a fit check of "auto",
 * the LM provider's figures before the first load): OLMo 2's training context, which every OLMo fits.
 */
export const BASELINE_CONTEXT_SIZE = 4096;
/** The longest answer, in tokens, unless a request asks for another limit. */
export const DEFAULT_MAX_TOKENS = 1024;
export const DEFAULT_TEMPERATURE = 0.7;
export const DEFAULT_TOP_P = 0.9;

/**
 * Tokens kept free for the answer when fitting a conversation into the context: the answer's
 * limit, but never more than half the context (a long limit must not leave no room for the question).
 */
export function answerReserve(maxTokens: number, contextSize: number): number {
    return Math.min(maxTokens, Math.floor(contextSize / 2));
}
