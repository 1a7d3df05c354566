// "OLMo: Explain Selection": captures the code and hands it to the chat view, which shows it as the
// user's message and streams the explanation (the sidecar builds the prompt from these fields).
import * as vscode from "vscode";
import { codeTarget, registerSelectionAction } from "./selection.js";

/** What the chat view's `olmo.chat.explain` command receives. */
export interface ExplainRequest {
    code: string;
    /** VS Code language id. */
    language: string;
    fileName: string;
    /** 1-based, "12-30". */
    lines: string;
    instruction?: string;
}

const CHAT_EXPLAIN_COMMAND = "olmo.chat.explain";

export function registerExplain(): vscode.Disposable[] {
    return [
        vscode.commands.registerCommand("olmo.explainSelection", explainSelection),
        registerSelectionAction(
            "OLMo: Explain",
            "olmo.explainSelection",
            vscode.CodeActionKind.Empty,
        ),
    ];
}

async function explainSelection(): Promise<void> {
    const target = await codeTarget(vscode.window.activeTextEditor, "explain");
    if (!target) return;
    const request: ExplainRequest = {
        code: target.code,
        language: target.document.languageId,
        fileName: target.fileName,
        lines: target.lines,
    };
    await vscode.commands.executeCommand(CHAT_EXPLAIN_COMMAND, request);
}
