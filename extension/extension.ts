// Entry point. Activation does no model work: the sidecar starts on first use.
import * as vscode from "vscode";
import { registerChatView } from "./chatView.js";
import { registerCommands } from "./commands.js";
import { registerExplain } from "./explain.js";
import { registerLanguageModelProvider } from "./lmProvider.js";
import { ModelHost } from "./modelHost.js";
import { registerModelSetup } from "./modelSetup.js";
import { registerRewrite } from "./rewrite.js";
import { StatusBar } from "./statusBar.js";
import { registerTeamServerCommands } from "./teamServerSetup.js";

let host: ModelHost | undefined;

export function activate(context: vscode.ExtensionContext): void {
    const log = vscode.window.createOutputChannel("OLMo Local", { log: true });
    host = new ModelHost(context.asAbsolutePath("dist/sidecar.mjs"), log, context.secrets);
    context.subscriptions.push(
        log,
        new StatusBar(host),
        ...registerCommands(host),
        ...registerChatView(context, host),
    );
    context.subscriptions.push(...registerModelSetup(context, host));
    context.subscriptions.push(...registerTeamServerCommands(context.secrets));
    context.subscriptions.push(...registerLanguageModelProvider(host));
    context.subscriptions.push(...registerExplain());
    context.subscriptions.push(...registerRewrite(context, host));
}

export async function deactivate(): Promise<void> {
    await host?.dispose();
    host = undefined;
}
