// Entry point. Activation does no model work: the sidecar starts on first use.
import * as vscode from "vscode";
import { registerChatView } from "./chatView.js";
import { registerCommands } from "./commands.js";
import { ModelHost } from "./modelHost.js";
import { StatusBar } from "./statusBar.js";

let host: ModelHost | undefined;

export function activate(context: vscode.ExtensionContext): void {
    const log = vscode.window.createOutputChannel("OLMo Local", { log: true });
    host = new ModelHost(context.asAbsolutePath("dist/sidecar.mjs"), log);
    context.subscriptions.push(log, new StatusBar(host), ...registerCommands(host), ...registerChatView(context, host));
}

export async function deactivate(): Promise<void> {
    await host?.dispose();
    host = undefined;
}
