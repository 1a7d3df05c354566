// Drives the real sidecar process (dist/sidecar.mjs) over stdio, as the extension does, with a
// plain JSON-RPC client typed from the same protocol module.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import {
    CancellationTokenSource,
    createMessageConnection,
    ProgressType,
    StreamMessageReader,
    StreamMessageWriter,
    type CancellationToken,
    type MessageConnection,
} from "vscode-jsonrpc/node";
import type {
    ChatDelta,
    ChatParams,
    ChatResult,
    ParamsOf,
    RequestMethod,
    ResultOf,
    SidecarCapabilities,
    SidecarState,
} from "../../sidecar/protocol.js";

/** A JSON-RPC response as it arrives, for requests written with `writeRaw`. */
export interface RawResponse {
    id: string | number | null;
    result?: unknown;
    error?: { code: number; message: string; data?: unknown };
}

export interface SpawnOptions {
    /**
     * RLIMIT_DATA of the process (`ulimit -d`): a real ceiling on the memory it can allocate, which
     * llama.cpp's allocations hit like a machine that is out of memory.
     */
    dataLimitBytes?: number;
}

export const SIDECAR_PATH = fileURLToPath(new URL("../../dist/sidecar.mjs", import.meta.url));

export interface StreamedChat {
    result: ChatResult;
    deltas: string[];
}

export class SidecarProcess {
    readonly statuses: SidecarState[] = [];
    stderr = "";
    /** Every byte the process wrote to stdout, to check that it wrote only protocol frames. */
    readonly stdoutChunks: Buffer[] = [];
    private nextToken = 0;
    /** Stdout not yet split into frames, and who waits for which raw request's response. */
    private unparsed: Buffer = Buffer.alloc(0);
    private readonly responseWaiters = new Map<string | number, (response: RawResponse) => void>();

    private constructor(
        readonly child: ChildProcess,
        readonly connection: MessageConnection,
        readonly spawnedAt: number,
    ) {}

    static async start(options: SpawnOptions = {}): Promise<{
        sidecar: SidecarProcess;
        capabilities: SidecarCapabilities;
        initializeMs: number;
    }> {
        const sidecar = SidecarProcess.spawn(options);
        return { sidecar, ...(await sidecar.initialize()) };
    }

    /** Starts the process without the `initialize` handshake (see `initialize`). */
    static spawn(options: SpawnOptions = {}): SidecarProcess {
        const spawnedAt = performance.now();
        const args = [SIDECAR_PATH, "--stdio"];
        const child =
            options.dataLimitBytes === undefined
                ? spawn(process.execPath, args, { stdio: ["pipe", "pipe", "pipe"] })
                : // exec: the shell becomes node, so that child.pid is the sidecar's.
                  spawn(
                      "/bin/sh",
                      [
                          "-c",
                          `ulimit -d ${Math.ceil(options.dataLimitBytes / 1024)} && exec "$0" "$@"`,
                          process.execPath,
                          ...args,
                      ],
                      {
                          stdio: ["pipe", "pipe", "pipe"],
                      },
                  );
        const connection = createMessageConnection(
            new StreamMessageReader(child.stdout!),
            new StreamMessageWriter(child.stdin!),
        );
        const sidecar = new SidecarProcess(child, connection, spawnedAt);
        child.stderr!.on("data", (chunk: Buffer) => (sidecar.stderr += chunk.toString()));
        child.stdout!.on("data", (chunk: Buffer) => {
            sidecar.stdoutChunks.push(chunk);
            sidecar.collectResponses(chunk);
        });
        // Writes to a process that was killed fail with EPIPE: the exit is what the tests look at.
        child.stdin!.on("error", () => undefined);
        // Once the process is gone (and its output read), pending requests fail instead of hanging.
        child.on("close", () => connection.dispose());
        connection.onNotification("olmo/status", (state: SidecarState) => {
            sidecar.statuses.push(state);
        });
        // The sidecar logs through the protocol (window/logMessage) once connected: keep it with stderr.
        connection.onNotification("window/logMessage", ({ message }: { message: string }) => {
            sidecar.stderr += `[sidecar] ${message}\n`;
        });
        connection.listen();
        return sidecar;
    }

    async initialize(): Promise<{ capabilities: SidecarCapabilities; initializeMs: number }> {
        const init = (await this.connection.sendRequest("initialize", {
            processId: process.pid,
            rootUri: null,
            capabilities: {},
        })) as {
            capabilities: { experimental: { olmo: SidecarCapabilities } };
        };
        const initializeMs = performance.now() - this.spawnedAt;
        await this.connection.sendNotification("initialized", {});
        return { capabilities: init.capabilities.experimental.olmo, initializeMs };
    }

    get pid(): number {
        return this.child.pid!;
    }

    /**
     * Writes bytes to the process's stdin as they are, for malformed input. Never while a request
     * of `connection` is being written: it writes header and body separately.
     */
    writeRaw(bytes: string | Buffer): Promise<void> {
        return new Promise((resolve, reject) =>
            this.child.stdin!.write(bytes, (error) => (error ? reject(error) : resolve())),
        );
    }

    /** The response to a request written with `writeRaw`; call before writing it. Use ids the connection does not (strings). */
    response(id: string | number): Promise<RawResponse> {
        return new Promise((resolve) => this.responseWaiters.set(id, resolve));
    }

    private collectResponses(chunk: Buffer): void {
        this.unparsed = this.unparsed.length > 0 ? Buffer.concat([this.unparsed, chunk]) : chunk;
        for (;;) {
            const headerEnd = this.unparsed.indexOf("\r\n\r\n");
            if (headerEnd < 0) return;
            const length = Number(
                /Content-Length: (\d+)/i.exec(
                    this.unparsed.subarray(0, headerEnd).toString("ascii"),
                )?.[1],
            );
            const bodyStart = headerEnd + 4;
            if (this.unparsed.length < bodyStart + length) return;
            const message = JSON.parse(
                this.unparsed.subarray(bodyStart, bodyStart + length).toString("utf8"),
            ) as RawResponse;
            this.unparsed = this.unparsed.subarray(bodyStart + length);
            const waiter =
                message.id !== null && message.id !== undefined
                    ? this.responseWaiters.get(message.id)
                    : undefined;
            if (waiter && ("result" in message || "error" in message)) {
                this.responseWaiters.delete(message.id!);
                waiter(message);
            }
        }
    }

    request<M extends RequestMethod>(
        method: M,
        params: ParamsOf<M>,
        token?: CancellationToken,
    ): Promise<ResultOf<M>> {
        // An undefined token would be sent as a second positional parameter (null): leave it out.
        return (
            token
                ? this.connection.sendRequest(method, params, token)
                : this.connection.sendRequest(method, params)
        ) as Promise<ResultOf<M>>;
    }

    /** A streamed chat; `onDelta` may cancel through the source passed to it (`cancel`, if given). */
    async chat(
        params: Omit<ChatParams, "partialResultToken">,
        onDelta?: (text: string, all: string[], cancel: CancellationTokenSource) => void,
        cancel = new CancellationTokenSource(),
    ): Promise<StreamedChat> {
        const partialResultToken = `t${++this.nextToken}`;
        const deltas: string[] = [];
        const subscription = this.connection.onProgress(
            new ProgressType<ChatDelta>(),
            partialResultToken,
            ({ text }) => {
                deltas.push(text);
                onDelta?.(text, deltas, cancel);
            },
        );
        try {
            const result = await this.request(
                "olmo/chat",
                { ...params, partialResultToken },
                cancel.token,
            );
            return { result, deltas };
        } finally {
            subscription.dispose();
            cancel.dispose();
        }
    }

    /** A streamed explain or rewrite; `shown` is the text after applying each delta (append or replace). */
    async task<M extends "olmo/explain" | "olmo/rewrite">(
        method: M,
        params: Omit<ParamsOf<M>, "partialResultToken">,
        onDelta?: (shown: string, count: number, cancel: CancellationTokenSource) => void,
        cancel = new CancellationTokenSource(),
    ): Promise<{ result: ResultOf<M>; shown: string; deltas: ChatDelta[] }> {
        const partialResultToken = `t${++this.nextToken}`;
        const deltas: ChatDelta[] = [];
        let shown = "";
        const subscription = this.connection.onProgress(
            new ProgressType<ChatDelta>(),
            partialResultToken,
            (delta) => {
                deltas.push(delta);
                shown = delta.replace ? delta.text : shown + delta.text;
                onDelta?.(shown, deltas.length, cancel);
            },
        );
        try {
            const result = await this.request(
                method,
                { ...params, partialResultToken } as ParamsOf<M>,
                cancel.token,
            );
            return { result, shown, deltas };
        } finally {
            subscription.dispose();
            cancel.dispose();
        }
    }

    /** Resolves when the process has exited (with its code), for exit tests. */
    exited(): Promise<number | null> {
        if (this.child.exitCode !== null || this.child.signalCode !== null)
            return Promise.resolve(this.child.exitCode);
        return new Promise((resolve) => this.child.once("exit", (code) => resolve(code)));
    }

    async stop(): Promise<void> {
        if (this.child.exitCode === null && this.child.signalCode === null) {
            try {
                await Promise.race([this.connection.sendRequest("shutdown"), this.exited()]);
                await this.connection.sendNotification("exit");
            } catch {
                // Already gone.
            }
            const exited = this.exited();
            const killTimer = setTimeout(() => this.child.kill("SIGKILL"), 5000);
            await exited;
            clearTimeout(killTimer);
        }
        this.connection.dispose();
    }
}

/** Splits raw stdout into LSP frames; throws on any byte that is not part of a well-formed frame. */
export function parseFrames(raw: Buffer): unknown[] {
    const messages: unknown[] = [];
    let at = 0;
    while (at < raw.length) {
        const headerEnd = raw.indexOf("\r\n\r\n", at);
        if (headerEnd < 0)
            throw new Error(
                `stray bytes on stdout at ${at}: ${JSON.stringify(raw.subarray(at, at + 80).toString())}`,
            );
        const header = raw.subarray(at, headerEnd).toString("ascii");
        const length = /^Content-Length: (\d+)$/im.exec(header)?.[1];
        if (!length || !/^(Content-(Length|Type): [^\r\n]+\r?\n?)+$/i.test(header)) {
            throw new Error(`not a frame header at ${at}: ${JSON.stringify(header.slice(0, 80))}`);
        }
        const bodyStart = headerEnd + 4;
        messages.push(
            JSON.parse(raw.subarray(bodyStart, bodyStart + Number(length)).toString("utf8")),
        );
        at = bodyStart + Number(length);
    }
    return messages;
}
