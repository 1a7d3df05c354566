// The one owner of the sidecar's lifetime: starts it on first need, loads the model from settings,
// mirrors its status, restarts it after a crash (with backoff, giving up after repeated crashes),
// and gives the rest of the extension typed, cancellable requests.
import * as vscode from "vscode";
import type * as ClientLibrary from "./sidecarClient.js";
import type { CloseHandlerResult, ErrorHandler, LanguageClient } from "./sidecarClient.js";
import {
    errorCodeName,
    isServerLoad,
    protocolMismatch,
    type ChatDelta,
    type ChatParams,
    type ChatResult,
    type ErrorCode,
    type LoadParams,
    type ModelInfo,
    type ParamsOf,
    type PartialResults,
    type RequestMethod,
    type ResultOf,
    type SidecarCapabilities,
    type SidecarState,
} from "../sidecar/protocol.js";
import { CrashSupervisor, systemClock, type Clock } from "./crashSupervisor.js";
import {
    modelConfigured,
    modelTargetFromSettings,
    MODEL_SETTINGS,
    sameLoadParams,
} from "./settings.js";
import { apiKeySecretName, API_KEY_SECRET_PREFIX } from "./teamServer.js";

export type HostState =
    | { kind: "stopped" }
    | { kind: "noModel" }
    | { kind: "starting" }
    /** The first-use flow at work before any model loads (checking or downloading a file). */
    | { kind: "settingUp"; activity: string }
    | { kind: "loading"; progress: number; modelPath: string }
    | { kind: "ready"; model: ModelInfo }
    | { kind: "error"; code: OlmoErrorCode | "startFailed"; message: string }
    /** Crashed too often: nothing restarts the process until the user asks (OLMo: Restart Model Process). */
    | { kind: "gaveUp"; message: string };

/** OlmoError's codes: the protocol's, and the extension's own. */
export type OlmoErrorCode = ErrorCode | "noModel" | "invalidServerUrl" | "crashed" | "internal";

/** A failed request, with the protocol's error code and a message meant for the user. */
export class OlmoError extends Error {
    constructor(
        public readonly code: OlmoErrorCode,
        message: string,
    ) {
        super(message);
    }
}

const CRASHED_MESSAGE =
    "The OLMo model process stopped while answering. It restarts by itself; try again.";
/** What `initialize` carries in `capabilities.experimental` (sidecar/main.ts). */
type SidecarInitialize = { olmo?: Partial<SidecarCapabilities> };
type StreamedMethod = "olmo/chat" | "olmo/explain" | "olmo/rewrite";

export class ModelHost implements vscode.Disposable {
    private client?: LanguageClient;
    private starting?: Promise<LanguageClient>;
    /**
     * The restart policy. From a crash until the client has restarted the process, requests wait at
     * its gate: the client says Running meanwhile (its connection is gone: a request would fail at
     * once), then Stopped for a moment (taking that for stopped and starting another client would
     * leak a process), then Starting.
     */
    private readonly supervisor: CrashSupervisor;
    private loading?: { params: LoadParams; promise: Promise<ModelInfo> };
    /** What the running sidecar has loaded; cleared whenever the process goes away. */
    private loadedParams?: LoadParams;
    private currentState: HostState = { kind: "stopped" };
    private modelSetup?: () => Promise<boolean>;
    private settingUp?: Promise<boolean>;
    private nextPartialToken = 0;
    private readonly stateEmitter = new vscode.EventEmitter<HostState>();
    private readonly answerEmitter = new vscode.EventEmitter<ChatResult>();
    private readonly disposables: vscode.Disposable[] = [];

    readonly onDidChangeState = this.stateEmitter.event;
    /** Fires after every completed answer (for the status bar's speed figures). */
    readonly onDidFinishAnswer = this.answerEmitter.event;

    constructor(
        private readonly sidecarPath: string,
        readonly log: vscode.LogOutputChannel,
        /** Where team servers' API keys are kept (never in settings). */
        private readonly secrets: vscode.SecretStorage,
        clock: Clock = systemClock,
    ) {
        this.supervisor = new CrashSupervisor(clock);
        this.disposables.push(
            this.stateEmitter,
            this.answerEmitter,
            vscode.workspace.onDidChangeConfiguration((e) => {
                if (MODEL_SETTINGS.some((s) => e.affectsConfiguration(s)))
                    void this.onModelSettingsChanged();
            }),
            // A new or cleared API key: load again with it (also when another window changed it).
            secrets.onDidChange((e) => {
                if (e.key.startsWith(API_KEY_SECRET_PREFIX)) void this.onModelSettingsChanged();
            }),
        );
    }

    /**
     * The interactive first-use flow (download or pick a model), run when a model is needed and none
     * is set; resolves true when it set one.
     */
    setModelSetup(setup: () => Promise<boolean>): void {
        this.modelSetup = setup;
    }

    get state(): HostState {
        return this.currentState;
    }

    /** Starts the sidecar if needed and loads the configured model if it is not loaded yet. */
    async ensureReady(): Promise<ModelInfo> {
        if (this.supervisor.gaveUp) throw this.gaveUpError();
        let params = await this.loadParams();
        if (!params && this.modelSetup) {
            // First use: offer a download, a file or a team server, once for all waiting callers.
            this.settingUp ??= this.modelSetup().finally(() => (this.settingUp = undefined));
            if (await this.settingUp) params = await this.loadParams();
        }
        if (!params) {
            this.setState({ kind: "noModel" });
            throw new OlmoError(
                "noModel",
                "No model is set. Set olmo.modelPath to an OLMo .gguf file or olmo.server.url to a team server, or run OLMo: Set Up Model.",
            );
        }
        if (this.currentState.kind === "ready" && sameLoadParams(params, this.loadedParams))
            return this.currentState.model;
        if (this.loading && sameLoadParams(params, this.loading.params))
            return this.loading.promise;
        const promise = this.load(params);
        this.loading = { params, promise };
        try {
            return await promise;
        } finally {
            if (this.loading?.promise === promise) this.loading = undefined;
        }
    }

    /**
     * The load parameters from settings, with a team server's API key from the secret storage;
     * undefined when no model is set. A refused server URL fails here, naming the setting.
     */
    private async loadParams(): Promise<LoadParams | undefined> {
        const target = modelTargetFromSettings();
        if (!target) return undefined;
        if (target.kind === "file") return target.params;
        if (target.kind === "invalidServerUrl") {
            this.setState({ kind: "error", code: "invalidServerUrl", message: target.message });
            throw new OlmoError("invalidServerUrl", target.message);
        }
        const apiKey = await this.secrets.get(apiKeySecretName(target.server.url));
        return {
            server: {
                url: target.server.url,
                ...(apiKey ? { apiKey } : {}),
                ...(target.model ? { model: target.model } : {}),
            },
            ...(target.contextSize ? { contextSize: target.contextSize } : {}),
        };
    }

    private async load(params: LoadParams): Promise<ModelInfo> {
        const client = await this.startClient();
        this.loadedParams = undefined;
        // Said now, not when the process reports it: until then the status would go on calling the
        // model being replaced ready.
        this.setState({
            kind: "loading",
            progress: 0,
            modelPath: isServerLoad(params) ? params.server.url : params.modelPath,
        });
        const info = await this.withoutSecretsInTrace(client, params, () =>
            this.send(client, "olmo/load", params),
        );
        this.loadedParams = params;
        return info;
    }

    /**
     * With olmo.trace.server "verbose" the language client logs each request's parameters: a load
     * that carries an API key is traced by its name only, so the key never reaches the log.
     */
    private async withoutSecretsInTrace<T>(
        client: LanguageClient,
        params: LoadParams,
        send: () => Promise<T>,
    ): Promise<T> {
        const verbose =
            isServerLoad(params) &&
            params.server.apiKey !== undefined &&
            this.log.logLevel === vscode.LogLevel.Trace &&
            vscode.workspace.getConfiguration("olmo").get("trace.server") === "verbose";
        if (!verbose) return send();
        await client.setTrace(lib().Trace.Messages);
        try {
            return await send();
        } finally {
            await client.setTrace(lib().Trace.Verbose);
        }
    }

    /** A typed request to the sidecar, after making sure the model is ready. */
    async request<M extends RequestMethod>(
        method: M,
        params: ParamsOf<M>,
        token?: vscode.CancellationToken,
    ): Promise<ResultOf<M>> {
        return this.deliver(async () => {
            await this.ensureReady();
            return this.send(await this.startClient(), method, params, token);
        });
    }

    /**
     * Runs a step of the first-use flow with the views saying what it does, rather than "starting
     * the model" while the sidecar starts for it; the state before comes back afterwards.
     */
    async whileSettingUp<T>(activity: string, work: () => PromiseLike<T>): Promise<T> {
        const before = this.currentState;
        this.setState({ kind: "settingUp", activity });
        try {
            return await work();
        } finally {
            if (this.currentState.kind === "settingUp") this.setState(before);
        }
    }

    /** A request that needs the sidecar but no model (inspecting or downloading a model file). */
    async requestWithoutModel<M extends "olmo/inspectModel" | "olmo/download">(
        method: M,
        params: Omit<ParamsOf<M>, "partialResultToken">,
        onPartial?: (value: PartialResults[M & keyof PartialResults]) => void,
        token?: vscode.CancellationToken,
    ): Promise<ResultOf<M>> {
        return this.deliver(async () =>
            this.withPartials(await this.startClient(), method, params, onPartial, token),
        );
    }

    /** Streams an answer: `onDelta` gets text as it is generated; cancelling returns the partial answer. */
    chat(
        params: Omit<ChatParams, "partialResultToken">,
        onDelta: (text: string) => void,
        token?: vscode.CancellationToken,
    ): Promise<ChatResult> {
        return this.stream("olmo/chat", params, (delta) => onDelta(delta.text), token);
    }

    /**
     * A streamed request (chat, explain, rewrite): deltas arrive as LSP partial results on a token
     * of this request; a rewrite's delta may `replace` everything before it.
     */
    async stream<M extends StreamedMethod>(
        method: M,
        params: Omit<ParamsOf<M>, "partialResultToken">,
        onDelta: (delta: ChatDelta) => void,
        token?: vscode.CancellationToken,
    ): Promise<ResultOf<M>> {
        const result = await this.deliver(async () => {
            await this.ensureReady();
            return this.withPartials(await this.startClient(), method, params, onDelta, token);
        });
        this.answerEmitter.fire(result);
        return result;
    }

    private async withPartials<M extends RequestMethod>(
        client: LanguageClient,
        method: M,
        params: Omit<ParamsOf<M>, "partialResultToken">,
        onPartial: ((value: PartialResults[M & keyof PartialResults]) => void) | undefined,
        token?: vscode.CancellationToken,
    ): Promise<ResultOf<M>> {
        if (!onPartial) return this.send(client, method, params as ParamsOf<M>, token);
        const partialResultToken = `olmo-${++this.nextPartialToken}`;
        const subscription = client.onProgress(
            new (lib().ProgressType)<PartialResults[M & keyof PartialResults]>(),
            partialResultToken,
            onPartial,
        );
        try {
            return await this.send(
                client,
                method,
                { ...params, partialResultToken } as ParamsOf<M>,
                token,
            );
        } finally {
            subscription.dispose();
        }
    }

    /** Runs `attempt`, and once more if its request was not sent because the process had just died. */
    private deliver<T>(attempt: () => Promise<T>): Promise<T> {
        return this.supervisor.deliver(
            attempt,
            (error) => error instanceof Undelivered,
            () => this.client?.state === lib().State.Running,
            () =>
                this.log.info(
                    "a request did not reach the model process (it had just exited); sending it again after the restart",
                ),
        );
    }

    private async send<M extends RequestMethod>(
        client: LanguageClient,
        method: M,
        params: ParamsOf<M>,
        token?: vscode.CancellationToken,
    ): Promise<ResultOf<M>> {
        try {
            // Without a token, leave it out: vscode-jsonrpc would send it as a second positional parameter.
            const pending = token
                ? client.sendRequest(method, params, token)
                : client.sendRequest(method, params);
            return (await pending) as ResultOf<M>;
        } catch (error) {
            const failure = toOlmoError(error);
            // The crash that cut this request was the one that made it give up: say so, not "it restarts".
            if (failure.code === "crashed" && this.supervisor.gaveUp) throw this.gaveUpError();
            if (undelivered(error)) throw new Undelivered();
            throw failure;
        }
    }

    private gaveUpError(): OlmoError {
        return new OlmoError(
            "crashed",
            `${this.supervisor.gaveUp} Run OLMo: Restart Model Process to try again.`,
        );
    }

    private async startClient(): Promise<LanguageClient> {
        await this.supervisor.restartDone();
        if (this.supervisor.gaveUp) throw this.gaveUpError();
        if (this.client?.state === lib().State.Running) return this.client;
        this.starting ??= this.createClient().finally(() => (this.starting = undefined));
        return this.starting;
    }

    private async createClient(): Promise<LanguageClient> {
        if (this.client) {
            // A client that gave up after crashes: throw it away and start clean.
            await this.client.dispose().catch(() => undefined);
            this.client = undefined;
        }
        if (this.currentState.kind !== "settingUp") this.setState({ kind: "starting" });
        const run = { module: this.sidecarPath, transport: lib().TransportKind.stdio };
        const client = new (lib().LanguageClient)(
            "olmo",
            "OLMo Local",
            { run, debug: run },
            {
                documentSelector: [],
                outputChannel: this.log,
                errorHandler: this.crashPolicy(),
                initializationFailedHandler: () => false,
            },
        );
        client.onNotification("olmo/status", (status: SidecarState) =>
            this.onSidecarStatus(status),
        );
        client.onDidChangeState((e) => {
            if (e.newState !== lib().State.Running) this.loadedParams = undefined;
            // Restarted after a crash, or the restart failed: requests no longer wait.
            if (e.newState === lib().State.Running || e.newState === lib().State.StartFailed)
                this.supervisor.restarted();
        });
        this.client = client;
        try {
            await client.start();
        } catch (error) {
            const message = `The OLMo model process could not start: ${(error as Error).message ?? error}`;
            this.setState({ kind: "error", code: "startFailed", message });
            throw new OlmoError("internal", message);
        }
        const mismatch = protocolMismatch(
            (client.initializeResult?.capabilities.experimental as SidecarInitialize | undefined)
                ?.olmo,
        );
        if (mismatch) {
            this.log.error(mismatch);
            this.client = undefined;
            await client.dispose(2000).catch(() => undefined);
            this.setState({ kind: "error", code: "startFailed", message: mismatch });
            throw new OlmoError("internal", mismatch);
        }
        return client;
    }

    /** Restart on a crash after the supervisor's backoff, or give up when it says so. */
    private crashPolicy(): ErrorHandler {
        return {
            error: () => ({ action: lib().ErrorAction.Continue }),
            closed: async (): Promise<CloseHandlerResult> => {
                this.loadedParams = undefined;
                const verdict = this.supervisor.crashed();
                // One line per crash, with the verdict (the crash E2E test reads it).
                const crash = `model process exited unexpectedly (crash ${verdict.crashes} in the last 3 minutes)`;
                if (verdict.action === "giveUp") {
                    this.log.error(`${crash}; not restarting: ${verdict.message}`);
                    this.setState({ kind: "gaveUp", message: verdict.message });
                    void vscode.window
                        .showErrorMessage(verdict.message, "Restart", "Show Log")
                        .then((choice) => {
                            if (choice === "Restart") void this.restart();
                            if (choice === "Show Log") this.log.show();
                        });
                    return { action: lib().CloseAction.DoNotRestart, handled: true };
                }
                this.log.warn(`${crash}; restarting in ${verdict.delayMs} ms`);
                this.setState({ kind: "stopped" });
                await verdict.backoff;
                return { action: lib().CloseAction.Restart, handled: true };
            },
        };
    }

    private onSidecarStatus(status: SidecarState): void {
        switch (status.state) {
            case "idle":
                return;
            case "loading":
                return this.setState({
                    kind: "loading",
                    progress: status.progress,
                    modelPath: status.modelPath,
                });
            case "ready":
                return this.setState({ kind: "ready", model: status.model });
            case "error":
                return this.setState({ kind: "error", code: status.code, message: status.message });
        }
    }

    /** Stops the process (if any), clears the crash history and loads the model again if one is set. */
    async restart(): Promise<void> {
        this.supervisor.reset();
        await this.stopClient();
        if (modelConfigured()) await this.ensureReady();
        else this.setState({ kind: "noModel" });
    }

    private async onModelSettingsChanged(): Promise<void> {
        // Reload only what is already in use; an idle extension stays idle.
        if (this.currentState.kind === "stopped" && !this.client) return;
        await this.ensureReady().catch((error: Error) =>
            this.log.error(`reload after settings change failed: ${error.message}`),
        );
    }

    private async stopClient(): Promise<void> {
        const client = this.client;
        this.client = undefined;
        this.loadedParams = undefined;
        this.supervisor.restarted();
        if (client) await client.dispose(2000).catch(() => undefined);
        this.setState({ kind: "stopped" });
    }

    private setState(state: HostState): void {
        this.currentState = state;
        this.stateEmitter.fire(state);
    }

    async dispose(): Promise<void> {
        await this.stopClient();
        for (const d of this.disposables) d.dispose();
    }
}

let loadedLibrary: typeof ClientLibrary | undefined;

/** vscode-languageclient, required when first needed: starting the sidecar (see sidecarClient.ts). */
function lib(): typeof ClientLibrary {
    // A path esbuild leaves alone: dist/sidecarClient.cjs, beside dist/extension.cjs.
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- a runtime require, by design
    loadedLibrary ??= require("./sidecarClient.cjs") as typeof ClientLibrary;
    return loadedLibrary;
}

/** A request that never reached the sidecar: see `CrashSupervisor.deliver`. */
class Undelivered extends OlmoError {
    constructor() {
        super("crashed", CRASHED_MESSAGE);
    }
}

/** The request was not written: the connection was already gone, or writing to the process failed (EPIPE). */
function undelivered(error: unknown): boolean {
    return (
        error instanceof lib().ConnectionError ||
        (error instanceof lib().ResponseError &&
            (error.code === lib().ErrorCodes.MessageWriteError ||
                error.code === lib().ErrorCodes.ConnectionInactive))
    );
}

/** The process went away: before the request was written, or with it pending (vscode-jsonrpc rejects it as a ResponseError of its own). */
function connectionLost(error: unknown): boolean {
    return (
        undelivered(error) ||
        (error instanceof lib().ResponseError &&
            error.code === lib().ErrorCodes.PendingResponseRejected)
    );
}

function toOlmoError(error: unknown): OlmoError {
    if (error instanceof OlmoError) return error;
    if (connectionLost(error)) return new OlmoError("crashed", CRASHED_MESSAGE);
    if (error instanceof lib().ResponseError) {
        const name = errorCodeName(error.code);
        if (name) return new OlmoError(name, error.message);
        return new OlmoError("internal", error.message);
    }
    const message = error instanceof Error ? error.message : String(error);
    if (/connection got disposed|pending response rejected|closed/i.test(message))
        return new OlmoError("crashed", CRASHED_MESSAGE);
    return new OlmoError("internal", message);
}
