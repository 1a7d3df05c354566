// The command table. Commands that need the model go through ModelHost, which starts the
// process and loads the model on demand and turns failures into plain messages.
import * as vscode from "vscode";
import { SERVER_ACTION_LABELS, serverErrorAction } from "../media/protocol.js";
import { OlmoError, type ModelHost } from "./modelHost.js";
import { unverifiedNote } from "./modelSetup.js";
import { openModelPathSetting } from "./settings.js";
import { serverLabel, serverModelLines } from "./teamServer.js";
import { runServerAction } from "./teamServerSetup.js";

export function registerCommands(host: ModelHost): vscode.Disposable[] {
    const commands: Record<string, () => unknown> = {
        "olmo.loadModel": () => withErrors(host, () => host.ensureReady()),
        "olmo.restart": () => withErrors(host, () => host.restart()),
        "olmo.showLog": () => host.log.show(),
        "olmo.showModelInfo": () => withErrors(host, () => showModelInfo(host)),
        "olmo.statusMenu": () => statusMenu(host),
    };
    return Object.entries(commands).map(([id, run]) => vscode.commands.registerCommand(id, run));
}

async function withErrors(host: ModelHost, action: () => Promise<unknown>): Promise<void> {
    try {
        await action();
    } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        host.log.error(message);
        const code = error instanceof OlmoError ? error.code : undefined;
        const serverAction = serverErrorAction(code);
        const actions = serverAction
            ? [SERVER_ACTION_LABELS[serverAction], "Show Log"]
            : code === "noModel"
              ? ["Open Settings"]
              : ["Show Log"];
        const choice = await vscode.window.showErrorMessage(message, ...actions);
        if (choice === "Show Log") host.log.show();
        else if (serverAction && choice) await runServerAction(serverAction);
        else if (choice === "Open Settings") await openModelPathSetting();
    }
}

async function showModelInfo(host: ModelHost): Promise<void> {
    const m = await host.ensureReady();
    if (m.server) {
        const lines = [serverLabel(m.server.host), ...serverModelLines(m, m.server)];
        host.log.info(lines.join("\n"));
        await vscode.window.showInformationMessage(lines.join(" · "), { modal: false });
        return;
    }
    const mib = (bytes?: number) =>
        bytes === undefined ? "n/a" : `${(bytes / 2 ** 20).toFixed(0)} MiB`;
    const lines = [
        `Model: ${m.name} (${m.architecture}, ${m.quantization}, ${mib(m.fileSizeBytes)})`,
        `File: ${m.path}`,
        `Context: ${m.contextSize} tokens (trained for ${m.trainContextSize})`,
        `Backend: ${m.backend}${m.gpuName ? ` on ${m.gpuName}` : ""}; ${m.gpuLayers} of ${m.totalLayers} layers on the GPU`,
        `Threads: ${m.threads}; loaded in ${(m.loadMs / 1000).toFixed(2)} s; VRAM ${mib(m.vramBytes)}, RAM ${mib(m.ramBytes)}`,
        unverifiedNote(m.path) ?? "",
    ].filter(Boolean);
    host.log.info(lines.join("\n"));
    await vscode.window.showInformationMessage(lines.join(" · "), { modal: false });
}

async function statusMenu(host: ModelHost): Promise<void> {
    const items: Array<vscode.QuickPickItem & { command: string }> = [
        { label: "$(info) Show Model Info", command: "olmo.showModelInfo" },
        { label: "$(play) Load Model", command: "olmo.loadModel" },
        { label: "$(debug-restart) Restart Model Process", command: "olmo.restart" },
        { label: "$(output) Show Log", command: "olmo.showLog" },
        { label: "$(gear) Settings", command: "workbench.action.openSettings" },
    ];
    const picked = await vscode.window.showQuickPick(items, {
        title: `OLMo Local (${host.state.kind})`,
    });
    if (!picked) return;
    if (picked.command === "workbench.action.openSettings")
        await vscode.commands.executeCommand(picked.command, "@ext:olmo-local.olmo-local");
    else await vscode.commands.executeCommand(picked.command);
}
