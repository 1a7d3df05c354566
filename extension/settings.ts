// Reading settings. Paths and process settings are machine-scoped: only the user's own (global)
// value counts, so a workspace can never point the extension at another file or binary.
import * as vscode from "vscode";
import {
    DEFAULT_CONTEXT_SIZE,
    DEFAULT_MAX_TOKENS,
    DEFAULT_TEMPERATURE,
    DEFAULT_TOP_P,
} from "../sidecar/defaults.js";
import type { GpuChoice, LoadParams, LocalLoadParams, Sampling } from "../sidecar/protocol.js";
import { checkServerUrl, type CheckedServerUrl } from "./teamServer.js";

const SECTION = "olmo";

function machineValue<T>(key: string, fallback: T): T {
    const inspected = vscode.workspace.getConfiguration(SECTION).inspect<T>(key);
    return inspected?.globalValue ?? inspected?.defaultValue ?? fallback;
}

/**
 * What runs the model, from the machine-scoped settings: a team server when olmo.server.url is
 * set (never silently the local file instead, even when its URL is refused), else the local file;
 * undefined when neither is set. The server's API key is not a setting: ModelHost adds it.
 */
export type ModelTarget =
    | { kind: "file"; params: LocalLoadParams }
    | { kind: "server"; server: CheckedServerUrl; model?: string; contextSize?: number }
    | { kind: "invalidServerUrl"; message: string };

export function modelTargetFromSettings(): ModelTarget | undefined {
    const contextSize = machineValue<number | string>("contextSize", DEFAULT_CONTEXT_SIZE);
    // "auto" (or anything but a number) leaves it out: the sidecar then fits the largest context.
    const explicitContext = typeof contextSize === "number" ? Math.round(contextSize) : undefined;
    const serverUrl = machineValue("server.url", "").trim();
    if (serverUrl) {
        const checked = checkServerUrl(serverUrl);
        if ("error" in checked)
            return { kind: "invalidServerUrl", message: `olmo.server.url: ${checked.error}` };
        const model = machineValue("server.model", "").trim() || undefined;
        return { kind: "server", server: checked, model, contextSize: explicitContext };
    }
    const modelPath = machineValue("modelPath", "").trim();
    if (!modelPath) return undefined;
    const gpuLayers = machineValue<string | number>("gpuLayers", "auto");
    const threads = machineValue("threads", 0);
    return {
        kind: "file",
        params: {
            modelPath,
            gpu: machineValue<GpuChoice>("gpu", "auto"),
            // Whole numbers: a hand-edited settings.json may hold decimals, which the sidecar refuses.
            gpuLayers: typeof gpuLayers === "number" ? Math.max(0, Math.round(gpuLayers)) : "auto",
            contextSize: explicitContext,
            threads: threads >= 1 ? Math.floor(threads) : undefined,
        },
    };
}

/** Whether a model file or a team server is set. */
export function modelConfigured(): boolean {
    return modelTargetFromSettings() !== undefined;
}

export function samplingFromSettings(): Sampling {
    const config = vscode.workspace.getConfiguration(SECTION);
    return {
        temperature: config.get<number>("temperature", DEFAULT_TEMPERATURE),
        topP: config.get<number>("topP", DEFAULT_TOP_P),
        maxTokens: Math.max(1, Math.round(config.get<number>("maxTokens", DEFAULT_MAX_TOKENS))),
    };
}

/**
 * A rewrite samples greedily and sizes its answer to the code (the sidecar's defaults); a
 * max-tokens limit the user set explicitly still applies.
 */
export function rewriteSamplingFromSettings(): Sampling {
    const maxTokens = vscode.workspace.getConfiguration(SECTION).inspect<number>("maxTokens");
    const explicit =
        maxTokens?.workspaceFolderValue ?? maxTokens?.workspaceValue ?? maxTokens?.globalValue;
    return explicit === undefined ? {} : { maxTokens: Math.max(1, Math.round(explicit)) };
}

export function systemPromptFromSettings(): string {
    return vscode.workspace.getConfiguration(SECTION).get<string>("systemPrompt", "");
}

/** Settings whose change needs the model loaded again. */
export const MODEL_SETTINGS = [
    "modelPath",
    "gpu",
    "gpuLayers",
    "contextSize",
    "threads",
    "server.url",
    "server.model",
].map((k) => `${SECTION}.${k}`);

export function sameLoadParams(a: LoadParams | undefined, b: LoadParams | undefined): boolean {
    return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/** The model to download on first use, as `hf:owner/repo/file.gguf`. */
export function modelUriFromSettings(): string {
    return machineValue("modelUri", "");
}

/** Where downloaded models go; empty means the extension's global storage. */
export function modelsDirectoryFromSettings(): string {
    return machineValue("modelsDirectory", "").trim();
}

/** The hub to download from; undefined lets the sidecar use HF_ENDPOINT or huggingface.co. */
export function hubEndpointFromSettings(): string | undefined {
    return machineValue("hubEndpoint", "").trim() || undefined;
}

/**
 * Opens the settings UI at olmo.modelPath. It is machine-scoped: in a remote window (code-server,
 * Remote-SSH, WSL) only the remote's settings count, so that is where it opens.
 */
export async function openModelPathSetting(): Promise<void> {
    await openMachineSetting("olmo.modelPath");
}

/** Opens the settings UI at the team server's settings (machine-scoped, like olmo.modelPath). */
export async function openServerSettings(): Promise<void> {
    await openMachineSetting("olmo.server");
}

async function openMachineSetting(query: string): Promise<void> {
    const command = vscode.env.remoteName
        ? "workbench.action.openRemoteSettings"
        : "workbench.action.openSettings";
    await vscode.commands.executeCommand(command, { query });
}

/**
 * Writes the team server's URL where machine-scoped settings live: the user's settings, which in
 * a remote window VS Code writes to the remote's (as with olmo.modelPath).
 */
export async function saveServerUrl(url: string): Promise<void> {
    await vscode.workspace
        .getConfiguration(SECTION)
        .update("server.url", url, vscode.ConfigurationTarget.Global);
}

/** The team server as set, or undefined when none is set or its URL is refused. */
export function serverFromSettings(): CheckedServerUrl | undefined {
    const target = modelTargetFromSettings();
    return target?.kind === "server" ? target.server : undefined;
}
