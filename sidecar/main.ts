// The sidecar process: serves the OLMo protocol (protocol.ts) over stdio with LSP framing. It never
// imports `vscode`; the extension starts it through vscode-languageclient and supervises it.
import "./stdoutGuard.js";
import os from "node:os";
import { createRequire } from "node:module";
import {
    createConnection,
    ProgressType,
    ResponseError,
    StreamMessageWriter,
    type CancellationToken,
    type ResponseMessage,
} from "vscode-languageserver/node";
import { DeltaBatcher } from "./deltaBatcher.js";
import { ResilientMessageReader } from "./frameReader.js";
import { checkParams } from "./params.js";
import { explainPrompt, rewritePrompt } from "./prompts.js";
import { RewriteCodeStream } from "./rewriteOutput.js";
import type { Engine } from "./engine.js";
import type { ModelEngine } from "./modelEngine.js";
import type { RemoteEngine } from "./remoteEngine.js";
import { errorText, SidecarError } from "./errors.js";
import {
    isServerLoad,
    PROTOCOL_VERSION,
    type Backend,
    type ChatDelta,
    type ChatMessage,
    type DownloadProgress,
    type LoadParams,
    type ModelInfo,
    type Notifications,
    type ParamsOf,
    type RequestMethod,
    type ResultOf,
    type SidecarCapabilities,
    type SidecarState,
} from "./protocol.js";

declare const SIDECAR_VERSION: string; // injected by the build

const JSONRPC_INVALID_REQUEST = -32600;
/** Logs reach the extension's log at info level through the protocol once it is up; stderr before. */
const log = (message: string) => {
    if (listening) connection.console.info(message);
    else process.stderr.write(`[sidecar] ${message}\n`);
};
let listening = false;
const writer = new StreamMessageWriter(process.stdout);
// Malformed frames are dropped and reading resumes at the next header (frameReader.ts); a
// well-formed message with an id that is not a request is answered Invalid Request.
const reader = new ResilientMessageReader(process.stdin, log, (id, reason) => {
    const response: ResponseMessage = {
        jsonrpc: "2.0",
        id,
        error: { code: JSONRPC_INVALID_REQUEST, message: reason },
    };
    void writer.write(response);
});
const connection = createConnection(reader, writer);
/** After `shutdown` every request is refused, as LSP asks, until `exit` or stdin closes. */
let shuttingDown = false;
// node-llama-cpp takes most of a second to import: load it (in its own chunk) on the first
// request that needs it, so that `initialize` answers at once.
let engine: Promise<Engine> | undefined;
function getEngine(): Promise<Engine> {
    engine ??= import("./engine.js").then(({ Engine }) => new Engine(engineEvents));
    return engine;
}
const engineEvents = { status: (state: SidecarState) => notify("olmo/status", state), log };
/** The engine a server load chose; undefined while the local engine serves (or nothing is loaded). */
let remote: RemoteEngine | undefined;
/** The engine the last load chose: the local one unless a server was loaded. */
async function activeEngine(): Promise<ModelEngine> {
    return remote ?? getEngine();
}
let loads: Promise<unknown> = Promise.resolve();
/** Loads one at a time; a load of the other kind first frees what the other engine holds. */
function load(params: LoadParams): Promise<ModelInfo> {
    const run = loads.then(async () => {
        if (isServerLoad(params)) {
            if (engine) await (await engine).unload();
            await remote?.unload();
            const { RemoteEngine } = await import("./remoteEngine.js");
            remote = new RemoteEngine(engineEvents);
            return remote.load(params);
        }
        await remote?.unload();
        remote = undefined;
        return (await getEngine()).load(params);
    });
    loads = run.catch(() => undefined);
    return run;
}
const deltaType = new ProgressType<ChatDelta>();

function notify<N extends keyof Notifications>(method: N, params: Notifications[N]): void {
    void connection.sendNotification(method, params);
}

/** Registers a handler for checked parameters (params.ts); errors become JSON-RPC errors with stable codes. */
function handle<M extends RequestMethod>(
    method: M,
    handler: (params: ParamsOf<M>, token: CancellationToken) => Promise<ResultOf<M>> | ResultOf<M>,
): void {
    // vscode-jsonrpc spreads positional (array) params before the token: take the token from the
    // end, and pass anything but a single value on to be refused.
    connection.onRequest(method, async (...args: unknown[]) => {
        const token = args.pop() as CancellationToken;
        try {
            if (shuttingDown)
                return new ResponseError(
                    JSONRPC_INVALID_REQUEST,
                    `The sidecar is shutting down; ${method} was not run.`,
                );
            return await handler(checkParams(method, args.length > 1 ? args : args[0]), token);
        } catch (error) {
            if (error instanceof SidecarError)
                return new ResponseError(error.rpcCode, error.message, error.data);
            log(`${method} failed: ${error instanceof Error ? error.stack : String(error)}`);
            return new ResponseError(-32603, `Internal error in ${method}: ${errorText(error)}`);
        }
    });
}

const downloadProgressType = new ProgressType<DownloadProgress>();

function abortSignalFor(token: CancellationToken): AbortSignal {
    const abort = new AbortController();
    if (token.isCancellationRequested) abort.abort();
    else token.onCancellationRequested(() => abort.abort());
    return abort.signal;
}

/** Text deltas for a request, coalesced and sent as `$/progress` on its partial result token. */
function streamTo(token: string | number | undefined): DeltaBatcher {
    return new DeltaBatcher((delta) => {
        if (token !== undefined) void connection.sendProgress(deltaType, token, delta);
    });
}

/** The backends whose prebuilt binary package shipped with this build, found without loading them. */
function shippedBackends(): Backend[] {
    const fromLlama = createRequire(import.meta.resolve("node-llama-cpp"));
    const platform =
        { win32: "win", darwin: "mac" }[process.platform as string] ?? process.platform;
    const candidates: Array<[Backend, string]> = [
        ["cuda", `${platform}-${process.arch}-cuda`],
        ["vulkan", `${platform}-${process.arch}-vulkan`],
        ["metal", `${platform}-${process.arch}-metal`],
        ["cpu", `${platform}-${process.arch}`],
    ];
    return candidates.flatMap(([backend, pkg]) => {
        try {
            fromLlama.resolve(`@node-llama-cpp/${pkg}`);
            return [backend];
        } catch {
            return [];
        }
    });
}

// Start importing the engine (node-llama-cpp) right after the handshake, so the first load
// does not wait for it; `initialize` itself stays fast.
connection.onInitialized(() => void getEngine());

connection.onInitialize(() => {
    const capabilities: SidecarCapabilities = {
        protocolVersion: PROTOCOL_VERSION,
        sidecarVersion: SIDECAR_VERSION,
        nodeLlamaCppVersion: NODE_LLAMA_CPP_VERSION,
        backends: shippedBackends(),
        cpuCores: os.availableParallelism(),
    };
    return {
        serverInfo: { name: "olmo-local-sidecar", version: SIDECAR_VERSION },
        capabilities: { experimental: { olmo: capabilities } },
    };
});

declare const NODE_LLAMA_CPP_VERSION: string; // injected by the build

handle("olmo/load", (params) => load(params));
handle("olmo/unload", async () => {
    await (await activeEngine()).unload();
    return null;
});
handle("olmo/modelInfo", async () => (await activeEngine()).modelInfo);
handle("olmo/countTokens", async (params) => (await activeEngine()).countTokens(params));
handle("olmo/formatPrompt", async (params) => (await activeEngine()).formatPrompt(params.messages));
handle("olmo/chat", async (params, token) => {
    const batcher = streamTo(params.partialResultToken);
    try {
        return await (
            await activeEngine()
        ).chat(
            params.conversationId,
            params.messages,
            params.sampling ?? {},
            (text) => batcher.push({ text }),
            token,
            { caller: params.caller, promptLookup: params.speculative },
        );
    } finally {
        batcher.flush();
    }
});
handle("olmo/explain", async (params, token) => {
    const prompt = explainPrompt(params);
    const messages: ChatMessage[] = [...(params.history ?? []), { role: "user", content: prompt }];
    const batcher = streamTo(params.partialResultToken);
    try {
        const result = await (
            await activeEngine()
        ).chat(
            params.conversationId,
            messages,
            params.sampling ?? {},
            (text) => batcher.push({ text }),
            token,
            { promptLookup: params.speculative },
        );
        return { ...result, prompt };
    } finally {
        batcher.flush();
    }
});
handle("olmo/inspectModel", async (params, token) => {
    const { inspectModel } = await import("./modelFiles.js");
    // The header first: a file that cannot be read fails before the GPU is probed.
    return inspectModel(
        async () => (await getEngine()).llama("auto"),
        params,
        abortSignalFor(token),
    );
});
handle("olmo/download", async (params, token) => {
    const { download } = await import("./modelFiles.js");
    const progressToken = params.partialResultToken;
    return download(
        params,
        (progress) => {
            if (progressToken !== undefined)
                void connection.sendProgress(downloadProgressType, progressToken, progress);
        },
        abortSignalFor(token),
    );
});
let rewrites = 0;
handle("olmo/rewrite", async (params, token) => {
    const messages: ChatMessage[] = [{ role: "user", content: rewritePrompt(params) }];
    const engine = await activeEngine();
    // Room for the code to come back with changes; greedy unless asked otherwise (code wants the likeliest tokens).
    const codeTokens = (await engine.countTokens({ text: params.code })).tokens;
    const sampling = { temperature: 0, maxTokens: 2 * codeTokens + 128, ...params.sampling };
    const code = new RewriteCodeStream();
    const batcher = streamTo(params.partialResultToken);
    try {
        const result = await engine.rewrite(
            `rewrite:${++rewrites}`,
            messages,
            sampling,
            (text) => {
                const delta = code.push(text);
                if (delta) batcher.push(delta);
            },
            token,
            params.speculative,
        );
        const final = code.finish();
        if (final.delta) batcher.push(final.delta);
        return { ...result, code: final.code };
    } finally {
        batcher.flush();
    }
});

connection.onShutdown(async () => {
    shuttingDown = true;
    await remote?.dispose();
    await (await engine)?.dispose();
});
connection.onExit(() => process.exit(0));
// When the extension host goes away, stdin closes: leave instead of lingering with a model in memory.
process.stdin.on("end", () => process.exit(0));
process.on("uncaughtException", (error) => log(`uncaught: ${error.stack ?? error}`));
process.on("unhandledRejection", (error) =>
    log(`unhandled rejection: ${error instanceof Error ? error.stack : String(error)}`),
);

connection.listen();
listening = true;
