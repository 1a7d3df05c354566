// The remote engine: the model runs on an inference server (llama.cpp's llama-server, or one with an
// OpenAI-compatible `/v1/completions`: vLLM, Ollama). The sidecar formats every prompt itself with
// the family's chat wrapper, exactly as locally, and asks for a raw completion of it, so that the
// server's own chat template can never change what the model reads. llama-server gets the prompt
// as token ids, each piece tokenized by the server's `/tokenize` the way the local engine tokenizes
// it (message text without control tokens): the same tokens as locally. Other servers get the text.
// The scheduler (scheduler.ts) stands in front as locally, with a slot per server slot.
import {
    LlamaText,
    SpecialToken,
    SpecialTokensText,
    type ChatWrapper,
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
    BASELINE_CONTEXT_SIZE,
    DEFAULT_MAX_TOKENS,
    DEFAULT_TEMPERATURE,
    DEFAULT_TOP_P,
} from "./defaults.js";
import type { EngineEvents } from "./engine.js";
import { errorText, SidecarError } from "./errors.js";
import { LoadChain, RunningRequests, throwIfUnloaded, type ModelEngine } from "./modelEngine.js";
import { RequestScheduler, type CancelSignal } from "./scheduler.js";
import { checkServerUrl, type ServerEndpoint } from "./serverUrl.js";
import { SseParser } from "./sse.js";
import type {
    ChatMessage,
    ChatResult,
    CountTokensResult,
    FormatPromptResult,
    ModelInfo,
    Sampling,
    ServerLoadParams,
    SidecarState,
    StopReason,
} from "./protocol.js";

/** How long a load's questions to the server, and a tokenization, may take before it counts as unreachable. */
const PROBE_TIMEOUT_MS = 10_000;
/** Tokenized texts kept (history repeats every turn); the cache is emptied when it grows past this. */
const TOKEN_CACHE_ENTRIES = 4096;
/** Without a tokenizer on the server, about this many characters make a token (dolma2 on code and English). */
const CHARS_PER_TOKEN_ESTIMATE = 4;
/** llama-server's sampling defaults differ from node-llama-cpp's; these make them the local ones. */
const LOCAL_SAMPLING_DEFAULTS = { top_k: 40, min_p: 0, repeat_penalty: 1 };

interface Connected {
    endpoint: ServerEndpoint;
    apiKey?: string;
    kind: "llama-server" | "openai";
    /** The model id sent with each request. */
    model: string;
    wrapper: ChatWrapper;
    bosText: string;
    eosText: string;
    /** Token ids of BOS and EOS (llama-server only). */
    builtinTokens: Map<string, Token>;
    /** How texts become token counts: the server's tokenizer, or an estimate. */
    tokenizer: "llama-server" | "vllm" | "estimate";
    info: ModelInfo;
}

/** What the server says about itself (llama-server's `/props`). */
interface LlamaServerProps {
    default_generation_settings?: { n_ctx?: number };
    total_slots?: number;
    model_path?: string;
    model_ftype?: string;
    chat_template?: string;
    bos_token?: string;
    eos_token?: string;
}

interface ServerModel {
    id: string;
    aliases?: string[];
    /** vLLM */
    max_model_len?: number;
    /** llama-server */
    meta?: { n_ctx_train?: number; n_params?: number; size?: number; ftype?: string };
}

/** One streamed chunk, llama-server's `/completion` and OpenAI's `/v1/completions` together. */
interface CompletionChunk {
    content?: string;
    stop?: boolean;
    stop_type?: string;
    tokens_predicted?: number;
    timings?: { cache_n?: number; prompt_n?: number; predicted_n?: number };
    choices?: Array<{ text?: string; finish_reason?: string | null }>;
    usage?: {
        completion_tokens?: number;
        prompt_tokens_details?: { cached_tokens?: number } | null;
    } | null;
    error?: unknown;
}

class NeedTokens extends Error {}

export class RemoteEngine implements ModelEngine {
    private connected?: Connected;
    private readonly loads = new LoadChain();
    private readonly scheduler = new RequestScheduler<number>();
    private readonly running = new RunningRequests();
    private readonly tokenCache = new Map<string, Token[]>();
    private state: SidecarState = { state: "idle" };

    constructor(private readonly events: EngineEvents) {}

    get modelInfo(): ModelInfo | null {
        return this.connected?.info ?? null;
    }

    /** Loads are serialized; a new one replaces the current server. */
    load(params: ServerLoadParams): Promise<ModelInfo> {
        return this.loads.run(() => this.loadNow(params));
    }

    async unload(): Promise<void> {
        this.connected = undefined;
        this.tokenCache.clear();
        this.scheduler.clear(
            new SidecarError(
                "modelNotLoaded",
                "The model was unloaded before this request started.",
            ),
        );
        this.running.unloaded();
        this.setState({ state: "idle" });
    }

    dispose(): Promise<void> {
        return this.unload();
    }

    private async loadNow(params: ServerLoadParams): Promise<ModelInfo> {
        await this.unload();
        try {
            const endpoint = checkServerUrl(params.server.url);
            this.setState({ state: "loading", progress: 0, modelPath: endpoint.url });
            const connected = await this.connect(params, endpoint);
            this.connected = connected;
            this.scheduler.setSequences(
                Array.from({ length: connected.info.sequences }, (_, i) => i),
            );
            const { info } = connected;
            this.events.log(
                `connected to ${info.server!.kind} at ${endpoint.host}: ${info.server!.model} ` +
                    `(${connected.wrapper.wrapperName} chat format), context ${info.contextSize}, ` +
                    `${info.sequences} slot(s), tokens by ${connected.tokenizer}, in ${info.loadMs} ms`,
            );
            this.setState({ state: "ready", model: info });
            return info;
        } catch (error) {
            const failure =
                error instanceof SidecarError
                    ? error
                    : new SidecarError(
                          "loadFailed",
                          `Could not use the OLMo server: ${errorText(error)}`,
                      );
            this.setState({ state: "error", code: failure.code, message: failure.message });
            throw failure;
        }
    }

    /** Finds out what the server is and serves, and checks that it can complete raw prompts. */
    private async connect(params: ServerLoadParams, endpoint: ServerEndpoint): Promise<Connected> {
        const started = performance.now();
        const http = new ServerHttp(endpoint, params.server.apiKey);
        const propsResponse = await http.send("GET", "/props", undefined, PROBE_TIMEOUT_MS);
        const isLlamaServer = propsResponse.status !== 404 && propsResponse.status !== 405;
        const props: LlamaServerProps | undefined = isLlamaServer
            ? ((await http.json(propsResponse, "/props")) as LlamaServerProps)
            : undefined;
        const models = (
            (await http.json(
                await http.send("GET", "/v1/models", undefined, PROBE_TIMEOUT_MS),
                "/v1/models",
            )) as { data?: ServerModel[] }
        ).data;
        if (!Array.isArray(models) || models.length === 0)
            throw new SidecarError(
                "serverModelNotFound",
                `The OLMo server at ${endpoint.host} serves no model (its /v1/models list is empty).`,
            );
        const wanted = params.server.model;
        const served =
            wanted === undefined
                ? models[0]!
                : models.find((m) => m.id === wanted || m.aliases?.includes(wanted));
        if (!served)
            throw new SidecarError(
                "serverModelNotFound",
                `The OLMo server at ${endpoint.host} does not serve the model ${JSON.stringify(wanted)}; ` +
                    `it serves ${models.map((m) => JSON.stringify(m.id)).join(", ")}.`,
            );
        const modelFile = props?.model_path?.split(/[\\/]/).pop();
        const name = modelFile || served.id;
        const format = serverChatFormat(endpoint, name, served.id, props);
        const serverContext =
            props?.default_generation_settings?.n_ctx ??
            served.max_model_len ??
            served.meta?.n_ctx_train;
        const contextSize = Math.min(
            params.contextSize ?? serverContext ?? BASELINE_CONTEXT_SIZE,
            serverContext ?? BASELINE_CONTEXT_SIZE,
        );
        const kind = props ? "llama-server" : "openai";
        const connected: Connected = {
            endpoint,
            apiKey: params.server.apiKey,
            kind,
            model: served.id,
            wrapper: chatWrapperFor(format),
            bosText: props?.bos_token ?? "<|endoftext|>",
            eosText: props?.eos_token ?? "<|endoftext|>",
            builtinTokens: new Map(),
            tokenizer: "estimate",
            info: {
                path: endpoint.url,
                name,
                architecture: "olmo2",
                quantization:
                    props?.model_ftype ??
                    served.meta?.ftype ??
                    /(?:^|[-_.])((?:I?Q\d(?:_[A-Z0-9]+)*)|BF16|F16|F32)(?:[-_.]|$)/i
                        .exec(name)?.[1]
                        ?.toUpperCase() ??
                    "unknown",
                fileSizeBytes: served.meta?.size ?? 0,
                parameters: served.meta?.n_params,
                contextSize,
                trainContextSize: served.meta?.n_ctx_train ?? serverContext ?? contextSize,
                sequences: Math.max(1, props?.total_slots ?? 1),
                backend: "server",
                gpuLayers: 0,
                totalLayers: 0,
                threads: 0,
                loadMs: 0,
                server: { url: endpoint.url, host: endpoint.host, model: served.id, kind },
            },
        };
        if (kind === "llama-server") {
            connected.tokenizer = "llama-server";
            for (const [name, text] of [
                ["BOS", connected.bosText],
                ["EOS", connected.eosText],
            ] as const) {
                const tokens = await this.tokenizeOnServer(http, text, true);
                if (tokens.length === 1) connected.builtinTokens.set(name, tokens[0]!);
            }
        } else {
            await this.checkRawCompletions(http, connected);
            connected.tokenizer = await http
                .send(
                    "POST",
                    "/tokenize",
                    { model: served.id, prompt: "x", add_special_tokens: false },
                    PROBE_TIMEOUT_MS,
                )
                .then((r) => (r.ok ? "vllm" : "estimate"));
        }
        connected.info.loadMs = Math.round(performance.now() - started);
        return connected;
    }

    /** An OpenAI-compatible server must offer `/v1/completions`; one with chat completions only is refused. */
    private async checkRawCompletions(http: ServerHttp, connected: Connected): Promise<void> {
        const response = await http.send(
            "POST",
            "/v1/completions",
            { model: connected.model, prompt: "\n", max_tokens: 1, temperature: 0 },
            PROBE_TIMEOUT_MS,
        );
        if (response.status === 404 || response.status === 405) {
            const chat = await http.send("POST", "/v1/chat/completions", {}, PROBE_TIMEOUT_MS);
            throw new SidecarError(
                chat.status === 404 || chat.status === 405
                    ? "serverModelNotFound"
                    : "serverUnsupported",
                chat.status === 404 || chat.status === 405
                    ? `The OLMo server at ${connected.endpoint.host} has neither /completion (llama-server) nor /v1/completions; it is not an inference server OLMo Local can use.`
                    : `The OLMo server at ${connected.endpoint.host} offers only chat completions (/v1/chat/completions), where its own chat template would format the prompt. ` +
                          `OLMo Local sends the exact OLMo prompt it formats itself and needs raw completions: enable /v1/completions on the server, or use llama-server or vLLM.`,
            );
        }
        await http.json(response, "/v1/completions");
    }

    private requireServer(): Connected {
        if (!this.connected)
            throw new SidecarError(
                "modelNotLoaded",
                this.state.state === "loading"
                    ? "The OLMo server is still being connected to; try again when it is ready."
                    : "No model is loaded: the OLMo server could not be used. See the model status for why.",
            );
        return this.connected;
    }

    private async tokenizeOnServer(
        http: ServerHttp,
        text: string,
        special: boolean,
        signal?: AbortSignal,
    ): Promise<Token[]> {
        const response = await http.send(
            "POST",
            "/tokenize",
            { content: text, add_special: false, parse_special: special },
            PROBE_TIMEOUT_MS,
            signal,
        );
        return ((await http.json(response, "/tokenize")) as { tokens: Token[] }).tokens;
    }

    /** A texts' tokens (or their estimate) into the cache, asked of the server in parallel. */
    private async fetchTokens(
        connected: Connected,
        keys: Iterable<string>,
        signal?: AbortSignal,
    ): Promise<void> {
        const http = new ServerHttp(connected.endpoint, connected.apiKey);
        if (this.tokenCache.size > TOKEN_CACHE_ENTRIES) this.tokenCache.clear();
        await Promise.all(
            [...keys].map(async (key) => {
                const special = key.startsWith("s");
                const text = key.slice(2);
                let tokens: Token[];
                if (connected.tokenizer === "llama-server")
                    tokens = await this.tokenizeOnServer(http, text, special, signal);
                else if (connected.tokenizer === "vllm") {
                    const response = await http.send(
                        "POST",
                        "/tokenize",
                        { model: connected.model, prompt: text, add_special_tokens: false },
                        PROBE_TIMEOUT_MS,
                        signal,
                    );
                    tokens = ((await http.json(response, "/tokenize")) as { tokens: Token[] })
                        .tokens;
                } else
                    tokens = new Array<Token>(
                        Math.ceil(text.length / CHARS_PER_TOKEN_ESTIMATE),
                    ).fill(0 as Token);
                this.tokenCache.set(key, tokens);
            }),
        );
    }

    /**
     * Runs `compute` with a tokenizer that answers from the cache; texts it lacks are tokenized on
     * the server and `compute` runs again, until nothing is missing. (Fitting asks about a few
     * candidate prompts, each mostly the texts of the one before.)
     */
    private async withTokenizer<T>(
        compute: (tokenizer: Tokenizer) => T,
        signal?: AbortSignal,
    ): Promise<T> {
        const connected = this.requireServer();
        for (;;) {
            const missing = new Set<string>();
            const tokenize = (text: string, specialTokens?: boolean | "builtin"): Token[] => {
                if (specialTokens === "builtin") {
                    const token = connected.builtinTokens.get(text);
                    if (token !== undefined) return [token];
                    if (connected.tokenizer !== "llama-server") return [0 as Token];
                    throw new SidecarError(
                        "serverUnsupported",
                        `The OLMo server at ${connected.endpoint.host} has no single token for ${text}; its model is not an OLMo.`,
                    );
                }
                if (text === "") return [];
                const key = `${specialTokens ? "s" : "t"}:${text}`;
                const tokens = this.tokenCache.get(key);
                if (tokens) return tokens;
                missing.add(key);
                throw new NeedTokens();
            };
            const tokenizer = Object.assign(tokenize, {
                detokenize: () => "",
                isSpecialToken: () => false,
                isEogToken: () => false,
            }) as unknown as Tokenizer;
            try {
                return compute(tokenizer);
            } catch (error) {
                if (!(error instanceof NeedTokens)) throw error;
            }
            await this.fetchTokens(connected, missing, signal);
        }
    }

    private promptTokens(messages: readonly ChatMessage[], tokenizer: Tokenizer): Token[] {
        return this.contextText(messages).tokenize(tokenizer);
    }

    private contextText(messages: readonly ChatMessage[]): LlamaText {
        return this.requireServer().wrapper.generateContextState({
            chatHistory: toChatHistory(messages, true),
        }).contextText;
    }

    /** The prompt as text, control tokens written as their text (as formatPrompt shows it locally). */
    private promptText(messages: readonly ChatMessage[]): string {
        const connected = this.requireServer();
        return this.contextText(messages)
            .values.map((value) => {
                if (typeof value === "string") return value;
                if (value instanceof SpecialTokensText) return value.value;
                if (value instanceof SpecialToken)
                    return value.value === "BOS"
                        ? connected.bosText
                        : value.value === "EOS"
                          ? connected.eosText
                          : "";
                return "";
            })
            .join("");
    }

    async formatPrompt(messages: readonly ChatMessage[]): Promise<FormatPromptResult> {
        const tokens = await this.withTokenizer((t) => this.promptTokens(messages, t));
        return { text: this.promptText(messages), tokens: tokens.length, tokenIds: tokens.slice() };
    }

    async countTokens(input: {
        messages?: readonly ChatMessage[];
        text?: string;
    }): Promise<CountTokensResult> {
        const tokens = await this.withTokenizer((t) =>
            input.messages !== undefined
                ? this.promptTokens(input.messages, t).length
                : t(input.text ?? "", false).length,
        );
        return { tokens, contextSize: this.requireServer().info.contextSize };
    }

    async chat(
        conversationId: string,
        messages: readonly ChatMessage[],
        sampling: Sampling,
        onDelta: (text: string) => void,
        cancel: CancelSignal,
        options: { caller?: string; promptLookup?: boolean; oneOff?: boolean } = {},
    ): Promise<ChatResult> {
        const arrived = performance.now();
        const connected = this.requireServer();
        const slot = await this.scheduler.acquire(conversationId, cancel, options.caller);
        if (!slot) return cancelledBeforeStart(arrived, connected.info.contextSize);
        try {
            slot.conversationId = conversationId;
            return await this.generate(connected, messages, sampling, onDelta, cancel, arrived);
        } finally {
            if (options.oneOff) slot.conversationId = undefined;
            this.scheduler.release(slot, conversationId);
        }
    }

    /** A rewrite: a one-off conversation. Prompt-lookup drafts are the local engine's; a server decodes as it is set up to. */
    rewrite(
        conversationId: string,
        messages: readonly ChatMessage[],
        sampling: Sampling,
        onDelta: (text: string) => void,
        cancel: CancelSignal,
    ): Promise<ChatResult> {
        return this.chat(conversationId, messages, sampling, onDelta, cancel, { oneOff: true });
    }

    private async generate(
        connected: Connected,
        messages: readonly ChatMessage[],
        sampling: Sampling,
        onDelta: (text: string) => void,
        cancel: CancelSignal,
        arrived: number,
    ): Promise<ChatResult> {
        const { contextSize } = connected.info;
        const maxTokens = Math.max(1, sampling.maxTokens ?? DEFAULT_MAX_TOKENS);
        const { signal, end } = this.running.start(cancel);
        let text = "";
        let firstTokenAt: number | undefined;
        let lastTokenAt = arrived;
        let deltas = 0;
        try {
            let fit;
            try {
                fit = await this.withTokenizer(
                    (t) =>
                        fitToContext(
                            messages,
                            contextSize - answerReserve(maxTokens, contextSize),
                            (m) => this.promptTokens(m, t).length,
                        ),
                    signal,
                );
            } catch (error) {
                if (error instanceof ContextOverflowError)
                    throw new SidecarError("contextOverflow", error.message);
                throw error;
            }
            const prompt = await this.withTokenizer((t) => this.promptTokens(fit.kept, t), signal);
            const generationLimit = Math.max(1, Math.min(maxTokens, contextSize - prompt.length));
            const seed = sampling.seed ?? Math.floor(Math.random() * 2 ** 31);
            const temperature = sampling.temperature ?? DEFAULT_TEMPERATURE;
            const topP = sampling.topP ?? DEFAULT_TOP_P;
            const logitBias = sampling.tokenBias ? Object.entries(sampling.tokenBias) : undefined;
            const http = new ServerHttp(connected.endpoint, connected.apiKey);
            const [path, body] =
                connected.kind === "llama-server"
                    ? [
                          "/completion",
                          {
                              prompt,
                              stream: true,
                              cache_prompt: true,
                              n_predict: generationLimit,
                              temperature,
                              top_p: topP,
                              seed,
                              ...LOCAL_SAMPLING_DEFAULTS,
                              ...(logitBias ? { logit_bias: logitBias } : {}),
                          },
                      ]
                    : [
                          "/v1/completions",
                          {
                              model: connected.model,
                              prompt: this.promptText(fit.kept),
                              stream: true,
                              stream_options: { include_usage: true },
                              max_tokens: generationLimit,
                              temperature,
                              top_p: topP,
                              seed,
                          },
                      ];
            let final: CompletionChunk | undefined;
            let usage: CompletionChunk["usage"];
            let finishReason: string | undefined;
            try {
                const response = await http.send("POST", path, body, undefined, signal);
                if (!response.ok || !response.body) await http.json(response, path);
                const parser = new SseParser();
                const decoder = new TextDecoder();
                const handle = (data: string, event: string) => {
                    if (data === "[DONE]") return;
                    const chunk = parseChunk(data, connected.endpoint.host);
                    if (event === "error" || chunk.error !== undefined)
                        throw http.streamError(chunk.error ?? chunk);
                    const delta = chunk.content ?? chunk.choices?.[0]?.text ?? "";
                    if (delta !== "") {
                        lastTokenAt = performance.now();
                        firstTokenAt ??= lastTokenAt;
                        deltas++;
                        text += delta;
                        onDelta(delta);
                    }
                    finishReason = chunk.choices?.[0]?.finish_reason ?? finishReason;
                    if (chunk.usage) usage = chunk.usage;
                    if (chunk.stop) final = chunk;
                };
                for await (const bytes of response.body!) {
                    for (const e of parser.push(
                        decoder.decode(bytes as Uint8Array, { stream: true }),
                    ))
                        handle(e.data, e.event);
                }
                for (const e of parser.end()) handle(e.data, e.event);
                // A stream that stops without its end (a final chunk, a finish reason) lost the
                // rest of the answer: say so rather than pass the part off as the whole.
                if (!signal.aborted && final === undefined && finishReason === undefined)
                    throw http.cutOff(`the stream ended without the end of the answer`);
            } catch (error) {
                if (signal.aborted) {
                    // Stopped (an unload throws just below): what came so far is the answer.
                } else if (error instanceof SidecarError) throw error;
                else throw http.cutOff(`the connection broke (${errorText(error)})`);
            }
            throwIfUnloaded(signal);
            const cancelled = signal.aborted;
            const limited =
                final?.stop_type === "limit" || finishReason === "length"
                    ? generationLimit < maxTokens
                        ? "contextFull"
                        : "maxTokens"
                    : undefined;
            const stopReason: StopReason = cancelled ? "cancelled" : (limited ?? "eos");
            const completionTokens =
                final?.timings?.predicted_n ??
                final?.tokens_predicted ??
                usage?.completion_tokens ??
                deltas;
            const decodeSeconds =
                firstTokenAt !== undefined ? (lastTokenAt - firstTokenAt) / 1000 : 0;
            return {
                text,
                stopReason,
                usage: {
                    promptTokens: prompt.length,
                    completionTokens,
                    reusedTokens:
                        final?.timings?.cache_n ?? usage?.prompt_tokens_details?.cached_tokens ?? 0,
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
                              tokens:
                                  (await this.withTokenizer(
                                      (t) => this.promptTokens(messages, t).length,
                                  )) - prompt.length,
                          }
                        : undefined,
                contextSize,
            };
        } catch (error) {
            throwIfUnloaded(signal);
            if (signal.aborted && firstTokenAt === undefined)
                return cancelledBeforeStart(arrived, contextSize);
            throw error;
        } finally {
            end();
        }
    }

    private setState(state: SidecarState): void {
        this.state = state;
        this.events.status(state);
    }
}

/** The family from the server's chat template, else from the model's name (OLMo 2 only: OLMo 3's default system prompt is in its template). */
function serverChatFormat(
    endpoint: ServerEndpoint,
    name: string,
    id: string,
    props: LlamaServerProps | undefined,
): ChatFormat {
    let templateProblem = "the server does not report its chat template";
    if (props?.chat_template) {
        try {
            return chatFormatOf({
                template: props.chat_template,
                bosText: props.bos_token ?? "",
                eosText: props.eos_token ?? "",
                slidingWindow: false,
            });
        } catch (error) {
            if (!(error instanceof UnsupportedChatFormatError)) throw error;
            templateProblem = error.message;
        }
    }
    const names = `${name} ${id}`;
    if (/olmo[-_ ]?2/i.test(names) && !/olmo[-_ ]?3/i.test(names)) return { family: "olmo2" };
    throw new SidecarError(
        "serverUnsupported",
        `The OLMo server at ${endpoint.host} serves ${JSON.stringify(id)}, whose prompt format OLMo Local cannot tell ` +
            `(${templateProblem}; its name does not say OLMo 2). OLMo Local formats prompts for ${SUPPORTED_CHAT_FORMATS} only` +
            ` (an OLMo 3 model only on llama-server, which reports the template with the default system prompt).`,
    );
}

function parseChunk(data: string, host: string): CompletionChunk {
    try {
        return JSON.parse(data) as CompletionChunk;
    } catch {
        throw new SidecarError(
            "serverUnsupported",
            `The OLMo server at ${host} streamed something that is not JSON: ${JSON.stringify(data.slice(0, 120))}.`,
        );
    }
}

/** HTTP to one server: the API key as a bearer token, and every failure as an error naming the server and the cause. */
class ServerHttp {
    constructor(
        private readonly endpoint: ServerEndpoint,
        private readonly apiKey: string | undefined,
    ) {}

    async send(
        method: "GET" | "POST",
        path: string,
        body?: unknown,
        timeoutMs?: number,
        signal?: AbortSignal,
    ): Promise<Response> {
        const signals = [
            ...(signal ? [signal] : []),
            ...(timeoutMs !== undefined ? [AbortSignal.timeout(timeoutMs)] : []),
        ];
        try {
            return await fetch(`${this.endpoint.base}${path}`, {
                method,
                headers: {
                    ...(body !== undefined ? { "content-type": "application/json" } : {}),
                    ...(this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {}),
                },
                body: body !== undefined ? JSON.stringify(body) : undefined,
                signal: signals.length > 0 ? AbortSignal.any(signals) : undefined,
                redirect: "error",
            });
        } catch (error) {
            if (signal?.aborted) throw error;
            throw this.unreachable(error, timeoutMs);
        }
    }

    /** The response's JSON, or the error its status means. */
    async json(response: Response, path: string): Promise<unknown> {
        const text = await response.text().catch(() => "");
        if (!response.ok) throw this.statusError(response, path, text);
        try {
            return JSON.parse(text);
        } catch {
            throw new SidecarError(
                "serverUnsupported",
                `The OLMo server at ${this.endpoint.host} answered ${path} with something that is not JSON: ${JSON.stringify(text.slice(0, 120))}.`,
            );
        }
    }

    private unreachable(error: unknown, timeoutMs: number | undefined): SidecarError {
        const cause = (error as { cause?: { code?: string; message?: string } }).cause;
        const code = cause?.code ?? (error as Error).name;
        const reason =
            code === "ECONNREFUSED"
                ? "it refused the connection (is the server running, on this port?)"
                : code === "ENOTFOUND" || code === "EAI_AGAIN"
                  ? "no such host"
                  : code === "TimeoutError" ||
                      code === "UND_ERR_CONNECT_TIMEOUT" ||
                      code === "ETIMEDOUT"
                    ? `it did not answer within ${((timeoutMs ?? PROBE_TIMEOUT_MS) / 1000).toFixed(0)} s`
                    : /certificate|self[- ]signed|CERT_/i.test(`${code} ${cause?.message}`)
                      ? `its https certificate is not trusted (${cause?.message ?? code})`
                      : (cause?.message ?? errorText(error));
        return new SidecarError(
            "serverUnreachable",
            `Cannot reach the OLMo server at ${this.endpoint.host}: ${reason}.`,
        );
    }

    private statusError(response: Response, path: string, body: string): SidecarError {
        const { status } = response;
        const { message, type } = serverMessage(body);
        const host = this.endpoint.host;
        const said = message ? `: ${message}` : "";
        if (status === 401 || status === 403)
            return new SidecarError(
                "serverUnauthorized",
                `The OLMo server at ${host} refused ${this.apiKey ? "the API key" : "the request without an API key"} (${status}${said}). Set the server's API key.`,
            );
        if (status === 404)
            return new SidecarError(
                "serverModelNotFound",
                `The OLMo server at ${host} has no ${path}, or not the model asked for (404${said}).`,
            );
        if (status === 429 || status === 503) {
            const retryAfterMs = retryAfter(response.headers.get("retry-after"));
            return new SidecarError(
                "serverOverloaded",
                `The OLMo server at ${host} is overloaded (${status}${said}); ` +
                    (retryAfterMs !== undefined
                        ? `try again in ${Math.ceil(retryAfterMs / 1000)} s.`
                        : "try again shortly."),
                retryAfterMs,
            );
        }
        if (
            status === 400 &&
            (type === "exceed_context_size_error" ||
                /context (length|size|window)|maximum context|too (long|many tokens)/i.test(
                    message,
                ))
        )
            return new SidecarError(
                "contextOverflow",
                `The prompt is too large for the context of the OLMo server at ${host}${said}. Shorten it, or start a new conversation.`,
            );
        return new SidecarError(
            status >= 500 ? "serverUnreachable" : "serverUnsupported",
            `The OLMo server at ${host} answered ${path} with ${status}${said}.`,
        );
    }

    /** The answer stopped coming before its end. */
    cutOff(reason: string): SidecarError {
        return new SidecarError(
            "serverUnreachable",
            `The OLMo server at ${this.endpoint.host} stopped answering mid-way: ${reason}. The text so far was shown; ask again.`,
        );
    }

    /** An error event in the middle of a stream (llama-server sends them as `data: {"error": ...}`). */
    streamError(error: unknown): SidecarError {
        const { message, type } = serverMessage(JSON.stringify({ error }));
        if (type === "exceed_context_size_error" || /context/i.test(message))
            return new SidecarError(
                "contextOverflow",
                `The prompt is too large for the context of the OLMo server at ${this.endpoint.host}: ${message}.`,
            );
        return new SidecarError(
            "serverUnsupported",
            `The OLMo server at ${this.endpoint.host} stopped with an error: ${message || "no reason given"}.`,
        );
    }
}

/** The message in a server's error body: llama-server's `{error: {message, type}}`, OpenAI's and vLLM's, Ollama's `{error: "..."}`. */
function serverMessage(body: string): { message: string; type?: string } {
    let parsed: unknown;
    try {
        parsed = JSON.parse(body);
    } catch {
        return { message: body.trim().slice(0, 300) };
    }
    const record = (parsed ?? {}) as Record<string, unknown>;
    const error = record.error;
    if (typeof error === "string") return { message: error };
    const inner = (typeof error === "object" && error !== null ? error : record) as Record<
        string,
        unknown
    >;
    const message = inner.message ?? inner.detail ?? "";
    return {
        message: (typeof message === "string" ? message : JSON.stringify(message)).slice(0, 300),
        type: typeof inner.type === "string" ? inner.type : undefined,
    };
}

/** Retry-After in milliseconds: seconds, or an HTTP date. */
function retryAfter(header: string | null): number | undefined {
    if (header === null) return undefined;
    const seconds = Number(header);
    if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
    const date = Date.parse(header);
    return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

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

function round(n: number): number {
    return Math.round(n * 10) / 10;
}
