// First use: no model is set. Offer the OLMo family (modelCatalog.ts: OLMo-2 13B Instruct by
// default, OLMo-2 7B, OLMo 3 7B, OLMo 3.1 32B where the machine can hold it) with the one that suits
// the measured VRAM, RAM and disk marked and why, or a smaller quantization of the 13B; say
// beforehand whether the choice fits this machine and the disk, download it with progress, cancel
// and resume, let the user pick a .gguf they already have, or use a team server (teamServerSetup.ts).
import { statfs } from "node:fs/promises";
import * as vscode from "vscode";
import { BASELINE_CONTEXT_SIZE } from "../sidecar/defaults.js";
import type { DownloadResult, InspectModelResult, ModelSource } from "../sidecar/protocol.js";
import { parseHfUri } from "./hfUri.js";
import { CATALOG, canHold, DEFAULT_MODEL_ID, recommend, type Machine } from "./modelCatalog.js";
import { OlmoError, type ModelHost } from "./modelHost.js";
import {
    hubEndpointFromSettings,
    modelsDirectoryFromSettings,
    modelUriFromSettings,
} from "./settings.js";
import { useTeamServer } from "./teamServerSetup.js";

export interface ModelChoice {
    quantization: string;
    file: string;
    /** Size on the hub, in bytes. */
    bytes: number;
    note: string;
}

export const OFFICIAL_REPO = "allenai/OLMo-2-1124-13B-Instruct-GGUF";
export const MODEL_CHOICES: ModelChoice[] = [
    {
        quantization: "Q4_K_M",
        file: "olmo-2-1124-13B-instruct-Q4_K_M.gguf",
        bytes: 8.35e9,
        note: "recommended: the best quality per GB",
    },
    {
        quantization: "Q4_K_S",
        file: "olmo-2-1124-13B-instruct-Q4_K_S.gguf",
        bytes: 7.91e9,
        note: "slightly smaller",
    },
    {
        quantization: "Q3_K_M",
        file: "olmo-2-1124-13B-instruct-Q3_K_M.gguf",
        bytes: 6.78e9,
        note: "for 8 GB GPUs; some quality loss",
    },
    {
        quantization: "Q2_K",
        file: "olmo-2-1124-13B-instruct-Q2_K.gguf",
        bytes: 5.26e9,
        note: "smallest; noticeable quality loss",
    },
];

export function formatBytes(bytes: number): string {
    return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : `${(bytes / 1e6).toFixed(1)} MB`;
}

/** Paths of downloads the user chose to take without a published SHA-256 (global state). */
const UNVERIFIED_DOWNLOADS_KEY = "olmo.unverifiedDownloads";
let downloadRecord: vscode.Memento | undefined;

/** For the model info: said of a file downloaded without verification, else undefined. */
export function unverifiedNote(path: string): string | undefined {
    return downloadRecord?.get<string[]>(UNVERIFIED_DOWNLOADS_KEY, []).includes(path)
        ? "Unverified: downloaded without a published SHA-256"
        : undefined;
}

async function recordVerification(path: string, verified: boolean): Promise<void> {
    const others = (downloadRecord?.get<string[]>(UNVERIFIED_DOWNLOADS_KEY, []) ?? []).filter(
        (p) => p !== path,
    );
    await downloadRecord?.update(UNVERIFIED_DOWNLOADS_KEY, verified ? others : [...others, path]);
}

export function registerModelSetup(
    context: vscode.ExtensionContext,
    host: ModelHost,
): vscode.Disposable[] {
    downloadRecord = context.globalState;
    const setup = () => runModelSetup(context, host);
    host.setModelSetup(setup);
    return [vscode.commands.registerCommand("olmo.setupModel", setup)];
}

type SetupPick = vscode.QuickPickItem & {
    action: "download" | "smaller" | "pick" | "server";
    source?: ModelSource;
};

/** Resolves true once olmo.modelPath points at a model, or olmo.server.url at a server. */
export async function runModelSetup(
    context: vscode.ExtensionContext,
    host: ModelHost,
): Promise<boolean> {
    const endpoint = hubEndpointFromSettings();
    const official = CATALOG[DEFAULT_MODEL_ID]!;
    const uri = modelUriFromSettings();
    const configured = uri ? parseHfUri(uri) : undefined;
    if (configured && "error" in configured) {
        const choice = await vscode.window.showErrorMessage(
            `olmo.modelUri: ${configured.error}`,
            "Open Settings",
        );
        if (choice)
            await vscode.commands.executeCommand("workbench.action.openSettings", "olmo.modelUri");
        return false;
    }
    const directory = modelsDirectory(context);
    const machine = await measureMachine(host, directory, {
        ...(configured ?? official),
        endpoint,
    });
    const recommended = machine && recommend(machine);
    const picks: SetupPick[] = [];
    if (configured && !Object.values(CATALOG).some((m) => m.file === configured.file)) {
        picks.push({
            label: `$(cloud-download) Download ${configured.file}`,
            detail: `From ${configured.repo} (olmo.modelUri). Checked for fit before downloading.`,
            action: "download",
            source: configured,
        });
    }
    for (const [id, model] of Object.entries(CATALOG)) {
        // The 32B only where it can run at all; the others always (the fit check says how).
        if (id === "olmo-3-32b" && !(machine && canHold(model, machine))) continue;
        const isRecommended = recommended?.id === id;
        picks.push({
            label: `${isRecommended ? "$(star-full)" : "$(cloud-download)"} Download ${model.name}`,
            description: `${model.quantization}, ${model.exactSize ? "" : "about "}${formatBytes(model.bytes)} · ${model.license}`,
            detail:
                `From ${model.repo}.` +
                (isRecommended ? ` Recommended: ${recommended.reason}.` : "") +
                " Checked for fit before downloading.",
            action: "download",
            source: { repo: model.repo, file: model.file },
        });
    }
    // The recommended one first; otherwise the catalog's order (the default first).
    picks.sort(
        (a, b) => Number(b.label.startsWith("$(star")) - Number(a.label.startsWith("$(star")),
    );
    picks.push(
        {
            label: "$(arrow-down) Download a smaller quantization of the 13B…",
            description: "Q4_K_S, Q3_K_M, Q2_K",
            action: "smaller",
        },
        { label: "$(file) Choose a .gguf file on this computer…", action: "pick" },
        {
            label: "$(server) Use a team server…",
            detail: "An OLMo model served by llama-server, vLLM or Ollama on your team's GPU machine.",
            action: "server",
        },
    );
    const picked = await vscode.window.showQuickPick(picks, {
        title: "OLMo Local needs a model",
        placeHolder: recommended
            ? `Recommended here: ${CATALOG[recommended.id]!.name} (${recommended.reason})`
            : "Download an OLMo model, choose a file you have, or use a team server",
        ignoreFocusOut: true,
    });
    if (!picked) return false;
    if (picked.action === "pick") return pickExistingFile();
    if (picked.action === "server") return useTeamServer(context.secrets);
    let source: ModelSource | undefined = picked.source;
    if (picked.action === "smaller") {
        const smaller = await vscode.window.showQuickPick(
            MODEL_CHOICES.slice(1).map((c) => ({
                label: c.quantization,
                description: formatBytes(c.bytes),
                detail: c.note,
                choice: c,
            })),
            { title: "Choose a quantization", ignoreFocusOut: true },
        );
        if (!smaller) return false;
        source = { repo: OFFICIAL_REPO, file: smaller.choice.file };
    }
    if (!source) return false;
    return downloadWithChecks(context, host, { ...source, endpoint });
}

function modelsDirectory(context: vscode.ExtensionContext): string {
    return (
        modelsDirectoryFromSettings() ||
        vscode.Uri.joinPath(context.globalStorageUri, "models").fsPath
    );
}

/**
 * Free VRAM and RAM as the sidecar measures them (it reads the default file's header to answer),
 * and the models folder's free disk. Undefined when that fails (offline): nothing is recommended.
 */
async function measureMachine(
    host: ModelHost,
    directory: string,
    source: ModelSource,
): Promise<Machine | undefined> {
    try {
        await vscode.workspace.fs.createDirectory(vscode.Uri.file(directory));
        const disk = await statfs(directory);
        const measuring = "Measuring this machine's memory to recommend a model…";
        const fit: InspectModelResult = await host.whileSettingUp(measuring, () =>
            vscode.window.withProgress(
                { location: vscode.ProgressLocation.Notification, title: measuring },
                () => host.requestWithoutModel("olmo/inspectModel", { source }),
            ),
        );
        return {
            freeVramBytes: fit.freeVramBytes,
            freeRamBytes: fit.freeRamBytes,
            freeDiskBytes: disk.bavail * disk.bsize,
            unifiedMemory: fit.backend === "metal",
        };
    } catch (error) {
        host.log.warn(`could not measure the machine for a recommendation: ${String(error)}`);
        return undefined;
    }
}

async function pickExistingFile(): Promise<boolean> {
    const files = await vscode.window.showOpenDialog({
        canSelectMany: false,
        filters: { "GGUF models": ["gguf"] },
        title: "Choose an OLMo 2 or OLMo 3 Instruct .gguf model",
    });
    if (!files?.[0]) return false;
    await vscode.workspace
        .getConfiguration("olmo")
        .update("modelPath", files[0].fsPath, vscode.ConfigurationTarget.Global);
    return true;
}

async function downloadWithChecks(
    context: vscode.ExtensionContext,
    host: ModelHost,
    source: ModelSource,
): Promise<boolean> {
    const directory = modelsDirectory(context);
    await vscode.workspace.fs.createDirectory(vscode.Uri.file(directory));
    // The fit check at the configured context; "auto" is judged at the context every model can use.
    const configuredContext = vscode.workspace
        .getConfiguration("olmo")
        .inspect<number | "auto">("contextSize")?.globalValue;
    const contextSize =
        typeof configuredContext === "number" ? configuredContext : BASELINE_CONTEXT_SIZE;

    const checking = `Checking the download of ${source.file}: does it fit this machine?`;
    const fit = await host
        .whileSettingUp(checking, () =>
            vscode.window.withProgress(
                {
                    location: vscode.ProgressLocation.Notification,
                    title: checking,
                    cancellable: true,
                },
                (_progress, token) =>
                    host.requestWithoutModel(
                        "olmo/inspectModel",
                        { source, contextSize },
                        undefined,
                        token,
                    ),
            ),
        )
        .catch((error: unknown) => {
            if (!(error instanceof OlmoError && error.code === "cancelled"))
                offerWaysOut(host, `Could not check ${source.file}`, error);
            return undefined;
        });
    if (!fit) return false;
    const disk = await statfs(directory);
    const freeDisk = disk.bavail * disk.bsize;
    const diskLine = `${formatBytes(fit.modelBytes)} to download, ${formatBytes(freeDisk)} free in ${directory}.`;
    if (freeDisk < fit.modelBytes) {
        void vscode.window.showErrorMessage(
            `Not enough disk space for ${source.file}: ${diskLine} Set olmo.modelsDirectory to a larger disk, or choose a smaller quantization.`,
        );
        return false;
    }
    const go = await vscode.window.showInformationMessage(
        `${fit.message} ${diskLine}`,
        {
            modal: fit.verdict === "none",
            detail: fit.verdict === "none" ? "It will probably fail to load." : undefined,
        },
        `Download (${formatBytes(fit.modelBytes)})`,
    );
    if (!go) return false;

    let result = await fetchModel(host, source, directory, false);
    if (result === "unverifiable") {
        const go = await vscode.window.showWarningMessage(
            `The hub publishes no SHA-256 for ${source.file}, so the download cannot be checked for corruption or tampering.`,
            { modal: true, detail: "Download it only from a source you trust." },
            "Download without verification",
        );
        if (!go) return false;
        result = await fetchModel(host, source, directory, true);
    }
    if (!result || result === "unverifiable") return false;
    host.log.info(
        `downloaded ${result.path} (${formatBytes(result.totalBytes)}, SHA-256 ${result.sha256} ${result.verified ? "matches the hub's" : "NOT verified: the hub publishes none"}${result.resumedFromBytes ? `, resumed at ${formatBytes(result.resumedFromBytes)}` : ""})`,
    );
    await recordVerification(result.path, result.verified);
    await vscode.workspace
        .getConfiguration("olmo")
        .update("modelPath", result.path, vscode.ConfigurationTarget.Global);
    return true;
}

/** Downloads with progress; undefined after a failure (reported), or "unverifiable" to ask. */
async function fetchModel(
    host: ModelHost,
    source: ModelSource,
    directory: string,
    allowUnverified: boolean,
): Promise<DownloadResult | "unverifiable" | undefined> {
    const title = `Downloading ${source.file}`;
    return host
        .whileSettingUp(`${title}…`, () =>
            vscode.window.withProgress(
                { location: vscode.ProgressLocation.Notification, title, cancellable: true },
                async (progress, token) => {
                    let reported = 0;
                    return host.requestWithoutModel(
                        "olmo/download",
                        { ...source, directory, allowUnverified },
                        (p) => {
                            const fraction = p.receivedBytes / p.totalBytes;
                            const left =
                                p.bytesPerSecond > 0
                                    ? (p.totalBytes - p.receivedBytes) / p.bytesPerSecond
                                    : Infinity;
                            progress.report({
                                increment: (fraction - reported) * 100,
                                message: `${formatBytes(p.receivedBytes)} of ${formatBytes(p.totalBytes)} · ${formatBytes(p.bytesPerSecond)}/s · ${formatDuration(left)} left`,
                            });
                            reported = fraction;
                        },
                        token,
                    );
                },
            ),
        )
        .catch((error: unknown) => {
            if (error instanceof OlmoError && error.code === "unverifiable") return "unverifiable";
            offerWaysOut(host, "Download failed", error);
            return undefined;
        });
}

/**
 * A failed check or download, with the ways on: try again, choose a file already on disk, or
 * (offline) point olmo.hubEndpoint at a mirror.
 */
function offerWaysOut(host: ModelHost, what: string, error: unknown): void {
    const message = error instanceof OlmoError ? error.message : String(error);
    host.log.error(`${what}: ${message}`);
    const offline = error instanceof OlmoError && error.code === "offline";
    const actions = ["Try Again", "Choose a .gguf File…", ...(offline ? ["Set a Mirror"] : [])];
    void vscode.window.showErrorMessage(message, ...actions).then(async (choice) => {
        if (choice === "Try Again") await vscode.commands.executeCommand("olmo.setupModel");
        if (choice === "Choose a .gguf File…") await pickExistingFile();
        if (choice === "Set a Mirror")
            await vscode.commands.executeCommand(
                "workbench.action.openSettings",
                "olmo.hubEndpoint",
            );
    });
}

function formatDuration(seconds: number): string {
    if (!Number.isFinite(seconds)) return "—";
    if (seconds < 90) return `${Math.ceil(seconds)} s`;
    if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
    return `${(seconds / 3600).toFixed(1)} h`;
}
