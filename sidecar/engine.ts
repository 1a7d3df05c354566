// The model engine: one model, one llama context, a sequence per active conversation (least
// recently used reclaimed), requests of one conversation in order, streaming and cancellation.
import { stat } from "node:fs/promises";
import { freemem } from "node:os";
import { randomInt } from "node:crypto";
import {
    getLlama,
    ggufFileQuantNames,
    LlamaChat,
    LlamaLogLevel,
    TokenBias,
    type ChatWrapper,
    type Llama,
    type LlamaContext,
    type LlamaContextSequence,
    type LlamaModel,
    type Token,
    type Tokenizer,
} from "node-llama-cpp";
import {
    chatFormatOf,
    chatWrapperFor,
    SUPPORTED_CHAT_FORMATS,
    toChatHistory,
    UnsupportedChatFormatError,
    type ChatFormat,
} from "./chatWrapper.js";
import { ContextOverflowError, fitToContext } from "./contextFit.js";
import {
    answerReserve,
    DEFAULT_CONTEXT_SIZE,
    DEFAULT_MAX_TOKENS,
    DEFAULT_TEMPERATURE,
    DEFAULT_TOP_P,
} from "./defaults.js";
import { errorText, isMemoryError, SidecarError } from "./errors.js";
import { affordableSequences, SWA_FULL_CACHE } from "./fitEstimate.js";
import { checkModelFile, type ModelHeader } from "./modelFiles.js";
import { LoadChain, RunningRequests, throwIfUnloaded, type ModelEngine } from "./modelEngine.js";
import { SavedStates } from "./savedStates.js";
import { DEFAULT_SEQUENCES, RequestScheduler, type CancelSignal, type Slot } from "./scheduler.js";
import {
    draftUsage,
    generatedTokens,
    PROMPT_LOOKUP_FOR_REWRITES,
    promptLookupPredictor,
} from "./speculation.js";
import type {
    ChatMessage,
    ChatResult,
    FormatPromptResult,
    GpuChoice,
    LocalLoadParams,
    ModelInfo,
    Sampling,
    SidecarState,
    StopReason,
} from "./protocol.js";

/** Out of memory at load, the context is halved down to this before giving up. */
const MIN_FALLBACK_CONTEXT_SIZE = 512;

interface Loaded {
    llama: Llama;
    model: LlamaModel;
    context: LlamaContext;
    wrapper: ChatWrapper;
    info: ModelInfo;
}

export interface EngineEvents {
    status(state: SidecarState): void;
    log(message: string): void;
}

export class Engine implements ModelEngine {
    private readonly llamas = new Map<GpuChoice, Promise<Llama>>();
    private loaded?: Loaded;
    private readonly loads = new LoadChain();
    private readonly scheduler = new RequestScheduler<LlamaContextSequence>();
    private readonly savedStates = new SavedStates();
    private readonly running = new RunningRequests();
    /** llama.cpp's error lines since the current load step began: its exceptions say only "Failed to ...". */
    private llamaErrors: string[] = [];
    private state: SidecarState = { state: "idle" };

    constructor(private readonly events: EngineEvents) {}

    get status(): SidecarState {
        return this.state;
    }

    get modelInfo(): ModelInfo | null {
        return this.loaded?.info ?? null;
    }

    /** Loads are serialized; a new load replaces the current model. */
    load(params: LocalLoadParams): Promise<ModelInfo> {
        return this.loads.run(() => this.loadNow(params));
    }

    async unload(): Promise<void> {
        const loaded = this.loaded;
        this.loaded = undefined;
        this.scheduler.clear(
            new SidecarError(
                "modelNotLoaded",
                "The model was unloaded before this request started.",
            ),
        );
        this.running.unloaded();
        if (loaded) {
            await loaded.context.dispose();
            await loaded.model.dispose();
        }
        await this.savedStates.clear();
        this.setState({ state: "idle" });
    }

    private async loadNow(params: LocalLoadParams): Promise<ModelInfo> {
        await this.unload();
        try {
            const info = await this.loadFile(params);
            this.setState({ state: "ready", model: info });
            return info;
        } catch (error) {
            const failure = toLoadError(error, params.modelPath);
            this.setState({ state: "error", code: failure.code, message: failure.message });
            throw failure;
        }
    }

    private async loadFile(params: LocalLoadParams): Promise<ModelInfo> {
        const { modelPath } = params;
        const header = await checkModelFile(modelPath);
        const format = fileChatFormat(header, modelPath);
        this.setState({ state: "loading", progress: 0, modelPath });
        const started = performance.now();
        const llama = await this.llama(params.gpu ?? "auto");
        // Every core that does math by default: the fastest in npm run bench's sweep and in bench:e2e with VS Code drawing the answer.
        const threads = Math.max(
            1,
            Math.min(params.threads ?? llama.cpuMathCores, llama.cpuMathCores),
        );
        const ramBefore = process.memoryUsage().rss;
        const vramBefore = llama.gpu ? (await llama.getVramState()).used : 0;
        const { model, context, fallback } = await this.fitInMemory(llama, params, header, threads);
        const sequences = context.totalSequences;
        try {
            const metadata = model.fileInfo.metadata;
            const fileType = metadata.general.file_type;
            const info: ModelInfo = {
                path: modelPath,
                name: metadata.general.name ?? modelPath.split(/[\\/]/).pop() ?? modelPath,
                architecture: metadata.general.architecture,
                quantization:
                    (fileType != null ? ggufFileQuantNames[fileType] : undefined) ?? "unknown",
                fileSizeBytes: (await stat(modelPath)).size,
                contextSize: context.contextSize,
                trainContextSize: model.trainContextSize,
                sequences,
                backend: llama.gpu === false ? "cpu" : llama.gpu,
                gpuName: llama.gpu
                    ? (await llama.getGpuDeviceNames()).join(", ") || undefined
                    : undefined,
                gpuLayers: model.gpuLayers,
                totalLayers: model.fileInsights.totalLayers,
                threads,
                loadMs: Math.round(performance.now() - started),
                vramBytes: llama.gpu
                    ? Math.max(0, (await llama.getVramState()).used - vramBefore)
                    : undefined,
                ramBytes: Math.max(0, process.memoryUsage().rss - ramBefore),
                fallback,
            };
            this.loaded = { llama, model, context, wrapper: chatWrapperFor(format), info };
            this.scheduler.setSequences(
                Array.from({ length: sequences }, () => context.getSequence()),
            );
            this.events.log(
                `loaded ${info.name} (${info.quantization}, ${format.family} chat format) on ${info.backend}, ${info.gpuLayers}/${info.totalLayers} layers on GPU, ` +
                    `context ${info.contextSize}, ${threads} threads, in ${info.loadMs} ms${fallback ? ` (${fallback})` : ""}`,
            );
            return info;
        } catch (error) {
            await context.dispose();
            await model.dispose();
            throw error;
        }
    }

    /**
     * Loads the model and creates its context. Out of memory, it retries with half the GPU layers
     * (down to none), then with half the context (down to MIN_FALLBACK_CONTEXT_SIZE), and says in
     * `fallback` what it gave up; any other failure, or memory still short at the floor, is thrown.
     */
    private async fitInMemory(
        llama: Llama,
        params: LocalLoadParams,
        header: ModelHeader,
        threads: number,
    ): Promise<{ model: LlamaModel; context: LlamaContext; fallback?: string }> {
        const { modelPath } = params;
        const requestedLayers = params.gpuLayers ?? "auto";
        const requestedContext: number | "auto" =
            params.contextSize === undefined
                ? DEFAULT_CONTEXT_SIZE
                : Math.min(params.contextSize, header.trainContextSize);
        let gpuLayers = requestedLayers;
        let contextSize = requestedContext;
        let sequences = params.sequences ?? DEFAULT_SEQUENCES;
        let model: LlamaModel | undefined;
        let lastReported = 0;
        for (;;) {
            try {
                model ??= await this.llamaStep(() =>
                    llama.loadModel({
                        modelPath,
                        gpuLayers,
                        onLoadProgress: (progress) => {
                            // A status message per percent is plenty; the UI shows whole percents.
                            if (Math.abs(progress - lastReported) >= 0.01 || progress === 1) {
                                lastReported = progress;
                                this.setState({ state: "loading", progress, modelPath });
                            }
                        },
                    }),
                );
                const loadedModel = model;
                // One conversation's cache unless another fits beside it: that only costs reuse.
                // With "auto", a second sequence only where both fit at the training context, so
                // that it never shrinks the context the first would get.
                if (params.sequences === undefined && sequences > 1)
                    sequences = affordableSequences(
                        model.fileInsights,
                        {
                            contextSize:
                                contextSize === "auto" ? header.trainContextSize : contextSize,
                            gpuLayers: model.gpuLayers,
                        },
                        {
                            freeVram: llama.gpu ? (await llama.getVramState()).free : 0,
                            freeRam: freemem(),
                        },
                        sequences,
                    );
                const context = await this.llamaStep(() =>
                    loadedModel.createContext({
                        contextSize,
                        sequences,
                        threads,
                        swaFullCache: SWA_FULL_CACHE,
                    }),
                );
                const reduced = [
                    gpuLayers !== requestedLayers
                        ? `GPU layers ${requestedLayers} → ${gpuLayers}`
                        : "",
                    contextSize !== requestedContext
                        ? `context ${requestedContext} → ${contextSize} tokens`
                        : "",
                ].filter(Boolean);
                return {
                    model,
                    context,
                    fallback:
                        reduced.length > 0
                            ? `reduced to fit in memory: ${reduced.join(", ")}`
                            : undefined,
                };
            } catch (error) {
                if (!isMemoryError(error)) {
                    await model?.dispose();
                    throw error;
                }
                // A second conversation's cache is the cheapest thing to give up: only its reuse is lost.
                if (sequences > 1 && params.sequences === undefined) {
                    sequences = 1;
                    this.events.log(
                        `out of memory (${errorText(error)}); retrying with one conversation's KV cache`,
                    );
                    continue;
                }
                const layersTried =
                    llama.gpu === false
                        ? 0
                        : (model?.gpuLayers ??
                          (gpuLayers === "auto" ? header.blockCount + 1 : gpuLayers));
                if (layersTried > 0) {
                    gpuLayers = Math.floor(layersTried / 2);
                    await model?.dispose();
                    model = undefined;
                } else if (contextSize === "auto" || contextSize > MIN_FALLBACK_CONTEXT_SIZE) {
                    const tried = contextSize === "auto" ? header.trainContextSize : contextSize;
                    contextSize = Math.max(MIN_FALLBACK_CONTEXT_SIZE, Math.floor(tried / 2));
                } else {
                    await model?.dispose();
                    throw error;
                }
                const layers = llama.gpu === false ? "" : `${gpuLayers} GPU layers and `;
                this.events.log(
                    `out of memory (${errorText(error)}); retrying with ${layers}a context of ${contextSize} tokens`,
                );
            }
        }
    }

    /** Runs one llama.cpp step; a failure carries llama.cpp's own error lines, which say why. */
    private async llamaStep<T>(step: () => Promise<T>): Promise<T> {
        this.llamaErrors = [];
        try {
            return await step();
        } catch (error) {
            // llama.cpp's log lines reach JavaScript asynchronously: let them arrive first.
            await new Promise((resolve) => setImmediate(resolve));
            if (this.llamaErrors.length === 0 || !(error instanceof Error)) throw error;
            const detailed = new Error(
                `${error.message} (llama.cpp: ${this.llamaErrors.slice(-2).join("; ")})`,
            );
            detailed.name = error.name;
            throw detailed;
        }
    }

    /** The llama.cpp binding for a backend choice, started once and kept. */
    llama(gpu: GpuChoice): Promise<Llama> {
        let llama = this.llamas.get(gpu);
        if (!llama) {
            llama = getLlama({
                gpu: gpu === "cpu" ? false : gpu,
                // Never compile on a user's machine: use the shipped binaries or fail clearly.
                build: "never",
                progressLogs: false,
                logLevel: LlamaLogLevel.warn,
                logger: (level, message) => {
                    if (level === LlamaLogLevel.error || level === LlamaLogLevel.warn)
                        this.events.log(`llama.cpp: ${message.trimEnd()}`);
                    if (level === LlamaLogLevel.error && this.llamaErrors.push(message.trim()) > 8)
                        this.llamaErrors.shift();
                },
            });
            llama.catch(() => this.llamas.delete(gpu));
            this.llamas.set(gpu, llama);
        }
        return llama.catch((error: unknown) => {
            throw new SidecarError(
                "loadFailed",
                `The ${gpu === "auto" ? "" : gpu + " "}backend could not start: ${errorText(error)}. ` +
                    `Set olmo.gpu to "cpu" or another backend.`,
            );
        });
    }

    private requireModel(): Loaded {
        if (!this.loaded) {
            throw new SidecarError(
                "modelNotLoaded",
                this.state.state === "loading"
                    ? "The model is still loading; try again when it is ready."
                    : "No model is loaded. Set olmo.modelPath to a .gguf file and run OLMo: Load Model.",
            );
        }
        return this.loaded;
    }

    /**
     * The prompt's tokens for these messages, with the generation prompt. Pass one `tokenizer` from
     * cachingTokenizer() to calls on overlapping lists: each stretch of text between control tokens
     * is then tokenized once, not once per call.
     */
    promptTokens(messages: readonly ChatMessage[], tokenizer?: Tokenizer): Token[] {
        const loaded = this.requireModel();
        const { contextText } = loaded.wrapper.generateContextState({
            chatHistory: toChatHistory(messages, true),
        });
        return contextText.tokenize(tokenizer ?? loaded.model.tokenizer);
    }

    formatPrompt(messages: readonly ChatMessage[]): FormatPromptResult {
        const tokens = this.promptTokens(messages);
        return {
            text: this.requireModel().model.detokenize(tokens, true),
            tokens: tokens.length,
            tokenIds: tokens.slice(),
        };
    }

    countTokens(input: { messages?: readonly ChatMessage[]; text?: string }): {
        tokens: number;
        contextSize: number;
    } {
        const loaded = this.requireModel();
        const tokens =
            input.messages !== undefined
                ? this.promptTokens(input.messages).length
                : loaded.model.tokenize(input.text ?? "", false).length;
        return { tokens, contextSize: loaded.info.contextSize };
    }

    /**
     * Generates the assistant's answer to `messages`. Text deltas go to `onDelta` as they are
     * produced; cancelling returns what was generated so far with stop reason `cancelled`.
     * `promptLookup` decodes with prompt-lookup drafts (speculation.ts). `caller` is another
     * extension's id (vscode.lm): it waits behind the user's own requests (scheduler.ts). A
     * `oneOff` conversation is never continued: its sequence is the first to be reused.
     */
    async chat(
        conversationId: string,
        messages: readonly ChatMessage[],
        sampling: Sampling,
        onDelta: (text: string) => void,
        cancel: CancelSignal,
        options: { promptLookup?: boolean; caller?: string; oneOff?: boolean } = {},
    ): Promise<ChatResult> {
        const arrived = performance.now();
        this.requireModel();
        const slot = await this.scheduler.acquire(conversationId, cancel, options.caller);
        if (!slot) return cancelledBeforeStart(arrived, this.loaded?.info.contextSize ?? 0);
        try {
            await this.prepareSlot(slot, conversationId, options.promptLookup === true);
            return await this.generate(slot, messages, sampling, onDelta, cancel, arrived);
        } finally {
            if (options.oneOff) slot.conversationId = undefined;
            this.scheduler.release(slot, conversationId);
        }
    }

    /** A rewrite: a conversation of its own, decoded with prompt-lookup drafts unless told not to (speculation.ts). */
    async rewrite(
        conversationId: string,
        messages: readonly ChatMessage[],
        sampling: Sampling,
        onDelta: (text: string) => void,
        cancel: CancelSignal,
        speculative = PROMPT_LOOKUP_FOR_REWRITES,
    ): Promise<ChatResult> {
        const result = await this.chat(conversationId, messages, sampling, onDelta, cancel, {
            promptLookup: speculative,
            oneOff: true,
        });
        const { draftTokens, acceptedDraftTokens, completionTokens } = result.usage;
        if (draftTokens !== undefined) {
            this.events.log(
                `rewrite: ${completionTokens} tokens, ${acceptedDraftTokens}/${draftTokens} drafts accepted, ${result.timings.tokensPerSecond} tok/s`,
            );
        }
        return result;
    }

    /**
     * Readies the slot's sequence for this conversation, with a prompt-lookup predictor or without.
     * A sequence's predictor is fixed when the sequence is made, so a change swaps the sequence (its
     * cache goes too, which costs nothing: rewrites are one-off conversations, always started afresh).
     * The conversation leaving the sequence is saved and the one arriving restored (savedStates.ts).
     */
    private async prepareSlot(
        slot: Slot<LlamaContextSequence>,
        conversationId: string,
        promptLookup: boolean,
    ): Promise<void> {
        const leaving = slot.conversationId;
        if (leaving !== undefined && leaving !== conversationId) {
            // A state that cannot be saved costs only its reuse, never this request.
            await this.savedStates.save(leaving, slot.sequence).then(
                (saved) => {
                    if (saved)
                        this.events.log(
                            `saved ${leaving}'s state for its next turn: ${saved.tokens} tokens, ${(saved.bytes / 2 ** 20).toFixed(1)} MiB in ${saved.ms.toFixed(0)} ms`,
                        );
                },
                (error: unknown) =>
                    this.events.log(`could not save ${leaving}'s state: ${errorText(error)}`),
            );
        }
        if ((slot.sequence.tokenPredictor !== undefined) !== promptLookup) {
            const context = slot.sequence.context;
            await slot.sequence.dispose(); // frees its cache cells and its id for the new one
            slot.sequence = context.getSequence(
                promptLookup ? { tokenPredictor: promptLookupPredictor() } : {},
            );
        } else if (leaving !== conversationId) {
            await slot.sequence.clearHistory();
        }
        if (leaving !== conversationId)
            await this.savedStates.restore(conversationId, slot.sequence);
        slot.conversationId = conversationId;
    }

    private async generate(
        slot: Slot<LlamaContextSequence>,
        messages: readonly ChatMessage[],
        sampling: Sampling,
        onDelta: (text: string) => void,
        cancel: CancelSignal,
        arrived: number,
    ): Promise<ChatResult> {
        const loaded = this.requireModel();
        const sequence = slot.sequence;
        const contextSize = sequence.contextSize;
        const maxTokens = Math.max(1, sampling.maxTokens ?? DEFAULT_MAX_TOKENS);
        // Fitting renders many overlapping candidate prompts: tokenize each stretch of text once.
        const tokenizer = cachingTokenizer(loaded.model.tokenizer);
        let fit;
        try {
            fit = fitToContext(
                messages,
                contextSize - answerReserve(maxTokens, contextSize),
                (m) => this.promptTokens(m, tokenizer).length,
            );
        } catch (error) {
            if (error instanceof ContextOverflowError)
                throw new SidecarError("contextOverflow", error.message);
            throw error;
        }
        const prompt = this.promptTokens(fit.kept, tokenizer);
        const room = contextSize - prompt.length;
        const generationLimit = Math.min(maxTokens, room);

        const { signal, end } = this.running.start(cancel);
        const outputBefore = sequence.tokenMeter.usedOutputTokens;
        // Reuse as measured: the prompt tokens llama.cpp did not evaluate. A sliding-window model
        // (OLMo 3) may restore a checkpoint and evaluate more than the common prefix suggests.
        const inputBefore = sequence.tokenMeter.usedInputTokens;
        let inputAtFirstToken: number | undefined;
        const predictionsBefore = sequence.tokenPredictions;
        let firstTokenAt: number | undefined;
        let lastTokenAt = arrived;
        const evaluationStarted = performance.now();
        const chat = new LlamaChat({
            contextSequence: sequence,
            chatWrapper: loaded.wrapper,
            autoDisposeSequence: false,
        });
        try {
            const response = await chat.generateResponse(toChatHistory(fit.kept, true), {
                signal,
                stopOnAbortSignal: true,
                maxTokens: generationLimit,
                temperature: sampling.temperature ?? DEFAULT_TEMPERATURE,
                topP: sampling.topP ?? DEFAULT_TOP_P,
                // A fresh seed per request unless fixed: the clock-based default repeats within a second.
                seed: sampling.seed ?? randomInt(0, 2 ** 31),
                tokenBias: sampling.tokenBias
                    ? () => biasFor(loaded.model, sampling.tokenBias!)
                    : undefined,
                onTextChunk: (text) => {
                    lastTokenAt = performance.now();
                    firstTokenAt ??= lastTokenAt;
                    inputAtFirstToken ??= sequence.tokenMeter.usedInputTokens;
                    onDelta(text);
                },
            });
            throwIfUnloaded(signal);
            const completionTokens = generatedTokens(sequence, outputBefore, predictionsBefore);
            const evaluated =
                (inputAtFirstToken ?? sequence.tokenMeter.usedInputTokens) - inputBefore;
            // node-llama-cpp evaluates the prompt's last token with the first generated one, later.
            const reusedTokens = Math.max(0, prompt.length - 1 - evaluated);
            if (firstTokenAt !== undefined)
                this.savedStates.notePrefill(
                    prompt.length - reusedTokens,
                    firstTokenAt - evaluationStarted,
                );
            const stopReason = toStopReason(
                response.metadata.stopReason,
                generationLimit < maxTokens,
            );
            const decodeSeconds =
                firstTokenAt !== undefined ? (lastTokenAt - firstTokenAt) / 1000 : 0;
            return {
                text: response.response,
                stopReason,
                usage: {
                    promptTokens: prompt.length,
                    completionTokens,
                    reusedTokens,
                    ...draftUsage(sequence, predictionsBefore),
                },
                timings: {
                    timeToFirstTokenMs:
                        firstTokenAt !== undefined ? round(firstTokenAt - arrived) : -1,
                    tokensPerSecond:
                        completionTokens > 1 && decodeSeconds > 0
                            ? round((completionTokens - 1) / decodeSeconds)
                            : 0,
                    totalMs: round(performance.now() - arrived),
                },
                dropped:
                    fit.droppedIndices.length > 0
                        ? {
                              messageIndices: fit.droppedIndices,
                              tokens: this.promptTokens(messages, tokenizer).length - prompt.length,
                          }
                        : undefined,
                contextSize,
            };
        } catch (error) {
            throwIfUnloaded(signal);
            // Stopped while the prompt was evaluated: node-llama-cpp throws instead of returning.
            if (signal.aborted) return cancelledBeforeStart(arrived, contextSize);
            if (isMemoryError(error))
                throw new SidecarError(
                    "outOfMemory",
                    `Out of memory while generating: ${errorText(error)}`,
                );
            throw error;
        } finally {
            end();
            chat.dispose({ disposeSequence: false });
        }
    }

    private setState(state: SidecarState): void {
        this.state = state;
        this.events.status(state);
    }

    async dispose(): Promise<void> {
        await this.unload();
        for (const llama of this.llamas.values())
            await (await llama.catch(() => undefined))?.dispose();
    }
}

/** The file's chat format (chatWrapper.ts), or a refusal that names what is supported. */
function fileChatFormat(header: ModelHeader, modelPath: string): ChatFormat {
    const { metadata } = header.file;
    const tokens = metadata.tokenizer?.ggml?.tokens;
    const tokenText = (id: number | undefined) =>
        (id !== undefined ? tokens?.[id] : undefined) ?? "";
    try {
        return chatFormatOf({
            template: metadata.tokenizer?.chat_template,
            bosText: tokenText(metadata.tokenizer?.ggml?.bos_token_id),
            eosText: tokenText(metadata.tokenizer?.ggml?.eos_token_id),
            slidingWindow: header.file.architectureMetadata.attention?.sliding_window !== undefined,
        });
    } catch (error) {
        if (!(error instanceof UnsupportedChatFormatError)) throw error;
        throw new SidecarError(
            "unsupportedArchitecture",
            `${modelPath} is an olmo2-architecture model, but ${error.message}. ` +
                `OLMo Local formats prompts for ${SUPPORTED_CHAT_FORMATS} only; choose one of those GGUFs.`,
        );
    }
}

function toLoadError(error: unknown, modelPath: string): SidecarError {
    if (error instanceof SidecarError) return error;
    if (isMemoryError(error)) {
        return new SidecarError(
            "outOfMemory",
            `Not enough memory to load ${modelPath}: ${errorText(error)}. Lower olmo.contextSize or olmo.gpuLayers, or use a smaller quantization.`,
        );
    }
    return new SidecarError("modelInvalid", `Could not load ${modelPath}: ${errorText(error)}`);
}

function toStopReason(reason: string, limitedByContext: boolean): StopReason {
    switch (reason) {
        case "abort":
            return "cancelled";
        case "maxTokens":
            return limitedByContext ? "contextFull" : "maxTokens";
        default:
            return "eos";
    }
}

function biasFor(model: LlamaModel, bias: Record<string, number>): TokenBias {
    const tokenBias = new TokenBias(model.tokenizer);
    for (const [text, logit] of Object.entries(bias)) tokenBias.set(text, { logit });
    return tokenBias;
}

/** Cancelled before the first token: no text. */
function cancelledBeforeStart(arrived: number, contextSize: number): ChatResult {
    return {
        text: "",
        stopReason: "cancelled",
        usage: { promptTokens: 0, completionTokens: 0, reusedTokens: 0 },
        timings: {
            timeToFirstTokenMs: -1,
            tokensPerSecond: 0,
            totalMs: round(performance.now() - arrived),
        },
        contextSize,
    };
}

export function commonPrefixLength(a: readonly Token[], b: readonly Token[]): number {
    const n = Math.min(a.length, b.length);
    let i = 0;
    while (i < n && a[i] === b[i]) i++;
    return i;
}

function round(n: number): number {
    return Math.round(n * 10) / 10;
}

/** A tokenizer that remembers its answers (for one fitting: the cache lives as long as the returned function). */
function cachingTokenizer(tokenizer: Tokenizer): Tokenizer {
    const cache = new Map<string, Token[]>();
    const tokenize = (
        text: string,
        specialTokens?: boolean | "builtin",
        options?: "trimLeadingSpace",
    ): Token[] => {
        const key = `${specialTokens}:${options}:${text}`;
        let tokens = cache.get(key);
        if (!tokens) {
            tokens = (
                tokenizer as (
                    text: string,
                    specialTokens?: boolean | "builtin",
                    options?: "trimLeadingSpace",
                ) => Token[]
            )(text, specialTokens, options);
            cache.set(key, tokens);
        }
        return tokens;
    };
    return Object.assign(tokenize, {
        detokenize: tokenizer.detokenize,
        isSpecialToken: tokenizer.isSpecialToken,
        isEogToken: tokenizer.isEogToken,
    }) as Tokenizer;
}
