// What "the selection" means for Explain and Rewrite: the primary selection, or without one the
// innermost multi-line symbol (function, class, ...) around the cursor. Documents that are binary
// or too large to send are refused with a message that says why. And what the chat's context chip
// attaches: the selection, or a small file whole.
import * as vscode from "vscode";
import type { ContextSnippet, EditorContext } from "../media/protocol.js";
import { PromptDocuments } from "./promptDocuments.js";

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

/** "12" or "12-30", 1-based. */
function lineLabel(range: vscode.Range): string {
    const first = range.start.line + 1;
    const last = lastLineOf(range);
    return first === last ? `${first}` : `${first}-${last}`;
}

/** The range's last line, 1-based: a selection that ends at the start of a line does not include that line. */
export function lastLineOf(range: vscode.Range): number {
    return range.end.character === 0 && range.end.line > range.start.line
        ? range.end.line
        : range.end.line + 1;
}

/** Without a selection the chat offers the whole file as context when it is smaller than this. */
const WHOLE_FILE_CONTEXT_LIMIT = 8 * 1024;

/** What the chat's context chip would attach: the selection, or the whole file when it is small. */
export function chatContextTarget():
    ContextSnippet | { tooLarge: true; fileName: string } | undefined {
    const editor = vscode.window.activeTextEditor;
    // The model's own prompt (Show Prompt) is not code to ask about.
    const scheme = editor?.document.uri.scheme;
    if (!editor || scheme === "output" || scheme === PromptDocuments.scheme) return undefined;
    const document = editor.document;
    const fileName = document.uri.path.split("/").pop() || document.uri.path;
    const base = {
        fileName,
        path: vscode.workspace.asRelativePath(document.uri, false),
        language: document.languageId,
    };
    const selection = editor.selection;
    if (!selection.isEmpty) {
        return {
            ...base,
            startLine: selection.start.line + 1,
            endLine: lastLineOf(selection),
            wholeFile: false,
            text: document.getText(selection),
        };
    }
    const length = document.offsetAt(document.lineAt(document.lineCount - 1).range.end);
    if (length >= WHOLE_FILE_CONTEXT_LIMIT) return { tooLarge: true, fileName };
    return {
        ...base,
        startLine: 1,
        endLine: document.lineCount,
        wholeFile: true,
        text: document.getText(),
    };
}

/** The context chip's state: what it would attach, or why nothing can be. */
export function chatEditorContext(enabled: boolean): EditorContext {
    const target = chatContextTarget();
    if (!target) return { enabled };
    if ("tooLarge" in target)
        return {
            enabled,
            unavailableReason: `${target.fileName} is larger than 8 KB: select the code to add.`,
        };
    const { fileName, path, startLine, endLine, wholeFile } = target;
    return { enabled, available: { fileName, path, startLine, endLine, wholeFile } };
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
