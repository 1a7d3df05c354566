// The product path: the built sidecar (dist/sidecar.mjs) in its own process, driven over JSON-RPC
// stdio with streaming, as the extension drives it.
import { parseFrames, SidecarProcess } from "../support/sidecarProcess.js";
import type { SideSettings } from "./baselineSide.js";
import { processCpuMs, processMemory, type ProcessMemory } from "./machine.js";
import {
    GREEDY,
    type ChatRequest,
    type ChatSide,
    type StreamTraffic,
    type TurnMeasure,
} from "./workload.js";

export class ProductSide implements ChatSide {
    private constructor(
        private readonly sidecar: SidecarProcess,
        /** Spawn until `initialize` is answered. */
        readonly initializeMs: number,
        /** The sidecar between `initialize` and the load: its cost with no model. */
        readonly memoryBeforeLoad: ProcessMemory,
        /** The `olmo/load` request, as the caller waits for it. */
        readonly loadMs: number,
        /** The engine's own part of it (no import of node-llama-cpp, no file checks). */
        readonly engineLoadMs: number,
    ) {}

    get pid(): number {
        return pidOf(this.sidecar);
    }

    static async start(settings: SideSettings): Promise<ProductSide> {
        const { sidecar, initializeMs } = await SidecarProcess.start();
        try {
            const memoryBeforeLoad = await processMemory(pidOf(sidecar));
            const loadStarted = performance.now();
            const info = await sidecar.request("olmo/load", {
                modelPath: settings.modelPath,
                gpu: settings.gpu,
                gpuLayers: "auto",
                contextSize: settings.contextSize,
                threads: settings.threads,
                sequences: 1,
            });
            const loadMs = performance.now() - loadStarted;
            // The engine caps threads and context size; the baseline must run with what it really uses.
            if (info.threads !== settings.threads || info.contextSize !== settings.contextSize) {
                throw new Error(
                    `the sidecar runs ${info.threads} threads and a ${info.contextSize}-token context, ` +
                        `the baseline ${settings.threads} and ${settings.contextSize}`,
                );
            }
            return new ProductSide(sidecar, initializeMs, memoryBeforeLoad, loadMs, info.loadMs);
        } catch (error) {
            await sidecar.stop();
            throw new Error(
                `the sidecar could not load the model: ${String(error)}\n${sidecar.stderr}`,
                { cause: error },
            );
        }
    }

    async chat(request: ChatRequest): Promise<TurnMeasure> {
        const stdoutBefore = this.sidecar.stdoutChunks.length;
        const cpuBefore = this.cpuMs();
        const sent = performance.now();
        let firstTextAt: number | undefined;
        let cpuAtFirstText = 0;
        const { result, deltas } = await this.sidecar.chat(
            {
                conversationId: request.conversationId,
                messages: request.messages,
                sampling: { ...GREEDY, maxTokens: request.maxTokens },
            },
            () => {
                if (firstTextAt !== undefined) return;
                firstTextAt = performance.now();
                cpuAtFirstText = this.cpuMs();
            },
        );
        const doneAt = performance.now();
        const cpuMs = this.cpuMs() - cpuBefore;
        if (firstTextAt === undefined)
            throw new Error(`the sidecar streamed no text\n${this.sidecar.stderr}`);
        const streamed = deltas.join("");
        if (streamed !== result.text)
            throw new Error("the streamed deltas do not add up to the result's text");
        const traffic = progressTraffic(
            Buffer.concat(this.sidecar.stdoutChunks.slice(stdoutBefore)),
        );
        if (traffic.progressMessages !== deltas.length) {
            throw new Error(
                `${traffic.progressMessages} $/progress frames on the wire, ${deltas.length} seen by the client`,
            );
        }
        return {
            text: result.text,
            promptTokens: result.usage.promptTokens,
            reusedTokens: result.usage.reusedTokens,
            completionTokens: result.usage.completionTokens,
            timeToFirstTokenMs: firstTextAt - sent,
            totalMs: doneAt - sent,
            cpuToFirstTokenMs: cpuAtFirstText - cpuBefore,
            cpuMs,
            traffic,
            engineTimeToFirstTokenMs: result.timings.timeToFirstTokenMs,
        };
    }

    /** The sidecar's CPU time and this process's (the client's share of the product path). */
    private cpuMs(): number {
        return processCpuMs(this.pid) + processCpuMs("self");
    }

    async stop(): Promise<void> {
        await this.sidecar.stop();
    }
}

function pidOf(sidecar: SidecarProcess): number {
    const pid = sidecar.child.pid;
    if (pid === undefined) throw new Error("the sidecar has no process id");
    return pid;
}

/**
 * The `$/progress` frames in the bytes the sidecar wrote during one request. The writer frames each
 * message as `Content-Length: N\r\n\r\n` + compact JSON; the sizes are checked against the raw bytes.
 */
export function progressTraffic(raw: Buffer): StreamTraffic {
    let progressMessages = 0;
    let progressBytes = 0;
    let allBytes = 0;
    for (const message of parseFrames(raw)) {
        const body = Buffer.byteLength(JSON.stringify(message));
        const frame = `Content-Length: ${body}\r\n\r\n`.length + body;
        allBytes += frame;
        if ((message as { method?: string }).method === "$/progress") {
            progressMessages++;
            progressBytes += frame;
        }
    }
    if (allBytes !== raw.length)
        throw new Error(`frame sizes add up to ${allBytes} bytes, the wire had ${raw.length}`);
    return { progressMessages, progressBytes };
}
