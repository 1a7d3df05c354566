// Pointing OLMo Local at a team server: "Use a team server…" (asks the URL and, optionally, the API
// key; offered on first use and as a command) and setting or clearing the API key, which lives in
// VS Code's SecretStorage, never in settings. ModelHost reads the key when it loads.
import * as vscode from "vscode";
import type { ServerErrorAction } from "../media/protocol.js";
import { modelTargetFromSettings, openServerSettings, saveServerUrl } from "./settings.js";
import { apiKeySecretName, checkServerUrl, type CheckedServerUrl } from "./teamServer.js";

export function registerTeamServerCommands(secrets: vscode.SecretStorage): vscode.Disposable[] {
    return [
        vscode.commands.registerCommand("olmo.useTeamServer", () => useTeamServer(secrets)),
        vscode.commands.registerCommand("olmo.setServerApiKey", () => setApiKey(secrets)),
        vscode.commands.registerCommand("olmo.clearServerApiKey", () => clearApiKey(secrets)),
    ];
}

/** Asks the server's URL (checked as typed) and its API key; resolves true once olmo.server.url is set. */
export async function useTeamServer(secrets: vscode.SecretStorage): Promise<boolean> {
    const current = modelTargetFromSettings();
    const typed = await vscode.window.showInputBox({
        title: "Use a team server (1/2): its URL",
        prompt: "An OpenAI-compatible inference server with an OLMo model: llama-server, vLLM or Ollama. https, or http on this machine.",
        placeHolder: "https://gpu-box.example.com:8080",
        value: current?.kind === "server" ? current.server.url : "",
        ignoreFocusOut: true,
        validateInput: (text) => {
            const checked = checkServerUrl(text);
            return "error" in checked ? checked.error : undefined;
        },
    });
    if (typed === undefined) return false;
    const server = checkServerUrl(typed);
    if ("error" in server) return false;
    const key = await askApiKey(secrets, server, "Use a team server (2/2): its API key");
    if (key === undefined) return false;
    if (key) await secrets.store(apiKeySecretName(server.url), key);
    await saveServerUrl(server.url);
    return true;
}

/**
 * The key typed for `server`: "" for none (or to keep the one already saved), undefined when the
 * user cancelled.
 */
async function askApiKey(
    secrets: vscode.SecretStorage,
    server: CheckedServerUrl,
    title: string,
): Promise<string | undefined> {
    const saved = await secrets.get(apiKeySecretName(server.url));
    const typed = await vscode.window.showInputBox({
        title,
        prompt: `The API key ${server.host} expects (sent as a Bearer token), kept in VS Code's secret storage. ${
            saved ? "Leave empty to keep the saved key." : "Leave empty if it needs none."
        }`,
        password: true,
        ignoreFocusOut: true,
    });
    return typed?.trim();
}

async function setApiKey(secrets: vscode.SecretStorage): Promise<void> {
    const server = await serverOrExplain();
    if (!server) return;
    const key = await askApiKey(secrets, server, `API key for ${server.host}`);
    if (!key) return;
    await secrets.store(apiKeySecretName(server.url), key);
    void vscode.window.showInformationMessage(
        `The API key for ${server.host} is saved in VS Code's secret storage; the model loads again with it.`,
    );
}

async function clearApiKey(secrets: vscode.SecretStorage): Promise<void> {
    const server = await serverOrExplain();
    if (!server) return;
    await secrets.delete(apiKeySecretName(server.url));
    void vscode.window.showInformationMessage(`The API key for ${server.host} is deleted.`);
}

/** The team server that is set, or undefined after saying why there is none. */
async function serverOrExplain(): Promise<CheckedServerUrl | undefined> {
    const target = modelTargetFromSettings();
    if (target?.kind === "server") return target.server;
    const why =
        target?.kind === "invalidServerUrl"
            ? target.message
            : "No team server is set (olmo.server.url).";
    const choice = await vscode.window.showErrorMessage(why, "Use a Team Server…");
    if (choice) await vscode.commands.executeCommand("olmo.useTeamServer");
    return undefined;
}

/** Runs the way out of a team server's failure that a message offered. */
export async function runServerAction(action: ServerErrorAction): Promise<void> {
    if (action === "setServerApiKey") await vscode.commands.executeCommand("olmo.setServerApiKey");
    else await openServerSettings();
}
