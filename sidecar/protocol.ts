// The extension <-> sidecar protocol: JSON-RPC 2.0 over stdio (LSP framing).
// Defined once here, with no runtime dependencies, and imported by both ends.
// The sidecar serves it, so it lives in sidecar/.

/**
 * Raised with any change that an older or newer other end would misread. The extension refuses a
 * sidecar that reports another version (`protocolMismatch`): both ship in one package, so a
 * mismatch means mixed builds (a stale dist/, a half-finished update), not a setting to fix.
 */
export const PROTOCOL_VERSION = 2;

/** Why this extension cannot use the sidecar that answered `initialize`; undefined when it can. */
export function protocolMismatch(
    capabilities: Partial<SidecarCapabilities> | undefined,
): string | undefined {
    const version = capabilities?.protocolVersion;
    if (version === PROTOCOL_VERSION) return undefined;
    const theirs =
        typeof version === "number" ? `protocol version ${version}` : "no protocol version";
    return (
        `The OLMo model process reports ${theirs}, but this extension needs version ` +
        `${PROTOCOL_VERSION}: the two are from different builds. Reinstall OLMo Local.`
    );
}

/**
 * This machine, as a URL's hostname writes it: `localhost`, 127.0.0.0/8 or `[::1]`. The only hosts
 * a team server may be reached at over plain http (checked as typed in the extension, and again
 * in the sidecar before anything is sent).
 */
export function isLoopbackHost(hostname: string): boolean {
    return /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i.test(hostname);
}

export type GpuChoice = "auto" | "cuda" | "vulkan" | "metal" | "cpu";
export type Backend = "cuda" | "vulkan" | "metal" | "cpu";

/** Returned in `initialize`'s `serverInfo` / `capabilities.experimental.olmo`. */
export interface SidecarCapabilities {
    protocolVersion: number;
    sidecarVersion: string;
    nodeLlamaCppVersion: string;
    /** Backends whose binaries are present for this platform (not a promise that a GPU exists). */
    backends: Backend[];
    cpuCores: number;
}

export type Role = "system" | "user" | "assistant";
export interface ChatMessage {
    role: Role;
    content: string;
}

export interface Sampling {
    /** 0 means greedy. */
    temperature?: number;
    topP?: number;
    maxTokens?: number;
    /** Fixed seed; when absent each request draws a fresh one, so Retry does not repeat itself. */
    seed?: number;
    /** Text -> bias added to the logits of the tokens of that text (llama.cpp's logit bias). */
    tokenBias?: Record<string, number>;
}

/** A model file on this machine, run by the sidecar itself (node-llama-cpp). */
export interface LocalLoadParams {
    modelPath: string;
    gpu?: GpuChoice;
    /** "auto" fits what the VRAM allows. */
    gpuLayers?: "auto" | number;
    contextSize?: number;
    /** Capped at the machine's math cores. */
    threads?: number;
    /** Conversations kept in the KV cache at once (each costs a full context of KV memory). */
    sequences?: number;
}

/** An inference server (llama-server, or one with an OpenAI-compatible `/v1/completions`). */
export interface ServerTarget {
    /** `https://...`; plain `http://` only for this machine (127.0.0.1, localhost, [::1]). */
    url: string;
    /** Sent as `Authorization: Bearer`; never logged. */
    apiKey?: string;
    /** The server's model id; default: the one it serves. */
    model?: string;
}

/** Runs the model on a server: the sidecar formats each prompt itself and streams raw completions. */
export interface ServerLoadParams {
    server: ServerTarget;
    /** At most the server's own context; default: the server's. */
    contextSize?: number;
}

export type LoadParams = LocalLoadParams | ServerLoadParams;

export function isServerLoad(params: LoadParams): params is ServerLoadParams {
    return "server" in params;
}

/** Where a server-run model runs (ModelInfo.server). */
export interface ServerModelInfo {
    /** As configured (no API key in it). */
    url: string;
    /** The URL's host (and port when not the default), for "OLMo on <host>". */
    host: string;
    /** The server's model id. */
    model: string;
    /** llama-server (found by its `/props`), or another OpenAI-compatible server (vLLM, Ollama). */
    kind: "llama-server" | "openai";
}

/**
 * The loaded model. For a server (`server` present): `path` is the server's URL, `name` its model
 * (file name or id), `architecture` "olmo2", `contextSize` the server's context (per slot for
 * llama-server) and `trainContextSize` the model's where the server reports it (else the context);
 * `backend` is "server" and what this machine does not know is zero or absent: `fileSizeBytes`
 * (llama-server reports it; else 0), `gpuLayers`, `totalLayers` and `threads` (0), `vramBytes`,
 * `ramBytes`; `sequences` is the server's parallel slots (1 when it does not say); `loadMs` is the
 * time to reach the server and read its model.
 */
export interface ModelInfo {
    path: string;
    name: string;
    architecture: string;
    /** e.g. "Q4_K_M"; "unknown" where neither the file nor the server's model name says. */
    quantization: string;
    fileSizeBytes: number;
    parameters?: number;
    contextSize: number;
    trainContextSize: number;
    sequences: number;
    backend: Backend | "server";
    gpuName?: string;
    gpuLayers: number;
    totalLayers: number;
    threads: number;
    loadMs: number;
    vramBytes?: number;
    ramBytes?: number;
    /** Present when memory ran short at the requested settings: what was reduced to load anyway. */
    fallback?: string;
    /** Present when the model runs on a server. */
    server?: ServerModelInfo;
}

/**
 * The most text (characters, all fields together) one request may carry. A 4096-token context
 * holds about 16 KB of text; tokenizing megabytes blocks the process for seconds, so the sidecar
 * refuses a larger request at once as too large for the context, and the extension does not send one.
 */
export const MAX_TEXT_CHARS = 1024 * 1024;

export interface ChatParams {
    conversationId: string;
    messages: ChatMessage[];
    sampling?: Sampling;
    /**
     * Another extension's id, for a request that came through vscode.lm: it waits behind the
     * user's own chat, explain and rewrite requests, and each caller may have at most
     * MAX_QUEUED_PER_CALLER (2) waiting (more get `busy`).
     */
    caller?: string;
    /** Prompt-lookup drafts, off unless true (see `ExplainParams.speculative`). */
    speculative?: boolean;
    /** LSP partial result token: text deltas arrive as `$/progress` with a `ChatDelta` value. */
    partialResultToken?: string | number;
}

export interface ExplainParams {
    conversationId: string;
    /** The conversation so far; the explanation request is appended to it. */
    history?: ChatMessage[];
    code: string;
    language: string;
    fileName?: string;
    /** "12-30" style, for the prompt only. */
    lines?: string;
    instruction?: string;
    sampling?: Sampling;
    /**
     * Prompt-lookup drafts (as `RewriteParams.speculative`), off unless true: for measurement
     * (npm run bench). A conversation's sequence keeps one predictor, so a turn that changed it
     * would evaluate the whole history again, and a chat answer is mostly prose.
     */
    speculative?: boolean;
    partialResultToken?: string | number;
}

export interface RewriteParams {
    code: string;
    language: string;
    fileName?: string;
    instruction: string;
    sampling?: Sampling;
    /**
     * Prompt-lookup speculative decoding: tokens of the code are proposed as drafts and checked by
     * the model in the same batch as its next step, sooner when the answer copies the code. On
     * unless false (false: plain decoding, for measurement); greedy and sampled rewrites alike,
     * since every token is still sampled from the model's own logits (sidecar/speculation.ts).
     */
    speculative?: boolean;
    partialResultToken?: string | number;
}

/** The value of each `$/progress` notification on a partial result token. */
export interface ChatDelta {
    text: string;
    /** The text replaces everything streamed so far (rewrite: the code extraction changed). */
    replace?: boolean;
}

export type StopReason = "eos" | "maxTokens" | "cancelled" | "contextFull";

export interface Usage {
    promptTokens: number;
    completionTokens: number;
    /** Prompt tokens taken from the KV cache instead of being evaluated again. */
    reusedTokens: number;
    /** Speculative decoding only: draft tokens the model checked, and those it agreed with. */
    draftTokens?: number;
    acceptedDraftTokens?: number;
}

export interface Timings {
    /** From the request's arrival to the first text delta. */
    timeToFirstTokenMs: number;
    /** Completion tokens per second, measured from the first token to the last. */
    tokensPerSecond: number;
    totalMs: number;
}

export interface DroppedTurns {
    /** Indices into the request's `messages` that were left out to fit the context. */
    messageIndices: number[];
    tokens: number;
}

export interface ChatResult {
    text: string;
    stopReason: StopReason;
    usage: Usage;
    timings: Timings;
    /** Present when old turns were dropped to fit the context; nothing is cut silently. */
    dropped?: DroppedTurns;
    contextSize: number;
}

export interface ExplainResult extends ChatResult {
    /** The user message the sidecar built and answered; the conversation keeps it. */
    prompt: string;
}

/** A rewrite streams code, not the raw answer: its deltas add up to `code`. */
export interface RewriteResult extends ChatResult {
    /** The code alone, parsed out of the answer (`text`). */
    code: string;
}

export type FitVerdict = "gpu" | "partial" | "cpu" | "none";

/** Whether a model and context fit this machine, from node-llama-cpp's estimates. */
export interface ModelFit {
    verdict: FitVerdict;
    /** Layers that fit on the GPU (all of them for "gpu"). */
    gpuLayers: number;
    totalLayers: number;
    contextSize: number;
    modelBytes: number;
    /** KV cache and compute buffers for the context. */
    contextBytes: number;
    fullGpuVramBytes: number;
    cpuOnlyRamBytes: number;
    freeVramBytes: number;
    freeRamBytes: number;
    /** A plain sentence, with a suggestion when it does not fit. */
    message: string;
}

export interface ModelSource {
    /** Hub endpoint; defaults to the sidecar's HF_ENDPOINT, else https://huggingface.co. */
    endpoint?: string;
    repo: string;
    file: string;
    revision?: string;
}

export interface InspectModelParams {
    /** A local .gguf, or */
    path?: string;
    /** a file on the hub (only its header is read). */
    source?: ModelSource;
    contextSize?: number;
}
export interface InspectModelResult extends ModelFit {
    architecture: string;
    backend: Backend;
}

/** A hub repository `owner/name`: letters, digits and "_.-", no "." or ".." segments. */
export function isHubRepoName(repo: string): boolean {
    return /^[\w.-]+\/[\w.-]+$/.test(repo) && !repo.split("/").some((s) => /^\.+$/.test(s));
}

/**
 * A model file name as the models folder takes it: a plain `*.gguf` name, no folders, `..` or
 * backslashes (it becomes a path there).
 */
export function isPlainGgufName(file: string): boolean {
    return /^\w[\w.+-]*\.gguf$/i.test(file) && !file.includes("..");
}

export interface DownloadParams extends ModelSource {
    /** The models folder. */
    directory: string;
    /** The user chose to download a file whose SHA-256 the hub does not publish. */
    allowUnverified?: boolean;
    /** Progress arrives as `$/progress` with a `DownloadProgress` value. */
    partialResultToken?: string | number;
}
export interface DownloadProgress {
    receivedBytes: number;
    totalBytes: number;
    bytesPerSecond: number;
}
export interface DownloadResult {
    path: string;
    /** The SHA-256 of what was received; checked against the hub's only where `verified`. */
    sha256: string;
    verified: boolean;
    totalBytes: number;
    /** Bytes kept from an earlier, interrupted attempt. */
    resumedFromBytes: number;
}

export interface CountTokensParams {
    messages?: ChatMessage[];
    text?: string;
}
export interface CountTokensResult {
    tokens: number;
    contextSize: number;
}

export interface FormatPromptParams {
    messages: ChatMessage[];
}
export interface FormatPromptResult {
    /** The exact prompt text, control tokens written as text. */
    text: string;
    tokens: number;
    /** The prompt's token ids, for checking what is and is not a control token. */
    tokenIds: number[];
}

export type SidecarState =
    | { state: "idle" }
    /** `modelPath`: the file, or the server's URL. */
    | { state: "loading"; progress: number; modelPath: string }
    | { state: "ready"; model: ModelInfo }
    | { state: "error"; code: ErrorCode; message: string };

/** Stable JSON-RPC error codes (server-defined range). */
export const ErrorCodes = {
    modelNotLoaded: -32001,
    modelMissing: -32002,
    modelInvalid: -32003,
    unsupportedArchitecture: -32004,
    outOfMemory: -32005,
    contextOverflow: -32006,
    busy: -32007,
    loadFailed: -32008,
    downloadFailed: -32009,
    downloadStalled: -32010,
    checksumMismatch: -32011,
    offline: -32012,
    diskFull: -32013,
    /** The hub publishes no SHA-256 for the file; `allowUnverified` downloads it anyway. */
    unverifiable: -32014,
    /** The server sent other bytes than it announced (more, or another range). */
    downloadMismatch: -32015,
    /** The server cannot be reached (refused, no such host, timed out, not https off this machine). */
    serverUnreachable: -32016,
    /** The server refused the API key (401/403). */
    serverUnauthorized: -32017,
    /** The server does not serve the model asked for, or has no raw-completion endpoint (404). */
    serverModelNotFound: -32018,
    /** The server is busy (429/503); `ErrorData.retryAfterMs` when it said when to retry. */
    serverOverloaded: -32019,
    /** The server answered, but not as a supported one does (chat completions only, another family). */
    serverUnsupported: -32020,
    invalidParams: -32602,
    /** LSP's RequestCancelled. */
    cancelled: -32800,
} as const;
export type ErrorCode = keyof typeof ErrorCodes;

/**
 * The `data` of every error response with a code above. A prompt too large for a server's context
 * is `contextOverflow`, as locally.
 */
export interface ErrorData {
    code: ErrorCode;
    /** serverOverloaded: the server's Retry-After, in milliseconds. */
    retryAfterMs?: number;
}

export function errorCodeName(code: number): ErrorCode | undefined {
    return (Object.keys(ErrorCodes) as ErrorCode[]).find((k) => ErrorCodes[k] === code);
}

/**
 * Request methods: name -> [params, result]. Both ends derive their typed helpers from this map.
 * `olmo/unload` and `olmo/modelInfo` are test and diagnostic methods: the extension learns the
 * model from `olmo/load`'s result and `olmo/status`, and stops the process instead of unloading;
 * the sidecar tests use them to free a model and to read what is loaded.
 */
export interface Requests {
    "olmo/load": [LoadParams, ModelInfo];
    /** Test and diagnostic: frees the model (queued requests fail, running ones stop). */
    "olmo/unload": [Record<string, never>, null];
    "olmo/chat": [ChatParams, ChatResult];
    "olmo/explain": [ExplainParams, ExplainResult];
    "olmo/rewrite": [RewriteParams, RewriteResult];
    "olmo/countTokens": [CountTokensParams, CountTokensResult];
    "olmo/formatPrompt": [FormatPromptParams, FormatPromptResult];
    /** Test and diagnostic: the loaded model, or null. */
    "olmo/modelInfo": [Record<string, never>, ModelInfo | null];
    "olmo/inspectModel": [InspectModelParams, InspectModelResult];
    "olmo/download": [DownloadParams, DownloadResult];
}

/** What a streamed request's `$/progress` notifications carry. */
export interface PartialResults {
    "olmo/chat": ChatDelta;
    "olmo/explain": ChatDelta;
    "olmo/rewrite": ChatDelta;
    "olmo/download": DownloadProgress;
}

/** Notifications, sidecar -> extension. */
export interface Notifications {
    "olmo/status": SidecarState;
}

export type RequestMethod = keyof Requests;
export type ParamsOf<M extends RequestMethod> = Requests[M][0];
export type ResultOf<M extends RequestMethod> = Requests[M][1];
