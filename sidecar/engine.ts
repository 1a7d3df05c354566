// The model engine: one model, one llama context, a sequence per active conversation (least
// recently used reclaimed), requests of one conversation in order, streaming and cancellation.
import { stat } from "node:fs/promises";
import { randomInt } from "node:crypto";
import {
    getLlama,
    ggufFileQuantNames,
    LlamaChat,
    LlamaLogLevel,
    readGgufFileInfo,
    TokenBias,
    type Llama,
    type LlamaContext,
    type LlamaContextSequence,
    type LlamaModel,
    type Token,
} from "node-llama-cpp";
import { Olmo2ChatWrapper, toChatHistory } from "./chatWrapper.js";
import { ContextOverflowError, fitToContext } from "./contextFit.js";
import { errorText, isMemoryError, SidecarError } from "./errors.js";
import type {
    ChatMessage,
    ChatResult,
    GpuChoice,
    LoadParams,
    ModelInfo,
    Sampling,
    SidecarState,
    StopReason,
} from "./protocol.js";

export const DEFAULT_CONTEXT_SIZE = 4096;
export const DEFAULT_MAX_TOKENS = 1024;
/** Requests waiting for a sequence beyond this are refused with `busy` instead of piling up. */
export const MAX_QUEUED_REQUESTS = 16;

export interface CancelSignal {
    readonly isCancellationRequested: boolean;
    onCancellationRequested(listener: () => void): { dispose(): void };
}

interface Loaded {
    llama: Llama;
    model: LlamaModel;
    context: LlamaContext;
    wrapper: Olmo2ChatWrapper;
    info: ModelInfo;
    slots: Slot[];
}

interface Slot {
    sequence: LlamaContextSequence;
    conversationId?: string;
    busy: boolean;
    lastUsed: number;
}

export interface EngineEvents {
    status(state: SidecarState): void;
    log(message: string): void;
}

export class Engine {
    private readonly llamas = new Map<GpuChoice, Promise<Llama>>();
    private loaded?: Loaded;
    private loadChain: Promise<unknown> = Promise.resolve();
    private readonly conversationTails = new Map<string, Promise<unknown>>();
    private readonly slotWaiters: Array<() => void> = [];
    private readonly running = new Set<AbortController>();
    private state: SidecarState = { state: "idle" };

    constructor(private readonly events: EngineEvents) {}

    get status(): SidecarState {
        return this.state;
    }

    get modelInfo(): ModelInfo | null {
        return this.loaded?.info ?? null;
    }

    /** Loads are serialized; a new load replaces the current model. */
    load(params: LoadParams): Promise<ModelInfo> {
        const run = this.loadChain.then(
            () => this.loadNow(params),
            () => this.loadNow(params),
        );
        this.loadChain = run.catch(() => undefined);
        return run;
    }

    async unload(): Promise<void> {
        const loaded = this.loaded;
        this.loaded = undefined;
        for (const abort of this.running) abort.abort();
        if (loaded) {
            await loaded.context.dispose();
            await loaded.model.dispose();
        }
        this.setState({ state: "idle" });
    }

    private async loadNow(params: LoadParams): Promise<ModelInfo> {
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

    private async loadFile(params: LoadParams): Promise<ModelInfo> {
        const { modelPath } = params;
        await checkModelFile(modelPath);
        this.setState({ state: "loading", progress: 0, modelPath });
        const started = performance.now();
        const llama = await this.llama(params.gpu ?? "auto");
        const threads = Math.max(1, Math.min(params.threads ?? llama.cpuMathCores, llama.cpuMathCores));
        const ramBefore = process.memoryUsage().rss;
        const vramBefore = llama.gpu ? (await llama.getVramState()).used : 0;
        let lastReported = 0;
        const model = await llama.loadModel({
            modelPath,
            gpuLayers: params.gpuLayers ?? "auto",
            onLoadProgress: (progress) => {
                // A status message per percent is plenty; the UI shows whole percents.
                if (progress - lastReported >= 0.01 || progress === 1) {
                    lastReported = progress;
                    this.setState({ state: "loading", progress, modelPath });
                }
            },
        });
        try {
            const trainContextSize = model.trainContextSize;
            const sequences = Math.max(1, params.sequences ?? 1);
            const context = await model.createContext({
                contextSize: Math.min(params.contextSize ?? DEFAULT_CONTEXT_SIZE, trainContextSize),
                sequences,
                threads,
            });
            const slots: Slot[] = [];
            for (let i = 0; i < sequences; i++) slots.push({ sequence: context.getSequence(), busy: false, lastUsed: 0 });
            const metadata = model.fileInfo.metadata;
            const fileType = metadata.general.file_type;
            const info: ModelInfo = {
                path: modelPath,
                name: metadata.general.name ?? modelPath.split(/[\\/]/).pop() ?? modelPath,
                architecture: metadata.general.architecture,
                quantization: (fileType != null ? ggufFileQuantNames[fileType] : undefined) ?? "unknown",
                fileSizeBytes: (await stat(modelPath)).size,
                contextSize: context.contextSize,
                trainContextSize,
                sequences,
                backend: llama.gpu === false ? "cpu" : llama.gpu,
                gpuName: llama.gpu ? (await llama.getGpuDeviceNames()).join(", ") || undefined : undefined,
                gpuLayers: model.gpuLayers,
                totalLayers: model.fileInsights.totalLayers,
                threads,
                loadMs: Math.round(performance.now() - started),
                vramBytes: llama.gpu ? Math.max(0, (await llama.getVramState()).used - vramBefore) : undefined,
                ramBytes: Math.max(0, process.memoryUsage().rss - ramBefore),
            };
            this.loaded = { llama, model, context, wrapper: new Olmo2ChatWrapper(), info, slots };
            this.events.log(
                `loaded ${info.name} (${info.quantization}) on ${info.backend}, ${info.gpuLayers}/${info.totalLayers} layers on GPU, ` +
                    `context ${info.contextSize}, ${threads} threads, in ${info.loadMs} ms`,
            );
            return info;
        } catch (error) {
            await model.dispose();
            throw error;
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
                    if (level === LlamaLogLevel.error || level === LlamaLogLevel.warn) this.events.log(`llama.cpp: ${message.trimEnd()}`);
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

    /** The prompt's tokens for these messages, with the generation prompt. */
    promptTokens(messages: readonly ChatMessage[]): Token[] {
        const loaded = this.requireModel();
        const { contextText } = loaded.wrapper.generateContextState({ chatHistory: toChatHistory(messages, true) });
        return contextText.tokenize(loaded.model.tokenizer);
    }

    formatPrompt(messages: readonly ChatMessage[]): { text: string; tokens: number } {
        const tokens = this.promptTokens(messages);
        return { text: this.requireModel().model.detokenize(tokens, true), tokens: tokens.length };
    }

    countTokens(input: { messages?: readonly ChatMessage[]; text?: string }): { tokens: number; contextSize: number } {
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
     */
    async chat(
        conversationId: string,
        messages: readonly ChatMessage[],
        sampling: Sampling,
        onDelta: (text: string) => void,
        cancel: CancelSignal,
    ): Promise<ChatResult> {
        const arrived = performance.now();
        validateMessages(messages);
        this.requireModel();
        return this.inConversationOrder(conversationId, async () => {
            const slot = await this.acquireSlot(conversationId, cancel);
            if (!slot) return cancelledBeforeStart(arrived, this.loaded?.info.contextSize ?? 0);
            try {
                return await this.generate(slot, messages, sampling, onDelta, cancel, arrived);
            } finally {
                this.releaseSlot(slot);
            }
        });
    }

    private async generate(
        slot: Slot,
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
        const answerReserve = Math.min(maxTokens, Math.floor(contextSize / 2));
        let fit;
        try {
            fit = fitToContext(messages, contextSize - answerReserve, (m) => this.promptTokens(m).length);
        } catch (error) {
            if (error instanceof ContextOverflowError) throw new SidecarError("contextOverflow", error.message);
            throw error;
        }
        const prompt = this.promptTokens(fit.kept);
        const reusedTokens = Math.min(commonPrefixLength(sequence.contextTokens, prompt), prompt.length - 1);
        const room = contextSize - prompt.length;
        const generationLimit = Math.min(maxTokens, room);

        const abort = new AbortController();
        this.running.add(abort);
        const cancelListener = cancel.onCancellationRequested(() => abort.abort());
        if (cancel.isCancellationRequested) abort.abort();
        const outputBefore = sequence.tokenMeter.usedOutputTokens;
        let firstTokenAt: number | undefined;
        let lastTokenAt = arrived;
        const chat = new LlamaChat({ contextSequence: sequence, chatWrapper: loaded.wrapper, autoDisposeSequence: false });
        try {
            const response = await chat.generateResponse(toChatHistory(fit.kept, true), {
                signal: abort.signal,
                stopOnAbortSignal: true,
                maxTokens: generationLimit,
                temperature: sampling.temperature ?? 0.7,
                topP: sampling.topP ?? 0.9,
                // A fresh seed per request unless fixed: the clock-based default repeats within a second.
                seed: sampling.seed ?? randomInt(0, 2 ** 31),
                tokenBias: sampling.tokenBias ? () => biasFor(loaded.model, sampling.tokenBias!) : undefined,
                onTextChunk: (text) => {
                    lastTokenAt = performance.now();
                    firstTokenAt ??= lastTokenAt;
                    onDelta(text);
                },
            });
            const completionTokens = sequence.tokenMeter.usedOutputTokens - outputBefore;
            const stopReason = toStopReason(response.metadata.stopReason, generationLimit < maxTokens);
            const decodeSeconds = firstTokenAt !== undefined ? (lastTokenAt - firstTokenAt) / 1000 : 0;
            return {
                text: response.response,
                stopReason,
                usage: { promptTokens: prompt.length, completionTokens, reusedTokens },
                timings: {
                    timeToFirstTokenMs: firstTokenAt !== undefined ? round(firstTokenAt - arrived) : -1,
                    tokensPerSecond: completionTokens > 1 && decodeSeconds > 0 ? round((completionTokens - 1) / decodeSeconds) : 0,
                    totalMs: round(performance.now() - arrived),
                },
                dropped:
                    fit.droppedIndices.length > 0
                        ? {
                              messageIndices: fit.droppedIndices,
                              tokens: this.promptTokens(messages).length - prompt.length,
                          }
                        : undefined,
                contextSize,
            };
        } catch (error) {
            if (isMemoryError(error)) throw new SidecarError("outOfMemory", `Out of memory while generating: ${errorText(error)}`);
            throw error;
        } finally {
            cancelListener.dispose();
            this.running.delete(abort);
            chat.dispose({ disposeSequence: false });
        }
    }

    private inConversationOrder<T>(conversationId: string, task: () => Promise<T>): Promise<T> {
        const previous = this.conversationTails.get(conversationId) ?? Promise.resolve();
        const run = previous.then(task, task);
        const tail = run.catch(() => undefined);
        this.conversationTails.set(conversationId, tail);
        void tail.then(() => {
            if (this.conversationTails.get(conversationId) === tail) this.conversationTails.delete(conversationId);
        });
        return run;
    }

    /** A sequence for this conversation: its own if it still has one, else a free or the least recently used idle one. */
    private async acquireSlot(conversationId: string, cancel: CancelSignal): Promise<Slot | undefined> {
        for (;;) {
            if (cancel.isCancellationRequested) return undefined;
            const loaded = this.requireModel();
            const idle = loaded.slots.filter((s) => !s.busy);
            const slot =
                idle.find((s) => s.conversationId === conversationId) ??
                idle.find((s) => s.conversationId === undefined) ??
                idle.sort((a, b) => a.lastUsed - b.lastUsed)[0];
            if (slot) {
                slot.busy = true;
                if (slot.conversationId !== conversationId) {
                    await slot.sequence.clearHistory();
                    slot.conversationId = conversationId;
                }
                return slot;
            }
            if (this.slotWaiters.length >= MAX_QUEUED_REQUESTS) {
                throw new SidecarError("busy", `The model is busy with ${MAX_QUEUED_REQUESTS} waiting requests; try again shortly.`);
            }
            await new Promise<void>((resolve) => {
                const wake = () => {
                    listener.dispose();
                    resolve();
                };
                const listener = cancel.onCancellationRequested(() => {
                    const at = this.slotWaiters.indexOf(wake);
                    if (at >= 0) this.slotWaiters.splice(at, 1);
                    wake();
                });
                this.slotWaiters.push(wake);
            });
        }
    }

    private releaseSlot(slot: Slot): void {
        slot.busy = false;
        slot.lastUsed = performance.now();
        this.slotWaiters.shift()?.();
    }

    private setState(state: SidecarState): void {
        this.state = state;
        this.events.status(state);
    }

    async dispose(): Promise<void> {
        await this.unload();
        for (const llama of this.llamas.values()) await (await llama.catch(() => undefined))?.dispose();
    }
}

function validateMessages(messages: readonly ChatMessage[]): void {
    if (!Array.isArray(messages) || messages.length === 0) {
        throw new SidecarError("invalidParams", "messages must be a non-empty list.");
    }
    for (const m of messages) {
        if (!m || typeof m.content !== "string" || !["system", "user", "assistant"].includes(m.role)) {
            throw new SidecarError("invalidParams", "Each message needs a role (system, user or assistant) and text content.");
        }
    }
    if (messages[messages.length - 1].role !== "user") {
        throw new SidecarError("invalidParams", "The last message must be the user's.");
    }
}

async function checkModelFile(modelPath: string): Promise<void> {
    if (typeof modelPath !== "string" || modelPath.trim() === "") {
        throw new SidecarError("modelMissing", "No model file is set. Set olmo.modelPath to a .gguf file.");
    }
    const info = await stat(modelPath).catch(() => undefined);
    if (!info) throw new SidecarError("modelMissing", `Model file not found: ${modelPath}. Check olmo.modelPath.`);
    if (info.isDirectory()) throw new SidecarError("modelInvalid", `${modelPath} is a folder, not a .gguf file.`);
    if (info.size === 0) throw new SidecarError("modelInvalid", `${modelPath} is empty (0 bytes); download it again.`);
    let architecture: string;
    try {
        const header = await readGgufFileInfo(modelPath, { readTensorInfo: true });
        architecture = header.metadata.general.architecture;
        // llama.cpp checks every tensor's bounds too, but with a less helpful message.
        const lastTensorStart = header.tensorInfo?.reduce((end, t) => Math.max(end, Number(t.fileOffset)), 0) ?? 0;
        if (lastTensorStart >= info.size) throw new Error("the file ends before its last tensor");
    } catch (error) {
        throw new SidecarError(
            "modelInvalid",
            `${modelPath} is not a valid GGUF model (${errorText(error)}). It may be truncated or another format; download it again.`,
        );
    }
    if (architecture !== "olmo2") {
        throw new SidecarError(
            "unsupportedArchitecture",
            `${modelPath} is a "${architecture}" model. OLMo Local formats prompts for OLMo-2 (olmo2) models only; choose an OLMo-2 GGUF.`,
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

function cancelledBeforeStart(arrived: number, contextSize: number): ChatResult {
    return {
        text: "",
        stopReason: "cancelled",
        usage: { promptTokens: 0, completionTokens: 0, reusedTokens: 0 },
        timings: { timeToFirstTokenMs: -1, tokensPerSecond: 0, totalMs: round(performance.now() - arrived) },
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

