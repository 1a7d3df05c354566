// "Show Prompt": the exact prompt of an answer as a read-only virtual document (scheme
// `olmo-prompt:`), so nothing is written to disk and the editor cannot save it anywhere.
import * as vscode from "vscode";

export class PromptDocuments implements vscode.TextDocumentContentProvider, vscode.Disposable {
    static readonly scheme = "olmo-prompt";
    private readonly texts = new Map<string, string>();
    private readonly changed = new vscode.EventEmitter<vscode.Uri>();
    readonly onDidChange = this.changed.event;

    /** Keeps the prompt under a name from the chat's title; the same chat's next prompt replaces it. */
    set(title: string, text: string): vscode.Uri {
        const name = title.replace(/[\\/:*?"<>|#%\u0000-\u001f]+/g, " ").trim() || "chat";
        const uri = vscode.Uri.from({
            scheme: PromptDocuments.scheme,
            path: `/Prompt: ${name}.txt`,
        });
        this.texts.set(uri.toString(), text);
        this.changed.fire(uri);
        return uri;
    }

    provideTextDocumentContent(uri: vscode.Uri): string {
        return (
            this.texts.get(uri.toString()) ??
            "This prompt is no longer available: press Show Prompt on the answer again."
        );
    }

    dispose(): void {
        this.changed.dispose();
    }
}
