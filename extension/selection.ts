// What "the selection" means for Explain and Rewrite: the primary selection, or without one the
// innermost multi-line symbol (function, class, ...) around the cursor. Documents that are binary
// or too large to send are refused with a message that says why.
import * as vscode from "vscode";

/** Larger documents are refused: their text would not fit the model's context anyway. */
const MAX_DOCUMENT_CHARS = 1_000_000;

export interface CodeTarget {
    document: vscode.TextDocument;
    range: vscode.Range;
    code: string;
    /** Workspace-relative path, or the untitled document's name. */
    fileName: string;
    /** 1-based, "12-30" (or "12" for one line). */
    lines: string;
}

/**
 * The code to work on in `editor`, or undefined after telling the user why there is none.
 * `verb` completes the messages ("Select the code to explain").
 */
export async function codeTarget(
    editor: vscode.TextEditor | undefined,
    verb: "explain" | "rewrite",
): Promise<CodeTarget | undefined> {
    if (!editor) {
        void vscode.window.showInformationMessage(`Open a file and select the code to ${verb}.`);
        return undefined;
    }
    const document = editor.document;
    const fileName = displayName(document);
    const refusal = documentRefusal(document, fileName);
    if (refusal) {
        void vscode.window.showWarningMessage(refusal);
        return undefined;
    }
    if (editor.selections.length > 1) {
        void vscode.window.showInformationMessage(
            `Using the first of ${editor.selections.length} selections.`,
        );
    }
    const range = editor.selection.isEmpty
        ? await enclosingBlock(document, editor.selection.active)
        : editor.selection;
    if (!range) {
        void vscode.window.showInformationMessage(
            `Select the code to ${verb}: there is no function or class around the cursor to take instead.`,
        );
        return undefined;
    }
    const code = document.getText(range);
    if (code.trim() === "") {
        void vscode.window.showInformationMessage(
            `The selection is only whitespace: select the code to ${verb}.`,
        );
        return undefined;
    }
    return { document, range, code, fileName, lines: lineLabel(range) };
}

export function displayName(document: vscode.TextDocument): string {
    return document.isUntitled
        ? document.uri.path
        : vscode.workspace.asRelativePath(document.uri, false);
}

function documentRefusal(document: vscode.TextDocument, fileName: string): string | undefined {
    const end = document.lineAt(document.lineCount - 1).range.end;
    if (document.offsetAt(end) > MAX_DOCUMENT_CHARS)
        return `${fileName} is larger than 1 MB: OLMo works on source files, not on files this large.`;
    if (document.getText().includes("\0"))
        return `${fileName} looks like a binary file (it contains NUL characters): OLMo works on text.`;
    return undefined;
}

/** A selection that ends at the start of a line does not include that line. */
function lineLabel(range: vscode.Range): string {
    const first = range.start.line + 1;
    const last =
        range.end.character === 0 && range.end.line > range.start.line
            ? range.end.line
            : range.end.line + 1;
    return first === last ? `${first}` : `${first}-${last}`;
}

type SymbolResult = vscode.DocumentSymbol | vscode.SymbolInformation;

/** The innermost symbol that contains `position` and spans more than one line. */
async function enclosingBlock(
    document: vscode.TextDocument,
    position: vscode.Position,
): Promise<vscode.Range | undefined> {
    const symbols =
        (await vscode.commands.executeCommand<SymbolResult[] | undefined>(
            "vscode.executeDocumentSymbolProvider",
            document.uri,
        )) ?? [];
    let innermost: vscode.Range | undefined;
    const visit = (symbol: SymbolResult) => {
        const range = "location" in symbol ? symbol.location.range : symbol.range;
        if (!range.contains(position)) return;
        if (!range.isSingleLine && (!innermost || innermost.contains(range))) innermost = range;
        if ("children" in symbol) symbol.children.forEach(visit);
    };
    symbols.forEach(visit);
    return innermost;
}

/** A lightbulb action that runs `command` on a non-empty selection. */
export function registerSelectionAction(
    title: string,
    command: string,
    kind: vscode.CodeActionKind,
    offeredFor: (document: vscode.TextDocument) => boolean = () => true,
): vscode.Disposable {
    const provider: vscode.CodeActionProvider = {
        provideCodeActions(document, range) {
            if (range.isEmpty || !offeredFor(document)) return [];
            const action = new vscode.CodeAction(title, kind);
            action.command = { command, title };
            return [action];
        },
    };
    return vscode.languages.registerCodeActionsProvider("*", provider, {
        providedCodeActionKinds: [kind],
    });
}
