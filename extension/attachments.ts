// The chat's @-attachments on the extension's side: the @ list (the selection, the current file's
// problems, open editors and workspace files), reading what is chosen or dropped into the block the
// prompt gets, counting it with the model's tokenizer, and the attachments waiting for the next
// message. Refusals (binary, too large, larger than the context, outside an untrusted workspace)
// reach the composer as a sentence. The webview names entries only by the ids offered here.
import { randomUUID } from "node:crypto";
import * as vscode from "vscode";
import type { Attachment, AttachSuggestion, HostToWebview } from "../media/protocol.js";
import { answerReserve, DEFAULT_MAX_TOKENS } from "../sidecar/defaults.js";
import {
    binaryMessage,
    decodeText,
    excludeGlob,
    fenceLanguage,
    fileBlock,
    filterSuggestions,
    MAX_ATTACHMENT_BYTES,
    neverFitsMessage,
    parseUriList,
    problemsBlock,
    tooLargeMessage,
    type Problem,
} from "./attachmentRules.js";
import { gitIgnoredPaths } from "./gitIgnore.js";
import type { ModelHost } from "./modelHost.js";
import { lastLineOf } from "./selection.js";
import { samplingFromSettings } from "./settings.js";

/** The file search stops here: the list is for picking a file by name, not for browsing a huge tree. */
const MAX_WORKSPACE_FILES = 5000;

type Source =
    | { kind: "file"; uri: vscode.Uri }
    | { kind: "selection" }
    | { kind: "problems"; uri: vscode.Uri };

type Read = { label: string; path?: string; text: string } | { refusal: string };

export class AttachmentTray implements vscode.Disposable {
    private pending: Attachment[] = [];
    /** The sources of the entries last offered, by id. */
    private readonly offered = new Map<string, Source>();
    /** The workspace's files, searched once and forgotten when files come or go or the excludes change. */
    private workspaceFiles?: Promise<vscode.Uri[]>;
    private readonly subscriptions: vscode.Disposable[];

    constructor(
        private readonly host: ModelHost,
        private readonly post: (message: HostToWebview) => void,
        /** Told when the attachments change: the token meter counts them. */
        private readonly changed: () => void,
    ) {
        const watcher = vscode.workspace.createFileSystemWatcher("**/*", false, true, false);
        const forget = () => (this.workspaceFiles = undefined);
        this.subscriptions = [
            watcher,
            watcher.onDidCreate(forget),
            watcher.onDidDelete(forget),
            vscode.workspace.onDidChangeWorkspaceFolders(forget),
            vscode.workspace.onDidGrantWorkspaceTrust(forget),
            vscode.workspace.onDidChangeConfiguration((e) => {
                if (
                    e.affectsConfiguration("files.exclude") ||
                    e.affectsConfiguration("search.exclude")
                )
                    forget();
            }),
        ];
    }

    /** Waiting for the next message. */
    get attachments(): Attachment[] {
        return this.pending;
    }

    get tokens(): number {
        return this.pending.reduce((sum, attachment) => sum + attachment.tokens, 0);
    }

    /** Hands the attachments to the message being sent; the composer's chips and notice go. */
    take(): Attachment[] {
        const taken = this.pending;
        this.pending = [];
        this.postAttachments();
        return taken;
    }

    async suggest(query: string): Promise<void> {
        const suggestions = filterSuggestions(await this.allSuggestions(), query);
        this.post({ type: "attachSuggestions", query, suggestions });
    }

    async attach(suggestionId: string): Promise<void> {
        const source = this.offered.get(suggestionId);
        if (!source) return this.postAttachments("That entry is no longer offered: type @ again.");
        await this.add(source);
    }

    async attachUris(uriList: string): Promise<void> {
        for (const text of parseUriList(uriList)) {
            let uri: vscode.Uri;
            try {
                uri = vscode.Uri.parse(text, true);
            } catch {
                this.postAttachments(`${text} is not a file's address: nothing was attached.`);
                continue;
            }
            // VS Code in a browser drags the remote's files with the window's remote address;
            // this extension runs on the remote, where they are local files.
            await this.add({
                kind: "file",
                uri: uri.scheme === "vscode-remote" ? vscode.Uri.file(uri.path) : uri,
            });
        }
    }

    remove(id: string): void {
        this.pending = this.pending.filter((attachment) => attachment.id !== id);
        this.postAttachments();
        this.changed();
    }

    private postAttachments(notice?: string): void {
        this.post({ type: "attachments", attachments: this.pending, ...(notice && { notice }) });
    }

    private async add(source: Source): Promise<void> {
        const read = await this.read(source);
        if ("refusal" in read) return this.postAttachments(read.refusal);
        if (this.pending.some((a) => a.text === read.text))
            return this.postAttachments(`${read.label} is attached already.`);
        let counted;
        try {
            counted = await this.host.request("olmo/countTokens", { text: read.text });
        } catch (error) {
            return this.postAttachments(
                `${read.label} was not attached: its tokens could not be counted (${(error as Error).message}).`,
            );
        }
        const { tokens, contextSize } = counted;
        const refusal = neverFitsMessage(read.label, tokens, promptRoom(contextSize));
        if (refusal) return this.postAttachments(refusal);
        this.pending.push({ id: randomUUID(), kind: source.kind, ...read, tokens });
        this.postAttachments();
        this.changed();
    }

    private async allSuggestions(): Promise<AttachSuggestion[]> {
        this.offered.clear();
        const suggestions: AttachSuggestion[] = [];
        const offer = (id: string, source: Source, label: string, detail: string) => {
            if (this.offered.has(id)) return;
            this.offered.set(id, source);
            suggestions.push({ id, kind: source.kind, label, detail });
        };
        const editor = vscode.window.activeTextEditor;
        if (editor && editor.document.uri.scheme !== "output") {
            const document = editor.document;
            if (!editor.selection.isEmpty)
                offer(
                    "selection",
                    { kind: "selection" },
                    "Selection",
                    `${lineWord(editor.selection)} ${lineRange(editor.selection)} of ${pathOf(document.uri)}`,
                );
            const problems = vscode.languages.getDiagnostics(document.uri);
            if (problems.length > 0)
                offer(
                    `problems:${document.uri.toString()}`,
                    { kind: "problems", uri: document.uri },
                    `Problems in ${nameOf(document.uri)}`,
                    problems.length === 1 ? "1 problem" : `${problems.length} problems`,
                );
        }
        for (const tab of vscode.window.tabGroups.all.flatMap((group) => group.tabs)) {
            if (!(tab.input instanceof vscode.TabInputText)) continue;
            const uri = tab.input.uri;
            offer(`file:${uri.toString()}`, { kind: "file", uri }, nameOf(uri), pathOf(uri));
        }
        for (const uri of await this.files())
            offer(`file:${uri.toString()}`, { kind: "file", uri }, nameOf(uri), pathOf(uri));
        return suggestions;
    }

    private files(): Promise<vscode.Uri[]> {
        this.workspaceFiles ??= this.findWorkspaceFiles().catch((error: unknown) => {
            this.workspaceFiles = undefined;
            this.host.log.warn(`attachments: the file search failed: ${String(error)}`);
            return [];
        });
        return this.workspaceFiles;
    }

    /** The workspace's files without those files.exclude, search.exclude and .gitignore leave out. */
    private async findWorkspaceFiles(): Promise<vscode.Uri[]> {
        const setting = (section: string) =>
            vscode.workspace.getConfiguration(section).get<Record<string, unknown>>("exclude");
        const found = await vscode.workspace.findFiles(
            "**/*",
            excludeGlob(setting("files"), setting("search")),
            MAX_WORKSPACE_FILES,
        );
        const kept: vscode.Uri[] = [];
        for (const folder of vscode.workspace.workspaceFolders ?? []) {
            const inFolder = found.filter(
                (uri) => vscode.workspace.getWorkspaceFolder(uri)?.index === folder.index,
            );
            const relative = (uri: vscode.Uri) => vscode.workspace.asRelativePath(uri, false);
            const ignored = await this.ignoredByGit(folder, inFolder.map(relative));
            kept.push(...inFolder.filter((uri) => !ignored.has(relative(uri))));
        }
        return kept.sort((a, b) => pathOf(a).localeCompare(pathOf(b)));
    }

    /**
     * Only in a trusted workspace: git runs what a repository's config names (core.fsmonitor,
     * for one), which is why VS Code's own git support is off in Restricted Mode.
     */
    private async ignoredByGit(
        folder: vscode.WorkspaceFolder,
        relativePaths: string[],
    ): Promise<Set<string>> {
        const log = (message: string) => this.host.log.info(message);
        if (folder.uri.scheme !== "file") return new Set();
        if (!vscode.workspace.isTrusted) {
            log(
                `attachments: .gitignore not applied in ${folder.name}: git does not run in Restricted Mode`,
            );
            return new Set();
        }
        return gitIgnoredPaths(folder.uri.fsPath, relativePaths, log);
    }

    private async read(source: Source): Promise<Read> {
        switch (source.kind) {
            case "selection": {
                const editor = vscode.window.activeTextEditor;
                if (!editor || editor.selection.isEmpty)
                    return {
                        refusal: "There is no selection to attach: select code in an editor.",
                    };
                const path = pathOf(editor.document.uri);
                const lines = lineRange(editor.selection);
                const text = editor.document.getText(editor.selection);
                return {
                    label: `${nameOf(editor.document.uri)}:${lines}`,
                    path,
                    text: fileBlock(path, text, editor.document.languageId, lines),
                };
            }
            case "problems": {
                const problems = vscode.languages.getDiagnostics(source.uri).map(toProblem);
                const name = nameOf(source.uri);
                if (problems.length === 0)
                    return { refusal: `${name} has no problems to attach now.` };
                const path = pathOf(source.uri);
                return { label: `Problems in ${name}`, path, text: problemsBlock(path, problems) };
            }
            case "file":
                return this.readFile(source.uri);
        }
    }

    /** A file as its editor shows it (unsaved changes included), else as it is on disk. */
    private async readFile(uri: vscode.Uri): Promise<Read> {
        const path = pathOf(uri);
        if (
            !vscode.workspace.isTrusted &&
            uri.scheme !== "untitled" &&
            !vscode.workspace.getWorkspaceFolder(uri)
        )
            return {
                refusal:
                    `${path} is outside this workspace's folders, and the workspace is in Restricted Mode: ` +
                    `only its own files and untitled editors can be attached until you trust it.`,
            };
        const open = vscode.workspace.textDocuments.find(
            (d) => d.uri.toString() === uri.toString(),
        );
        let text: string;
        if (open) {
            text = open.getText();
            const bytes = new TextEncoder().encode(text).length;
            if (bytes > MAX_ATTACHMENT_BYTES) return { refusal: tooLargeMessage(path, bytes) };
            if (text.includes("\0"))
                return { refusal: binaryMessage(path, "it contains NUL characters") };
        } else {
            try {
                const stat = await vscode.workspace.fs.stat(uri);
                if (stat.type & vscode.FileType.Directory)
                    return { refusal: `${path} is a folder: attach the files in it one by one.` };
                if (stat.size > MAX_ATTACHMENT_BYTES)
                    return { refusal: tooLargeMessage(path, stat.size) };
                const decoded = decodeText(await vscode.workspace.fs.readFile(uri));
                if ("binary" in decoded) return { refusal: binaryMessage(path, decoded.binary) };
                text = decoded.text;
            } catch (error) {
                return { refusal: `${path} could not be read: ${(error as Error).message}` };
            }
        }
        const language = open?.languageId ?? fenceLanguage(path);
        return { label: nameOf(uri), path, text: fileBlock(path, text, language) };
    }

    dispose(): void {
        for (const subscription of this.subscriptions) subscription.dispose();
    }
}

/** The most prompt tokens a context of `contextSize` takes: the rest is kept for the answer. */
export function promptRoom(contextSize: number): number {
    const maxTokens = samplingFromSettings().maxTokens ?? DEFAULT_MAX_TOKENS;
    return contextSize - answerReserve(maxTokens, contextSize);
}

function nameOf(uri: vscode.Uri): string {
    return uri.path.split("/").pop() || uri.path;
}

/** Workspace-relative, or the whole path of a file outside the workspace. */
function pathOf(uri: vscode.Uri): string {
    return uri.scheme === "untitled" ? uri.path : vscode.workspace.asRelativePath(uri, false);
}

/** "12" or "12-30", 1-based. */
function lineRange(range: vscode.Range): string {
    const first = range.start.line + 1;
    const last = lastLineOf(range);
    return first === last ? `${first}` : `${first}-${last}`;
}

function lineWord(range: vscode.Range): "line" | "lines" {
    return range.start.line + 1 === lastLineOf(range) ? "line" : "lines";
}

function toProblem(diagnostic: vscode.Diagnostic): Problem {
    const severities = ["error", "warning", "info", "hint"] as const;
    const source = diagnostic.source;
    return {
        line: diagnostic.range.start.line + 1,
        severity: severities[diagnostic.severity],
        message: diagnostic.message,
        ...(source && { source }),
    };
}
