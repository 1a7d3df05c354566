// The baseline: node-llama-cpp used directly in this process, set up as sidecar/engine.ts sets it
// up (same context options, same chat wrapper, one LlamaChat per request on a reused sequence), so
// that the only difference left is the sidecar's process, protocol and streaming.
import {
    getLlama,
    LlamaChat,
    LlamaLogLevel,
    type Llama,
    type LlamaContext,
    type LlamaContextSequence,
    type LlamaModel,
} from "node-llama-cpp";
import { Olmo2ChatWrapper, toChatHistory } from "../../sidecar/chatWrapper.js";
import { commonPrefixLength } from "../../sidecar/engine.js";
import { processCpuMs } from "./machine.js";
import type { BenchGpu } from "./options.js";
import { GREEDY, type ChatRequest, type ChatSide, type TurnMeasure } from "./workload.js";

export interface SideSettings {
    modelPath: string;
    gpu: BenchGpu;
    threads: number;
    contextSize: number;
}

/** The same getLlama options as the sidecar's engine. */
export function getBenchLlama(gpu: BenchGpu): Promise<Llama> {
    return getLlama({
        gpu: gpu === "cpu" ? false : gpu,
        build: "never",
        progressLogs: false,
        logLevel: LlamaLogLevel.warn,
    });
}

export class BaselineSide implements ChatSide {
    private readonly wrapper = new Olmo2ChatWrapper();
    private readonly sequence: LlamaContextSequence;
    private conversationId?: string;

    private constructor(
        private readonly model: LlamaModel,
        private readonly context: LlamaContext,
        /** Model load (when this side loaded it) and context creation, in ms. */
        readonly loadMs: number,
        private readonly ownsModel: boolean,
    ) {
        this.sequence = context.getSequence();
    }

    static async start(llama: Llama, settings: SideSettings): Promise<BaselineSide> {
        const started = performance.now();
        const model = await llama.loadModel({ modelPath: settings.modelPath, gpuLayers: "auto" });
        const context = await createContext(model, settings);
        return new BaselineSide(model, context, performance.now() - started, true);
    }

    /** A side with its own context on a model loaded elsewhere (the thread sweep loads the model once). */
    static async onModel(model: LlamaModel, settings: SideSettings): Promise<BaselineSide> {
        const started = performance.now();
        const context = await createContext(model, settings);
        return new BaselineSide(model, context, performance.now() - started, false);
    }

    /**
     * `decodeTimeLimitMs` stops generating that long after the first token (the thread sweep's guard
     * against a collapsed thread count); the product side has no such need.
     */
    async chat(request: ChatRequest, decodeTimeLimitMs?: number): Promise<TurnMeasure> {
        // As the engine does: another conversation on the sequence starts from an empty cache.
        if (request.conversationId !== this.conversationId) {
            await this.sequence.clearHistory();
            this.conversationId = request.conversationId;
        }
        const cachedBefore = [...this.sequence.contextTokens];
        const outputBefore = this.sequence.tokenMeter.usedOutputTokens;
        const stop = new AbortController();
        let decodeTimer: ReturnType<typeof setTimeout> | undefined;
        let firstTextAt: number | undefined;
        let cpuAtFirstText = 0;
        const cpuBefore = processCpuMs("self");
        const sent = performance.now();
        const chat = new LlamaChat({
            contextSequence: this.sequence,
            chatWrapper: this.wrapper,
            autoDisposeSequence: false,
        });
        try {
            const response = await chat.generateResponse(toChatHistory(request.messages, true), {
                ...GREEDY,
                maxTokens: request.maxTokens,
                signal: stop.signal,
                stopOnAbortSignal: true,
                onTextChunk: () => {
                    if (firstTextAt !== undefined) return;
                    firstTextAt = performance.now();
                    cpuAtFirstText = processCpuMs("self");
                    if (decodeTimeLimitMs !== undefined)
                        decodeTimer = setTimeout(() => stop.abort(), decodeTimeLimitMs);
                },
            });
            const doneAt = performance.now();
            const cpuMs = processCpuMs("self") - cpuBefore;
            if (firstTextAt === undefined) throw new Error("the baseline produced no text");
            // Counted after the clock stopped: the engine does this work inside its request, the baseline need not.
            const { contextText } = this.wrapper.generateContextState({
                chatHistory: toChatHistory(request.messages, true),
            });
            const prompt = contextText.tokenize(this.model.tokenizer);
            return {
                text: response.response,
                promptTokens: prompt.length,
                reusedTokens: Math.min(commonPrefixLength(cachedBefore, prompt), prompt.length - 1),
                completionTokens: this.sequence.tokenMeter.usedOutputTokens - outputBefore,
                timeToFirstTokenMs: firstTextAt - sent,
                totalMs: doneAt - sent,
                cpuToFirstTokenMs: cpuAtFirstText - cpuBefore,
                cpuMs,
            };
        } finally {
            clearTimeout(decodeTimer);
            chat.dispose({ disposeSequence: false });
        }
    }

    async stop(): Promise<void> {
        await this.context.dispose();
        if (this.ownsModel) await this.model.dispose();
    }
}

/** The context the engine creates: one sequence, the requested size within the model's, explicit threads. */
export function createContext(model: LlamaModel, settings: SideSettings): Promise<LlamaContext> {
    return model.createContext({
        contextSize: Math.min(settings.contextSize, model.trainContextSize),
        sequences: 1,
        threads: settings.threads,
    });
}
