// The work both sides do, defined once: the same messages, sampling and token limits go to the
// baseline (node-llama-cpp in this process) and to the product (the sidecar over JSON-RPC).
import type { LlamaModel } from "node-llama-cpp";
import { Olmo2ChatWrapper, toChatHistory } from "../../sidecar/chatWrapper.js";
import type { ChatMessage, Sampling } from "../../sidecar/protocol.js";

/** Greedy: both sides must produce the same text, token for token. */
export const GREEDY: Readonly<Pick<Sampling, "temperature" | "topP" | "seed">> = {
    temperature: 0,
    topP: 1,
    seed: 1,
};

/** Tokens generated in the follow-up turns, which are there to time their first token. */
export const FOLLOW_UP_TOKENS = 8;
export const FOLLOW_UP_QUESTION =
    "Now list the three most important changes as short bullet points, and say which one matters most to users.";

export interface ChatRequest {
    conversationId: string;
    messages: ChatMessage[];
    maxTokens: number;
}

/** One request as the caller saw it; times are from handing the request over. */
export interface TurnMeasure {
    text: string;
    promptTokens: number;
    /** Prompt tokens taken from the KV cache (the sidecar's definition, computed the same way on both sides). */
    reusedTokens: number;
    completionTokens: number;
    timeToFirstTokenMs: number;
    /** Until the whole answer is in the caller's hands. */
    totalMs: number;
    /**
     * CPU time the request cost every process involved (product: the sidecar and this client), to
     * the first token and in all. Time spent waiting for a core while other work runs is not in
     * it, so on a busy machine it shows real overhead better than wall time does.
     */
    cpuToFirstTokenMs: number;
    cpuMs: number;
    /** Only the product streams over the wire. */
    traffic?: StreamTraffic;
    /** The sidecar's own TTFT (from the request's arrival), to split transport from engine time. */
    engineTimeToFirstTokenMs?: number;
}

export interface StreamTraffic {
    progressMessages: number;
    /** Whole frames: header and JSON body. */
    progressBytes: number;
}

export interface ChatSide {
    chat(request: ChatRequest): Promise<TurnMeasure>;
}

/** Completion tokens per second between the first text and the complete answer. */
export function decodeRate(turn: TurnMeasure): number {
    return (turn.completionTokens - 1) / ((turn.totalMs - turn.timeToFirstTokenMs) / 1000);
}

/** Prompt tokens per second, counting the time to the first token as prefill. */
export function prefillRate(turn: TurnMeasure): number {
    return turn.promptTokens / (turn.timeToFirstTokenMs / 1000);
}

export function decodeCpuMsPerToken(turn: TurnMeasure): number {
    return (turn.cpuMs - turn.cpuToFirstTokenMs) / (turn.completionTokens - 1);
}

export interface WorkloadResult {
    /** The long prompt under another conversation first, so that both sides are warm (the baseline's process stays warm between rounds). */
    warmUp: TurnMeasure;
    /** The long prompt from an empty cache, then `decodeTokens` tokens. */
    first: TurnMeasure;
    /** The same conversation one turn later: the first turn is in the KV cache. */
    followUp?: TurnMeasure;
    /** The same follow-up messages as a new conversation: everything is evaluated. */
    followUpFromScratch?: TurnMeasure;
}

/**
 * The benchmark's conversation, run turn by turn on every side in the order given: each turn is
 * measured on all sides before the next, so that the two figures of a pair are seconds apart and
 * a machine getting busier or quieter weighs on both alike. `firstTurnOnly` is the thread sweep's
 * shorter version.
 */
export async function runWorkloads(
    sides: readonly ChatSide[],
    prompt: string,
    decodeTokens: number,
    firstTurnOnly = false,
): Promise<WorkloadResult[]> {
    const turn = async (request: (side: number) => ChatRequest): Promise<TurnMeasure[]> => {
        const measures: TurnMeasure[] = [];
        for (const [i, side] of sides.entries()) measures.push(await side.chat(request(i)));
        return measures;
    };
    const opening: ChatMessage[] = [{ role: "user", content: prompt }];
    // The long prompt once under another conversation, so the measured turn still starts from an
    // empty cache: a fresh sidecar then has its full-batch buffers in use before the measured
    // prefill, as the baseline's process has from earlier rounds.
    const warmUp = await turn(() => ({
        conversationId: "bench-warm-up",
        messages: opening,
        maxTokens: 2,
    }));
    const first = await turn(() => ({
        conversationId: "bench-long",
        messages: opening,
        maxTokens: decodeTokens,
    }));
    if (firstTurnOnly) return sides.map((_, i) => ({ warmUp: warmUp[i], first: first[i] }));
    // As the extension does: the answer just received goes back as the assistant's turn.
    const followUpMessages = (i: number): ChatMessage[] => [
        ...opening,
        { role: "assistant", content: first[i].text },
        { role: "user", content: FOLLOW_UP_QUESTION },
    ];
    const followUp = await turn((i) => ({
        conversationId: "bench-long",
        messages: followUpMessages(i),
        maxTokens: FOLLOW_UP_TOKENS,
    }));
    const followUpFromScratch = await turn((i) => ({
        conversationId: "bench-scratch",
        messages: followUpMessages(i),
        maxTokens: FOLLOW_UP_TOKENS,
    }));
    return sides.map((_, i) => ({
        warmUp: warmUp[i],
        first: first[i],
        followUp: followUp[i],
        followUpFromScratch: followUpFromScratch[i],
    }));
}

/** Tokens of the whole prompt (template, generation prompt included) exactly as the sidecar makes them. */
function promptTokenCount(
    model: LlamaModel,
    wrapper: Olmo2ChatWrapper,
    messages: readonly ChatMessage[],
): number {
    const { contextText } = wrapper.generateContextState({
        chatHistory: toChatHistory(messages, true),
    });
    return contextText.tokenize(model.tokenizer).length;
}

// Common words that are one token each with their leading space, so that each adds exactly one.
const FILLER_WORDS = (
    "the model was changed to load faster and the chat view now keeps its history when the window is closed " +
    "we also fixed a bug where long answers were cut off and added a setting for the number of threads used " +
    "by the model on machines without a graphics card which makes answers much faster on small laptops"
).split(" ");

/** A user message whose whole prompt is exactly `targetTokens` tokens. */
export function buildPrompt(model: LlamaModel, targetTokens: number): string {
    const wrapper = new Olmo2ChatWrapper();
    const header = "Summarise these release notes in one paragraph:\n";
    const textWith = (words: number) =>
        header +
        Array.from({ length: words }, (_, i) => FILLER_WORDS[i % FILLER_WORDS.length]).join(" ");
    const count = (words: number) =>
        promptTokenCount(model, wrapper, [{ role: "user", content: textWith(words) }]);
    const estimate = Math.max(0, targetTokens - count(0));
    for (let words = Math.max(0, estimate - 16); words <= estimate + 16; words++) {
        if (count(words) === targetTokens) return textWith(words);
    }
    throw new Error(`could not build a prompt of exactly ${targetTokens} tokens`);
}
