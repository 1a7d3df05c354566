// Fitting a conversation into the context: the oldest turns go first, the system prompt and the
// newest user message always stay, and the caller is told exactly what was left out.
import type { ChatMessage } from "./protocol.js";

export interface FitResult {
    /** The messages to send, in order. */
    kept: ChatMessage[];
    /** Indices into the original list that were dropped. */
    droppedIndices: number[];
    promptTokens: number;
}

export class ContextOverflowError extends Error {
    constructor(
        public readonly neededTokens: number,
        public readonly availableTokens: number,
    ) {
        super(
            `The message needs ${neededTokens} tokens but only ${availableTokens} fit in the context ` +
                `(after reserving room for the answer). Shorten it, or raise olmo.contextSize.`,
        );
    }
}

/**
 * @param countPromptTokens counts the tokens of the prompt these messages render to (with the
 *   generation prompt); called on candidate lists, so it must be the real tokenizer.
 * @param budget the most prompt tokens allowed.
 */
export function fitToContext(
    messages: readonly ChatMessage[],
    budget: number,
    countPromptTokens: (messages: readonly ChatMessage[]) => number,
): FitResult {
    const indexed = messages.map((message, index) => ({ message, index }));
    const systemCount = indexed.findIndex((m) => m.message.role !== "system");
    const pinnedHead = systemCount === -1 ? indexed.length : systemCount;
    const head = indexed.slice(0, pinnedHead);
    let body = indexed.slice(pinnedHead);

    const count = (items: typeof indexed) => countPromptTokens(items.map((i) => i.message));
    let tokens = count([...head, ...body]);
    const dropped: number[] = [];
    // Drop whole exchanges from the front: a user message and the answers that follow it.
    while (tokens > budget && body.length > 1) {
        let cut = 1;
        while (cut < body.length - 1 && body[cut].message.role !== "user") cut++;
        dropped.push(...body.slice(0, cut).map((i) => i.index));
        body = body.slice(cut);
        tokens = count([...head, ...body]);
    }
    if (tokens > budget) throw new ContextOverflowError(tokens, budget);
    return {
        kept: [...head, ...body].map((i) => i.message),
        droppedIndices: dropped,
        promptTokens: tokens,
    };
}
