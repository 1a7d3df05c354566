// "OLMo: Rewrite Selection": asks for an instruction and streams the sidecar's code either into the
// document itself (inlineProposal.ts, the default) or into a diff editor (original against
// proposal, both read-only virtual documents) that applies the proposal as one undoable edit on
// Accept, unless the document changed underneath. One rewrite per document at a time.
import * as vscode from "vscode";
import type { ChatDelta, RewriteResult } from "../sidecar/protocol.js";
import { SERVER_ACTION_LABELS, serverErrorAction } from "../media/protocol.js";
import { InlineProposals, type InlineProposal } from "./inlineProposal.js";
import { OlmoError, type ModelHost } from "./modelHost.js";
import {
    acceptRefusal,
    fitReplacement,
    leadingWhitespace,
    nothingToAccept,
    rememberInstruction,
    REWRITE_PRESETS,
    type OriginalCode,
    type ProposalState,
} from "./rewriteEdit.js";
import { codeTarget, displayName, registerSelectionAction, type CodeTarget } from "./selection.js";
import { rewriteSamplingFromSettings } from "./settings.js";
import { runServerAction } from "./teamServerSetup.js";

const SCHEME = "olmo-rewrite";
/** The proposal's document is refreshed at most this often while it streams. */
const REFRESH_INTERVAL_MS = 250;
const RECENT_INSTRUCTIONS_KEY = "olmo.rewrite.recentInstructions";

export function registerRewrite(
    context: vscode.ExtensionContext,
    host: ModelHost,
): vscode.Disposable[] {
    const inline = new InlineProposals(context.workspaceState, host.log);
    const rewrites = new Rewrites(host, context.globalState, inline);
    return [
        inline,
        rewrites,
        vscode.workspace.registerTextDocumentContentProvider(SCHEME, rewrites.documents),
        vscode.commands.registerCommand("olmo.rewriteSelection", () => rewrites.start()),
        // The keybinding's target in an editor VS Code made read-only (files.readonlyInclude, permissions, a
        // read-only session): no API tells the extension, only the editorReadonly context key (package.json).
        vscode.commands.registerCommand("olmo.rewriteReadonly", () =>
            refuseReadonly(vscode.window.activeTextEditor?.document),
        ),
        vscode.commands.registerCommand("olmo.acceptRewrite", (uri?: vscode.Uri) =>
            rewrites.accept(uri),
        ),
        vscode.commands.registerCommand("olmo.rejectRewrite", (uri?: vscode.Uri) =>
            rewrites.reject(uri),
        ),
        registerSelectionAction(
            "OLMo: Rewrite…",
            "olmo.rewriteSelection",
            vscode.CodeActionKind.RefactorRewrite,
            isWritable,
        ),
    ];
}

function isWritable(document: vscode.TextDocument): boolean {
    return (
        document.uri.scheme !== SCHEME &&
        vscode.workspace.fs.isWritableFileSystem(document.uri.scheme) !== false
    );
}

function refuseReadonly(document: vscode.TextDocument | undefined): void {
    const name = document ? displayName(document) : "This editor";
    void vscode.window.showInformationMessage(
        `${name} is read-only, so OLMo cannot rewrite it. OLMo: Explain Selection works on it.`,
    );
}

/** The read-only documents on both sides of the diff. */
class VirtualDocuments implements vscode.TextDocumentContentProvider {
    private readonly texts = new Map<string, string>();
    private readonly changed = new vscode.EventEmitter<vscode.Uri>();
    readonly onDidChange = this.changed.event;

    provideTextDocumentContent(uri: vscode.Uri): string {
        return this.texts.get(uri.toString()) ?? "";
    }

    set(uri: vscode.Uri, text: string): void {
        this.texts.set(uri.toString(), text);
        this.changed.fire(uri);
    }

    delete(uri: vscode.Uri): void {
        this.texts.delete(uri.toString());
    }

    dispose(): void {
        this.changed.dispose();
    }
}

interface Rewrite {
    target: CodeTarget;
    original: OriginalCode;
    versionAtStart: number;
    originalUri: vscode.Uri;
    proposalUri: vscode.Uri;
    /** The code the sidecar has sent so far. */
    code: string;
    /** `code` fitted to the original range: what the diff shows and Accept writes. */
    replacement: string;
    /** The text around the selection on its lines, once an inline proposal moved to the diff. */
    around: { before: string; after: string };
    state: ProposalState;
    /** Shown in the document itself, until Open as Diff. */
    inline?: InlineProposal;
    cancellation: vscode.CancellationTokenSource;
    refreshTimer?: NodeJS.Timeout;
    /** Code arrived since the proposal was last shown. */
    refreshDue?: boolean;
}

class Rewrites implements vscode.Disposable {
    readonly documents = new VirtualDocuments();
    /** By the rewritten document's URI: at most one per document. */
    private readonly active = new Map<string, Rewrite>();
    private nextId = 0;
    private readonly tabListener: vscode.Disposable;
    private toldAutoSave = false;

    constructor(
        private readonly host: ModelHost,
        private readonly globalState: vscode.Memento,
        private readonly inline: InlineProposals,
    ) {
        // Closing the diff is a Reject.
        this.tabListener = vscode.window.tabGroups.onDidChangeTabs(({ closed }) => {
            for (const tab of closed) {
                const rewrite =
                    tab.input instanceof vscode.TabInputTextDiff
                        ? this.find(tab.input.modified)
                        : undefined;
                if (rewrite) this.discard(rewrite);
            }
        });
    }

    async start(): Promise<void> {
        const editor = vscode.window.activeTextEditor;
        if (editor && !isWritable(editor.document)) return refuseReadonly(editor.document);
        const target = await codeTarget(editor, "rewrite");
        if (!target) return;
        const key = target.document.uri.toString();
        if (this.active.get(key)?.state === "streaming") {
            void vscode.window.showWarningMessage(
                `A rewrite of ${target.fileName} is still running: let it finish or cancel it before starting another.`,
            );
            return;
        }
        // The selection would include the proposal's own lines.
        if (this.active.get(key)?.inline) {
            void vscode.window.showWarningMessage(
                `Accept or reject OLMo's proposal in ${target.fileName} before starting another rewrite there.`,
            );
            return;
        }
        const versionAtStart = target.document.version;
        const instruction = await pickInstruction(this.globalState);
        if (!instruction) return;
        // A finished proposal still waiting for Accept or Reject gives way to the new one.
        const waiting = this.active.get(key);
        if (waiting) this.discard(waiting);

        const inline = this.showsInline(target.document);
        // Inline, the proposal goes where the selection was when it was taken.
        if (inline && target.document.version !== versionAtStart) {
            void vscode.window.showWarningMessage(
                `${target.fileName} changed while the instruction was chosen: run Rewrite Selection again.`,
            );
            return;
        }
        const id = ++this.nextId;
        const baseName = target.document.uri.path.split("/").pop() || "code";
        const rewrite: Rewrite = {
            target,
            original: {
                text: target.code,
                linePrefix: linePrefix(target),
                eol: target.document.eol === vscode.EndOfLine.CRLF ? "\r\n" : "\n",
            },
            versionAtStart,
            originalUri: vscode.Uri.from({ scheme: SCHEME, path: `/${id}/original/${baseName}` }),
            proposalUri: vscode.Uri.from({ scheme: SCHEME, path: `/${id}/proposal/${baseName}` }),
            code: "",
            replacement: "",
            around: { before: "", after: "" },
            state: "streaming",
            cancellation: new vscode.CancellationTokenSource(),
        };
        this.active.set(key, rewrite);
        if (inline) {
            rewrite.inline = this.inline.start(target.document, target.range, {
                stop: () => {
                    if (this.isActive(rewrite)) rewrite.cancellation.cancel();
                },
                ended: () => this.forget(rewrite),
                openAsDiff: (range, proposed) => this.moveToDiff(rewrite, range, proposed),
            });
            const start = target.range.start;
            if (editor?.document === target.document)
                editor.selection = new vscode.Selection(start, start);
        } else await this.openDiff(rewrite);
        await this.generate(rewrite, instruction);
    }

    /**
     * In the document unless the setting says diff, or auto save would write the proposal to disk
     * (files.autoSave, which VS Code in a browser turns on by default; untitled documents are not auto saved).
     */
    private showsInline(document: vscode.TextDocument): boolean {
        const presentation = vscode.workspace
            .getConfiguration("olmo.rewrite", document)
            .get<string>("presentation", "inline");
        if (presentation !== "inline") return false;
        const autoSave = vscode.workspace
            .getConfiguration("files", document)
            .get("autoSave", "off");
        if (document.isUntitled || autoSave === "off") return true;
        if (!this.toldAutoSave) {
            this.toldAutoSave = true;
            void vscode.window.showInformationMessage(
                `OLMo shows rewrites as a diff while files.autoSave is "${autoSave}": auto save would write a proposal shown in the file to disk.`,
            );
        }
        return false;
    }

    /** Open as Diff: the original lines are back in `range`; the diff shows the proposal from here on. */
    private async moveToDiff(
        rewrite: Rewrite,
        range: vscode.Range,
        proposed: string | undefined,
    ): Promise<void> {
        const { target } = rewrite;
        const lines = target.document.getText(range);
        const before = lines.slice(0, target.range.start.character);
        rewrite.around = { before, after: lines.slice(before.length + target.code.length) };
        rewrite.target = { ...target, range, code: lines };
        rewrite.inline = undefined;
        rewrite.versionAtStart = target.document.version;
        await this.openDiff(rewrite);
        if (proposed === undefined) return this.showProposal(rewrite);
        rewrite.replacement = proposed;
        this.documents.set(rewrite.proposalUri, proposed);
        this.announce(rewrite, "eos");
    }

    private async openDiff(rewrite: Rewrite): Promise<void> {
        const { target } = rewrite;
        this.documents.set(rewrite.originalUri, target.code);
        this.documents.set(rewrite.proposalUri, "");
        // Highlighted as the original even when its name says nothing (untitled documents).
        for (const uri of [rewrite.originalUri, rewrite.proposalUri]) {
            await vscode.languages.setTextDocumentLanguage(
                await vscode.workspace.openTextDocument(uri),
                target.document.languageId,
            );
        }
        const title = `${target.fileName} (${linesPhrase(target.lines)}) ↔ OLMo's rewrite`;
        await vscode.commands.executeCommand(
            "vscode.diff",
            rewrite.originalUri,
            rewrite.proposalUri,
            title,
            { preview: false },
        );
    }

    private async generate(rewrite: Rewrite, instruction: string): Promise<void> {
        const { target } = rewrite;
        const progress = {
            location: vscode.ProgressLocation.Notification,
            title: `OLMo: rewriting ${target.fileName} (${linesPhrase(target.lines)})…`,
            cancellable: true,
        };
        await vscode.window.withProgress(progress, async (_progress, cancelButton) => {
            const cancelled = cancelButton.onCancellationRequested(() =>
                rewrite.cancellation.cancel(),
            );
            try {
                const params = {
                    code: target.code,
                    language: target.document.languageId,
                    fileName: target.fileName,
                    instruction,
                    sampling: rewriteSamplingFromSettings(),
                };
                const result = await this.host.stream(
                    "olmo/rewrite",
                    params,
                    (delta) => this.onDelta(rewrite, delta),
                    rewrite.cancellation.token,
                );
                this.finish(rewrite, result);
            } catch (error) {
                this.fail(rewrite, error);
            } finally {
                cancelled.dispose();
            }
        });
    }

    /** The first code at once, then the latest at most every REFRESH_INTERVAL_MS. */
    private onDelta(rewrite: Rewrite, delta: ChatDelta): void {
        rewrite.code = delta.replace ? delta.text : rewrite.code + delta.text;
        if (rewrite.refreshTimer) {
            rewrite.refreshDue = true;
            return;
        }
        this.showProposal(rewrite);
        const tick = () => {
            rewrite.refreshTimer = undefined;
            if (!rewrite.refreshDue || !this.isActive(rewrite) || rewrite.state !== "streaming")
                return;
            rewrite.refreshDue = false;
            this.showProposal(rewrite);
            rewrite.refreshTimer = setTimeout(tick, REFRESH_INTERVAL_MS);
        };
        rewrite.refreshTimer = setTimeout(tick, REFRESH_INTERVAL_MS);
    }

    private showProposal(rewrite: Rewrite): void {
        const fitted = fitReplacement(rewrite.code, rewrite.original);
        if (rewrite.inline) {
            rewrite.replacement = fitted;
            void rewrite.inline.update(fitted, rewrite.state === "streaming");
            return;
        }
        const { before, after } = rewrite.around;
        rewrite.replacement = before + fitted + after;
        this.documents.set(rewrite.proposalUri, rewrite.replacement);
    }

    private finish(rewrite: Rewrite, result: RewriteResult): void {
        if (!this.isActive(rewrite)) return;
        if (result.stopReason === "cancelled") {
            this.host.log.info(
                `rewrite of ${rewrite.target.fileName} cancelled after ${result.usage.completionTokens} tokens`,
            );
            return this.discard(rewrite);
        }
        clearTimeout(rewrite.refreshTimer);
        rewrite.code = result.code;
        rewrite.state = "done";
        this.showProposal(rewrite);
        const { target } = rewrite;
        // The proposal in full, for the log reader (and the end-to-end test).
        this.host.log.debug(
            `rewrite ready: ${JSON.stringify({ fileName: target.fileName, lines: target.lines, stopReason: result.stopReason, code: result.code, replacement: rewrite.replacement })}`,
        );
        const nothing = nothingToAccept(rewrite.replacement, target.code);
        if (nothing) {
            this.discard(rewrite);
            void vscode.window.showInformationMessage(nothing);
            return;
        }
        this.announce(rewrite, result.stopReason);
    }

    /** Says that the proposal is complete: the diff asks Accept or Reject; inline, the CodeLenses do. */
    private announce(rewrite: Rewrite, stopReason: RewriteResult["stopReason"]): void {
        const { target } = rewrite;
        const cutOff =
            stopReason === "eos" ? "" : " It stopped at the length limit, so it may be incomplete.";
        if (rewrite.inline) {
            if (cutOff)
                void vscode.window.showWarningMessage(
                    `OLMo's rewrite of ${target.fileName} (${linesPhrase(target.lines)}) is shown.${cutOff}`,
                );
            return;
        }
        void vscode.window
            .showInformationMessage(
                `OLMo's rewrite of ${target.fileName} (${linesPhrase(target.lines)}) is ready.${cutOff}`,
                "Accept",
                "Reject",
            )
            .then((choice) => {
                if (!choice || !this.isActive(rewrite)) return;
                if (choice === "Accept") void this.apply(rewrite);
                else this.discard(rewrite);
            });
    }

    private fail(rewrite: Rewrite, error: unknown): void {
        if (!this.isActive(rewrite)) return;
        this.discard(rewrite);
        if (error instanceof OlmoError && error.code === "cancelled") {
            this.host.log.info(`rewrite of ${rewrite.target.fileName} cancelled`);
            return;
        }
        const message = error instanceof Error ? error.message : String(error);
        this.host.log.error(`rewrite of ${rewrite.target.fileName} failed: ${message}`);
        const serverAction = serverErrorAction(error instanceof OlmoError ? error.code : undefined);
        void vscode.window
            .showErrorMessage(
                `OLMo could not rewrite ${rewrite.target.fileName}: ${message}`,
                ...(serverAction ? [SERVER_ACTION_LABELS[serverAction]] : []),
            )
            .then((choice) => {
                if (choice && serverAction) void runServerAction(serverAction);
            });
    }

    async accept(uri?: vscode.Uri): Promise<void> {
        const rewrite = this.find(uri ?? activeDiffProposal());
        if (!rewrite)
            return void vscode.window.showInformationMessage(
                "No OLMo rewrite is waiting to be accepted.",
            );
        await this.apply(rewrite);
    }

    reject(uri?: vscode.Uri): void {
        const rewrite = this.find(uri ?? activeDiffProposal());
        if (rewrite) this.discard(rewrite);
    }

    /** Replaces exactly the original range, in one edit, so that one Undo takes it back. */
    private async apply(rewrite: Rewrite): Promise<void> {
        const refusal = this.refusal(rewrite);
        if (refusal) return void vscode.window.showWarningMessage(refusal);
        const { document, range, fileName } = rewrite.target;
        // Forgotten first, so that a second Accept (title bar and notification) cannot apply it twice.
        this.discard(rewrite);
        const edit = new vscode.WorkspaceEdit();
        edit.replace(document.uri, range, rewrite.replacement);
        if (!(await vscode.workspace.applyEdit(edit))) {
            return void vscode.window.showWarningMessage(
                `The rewrite could not be applied to ${fileName} (is it read-only?).`,
            );
        }
        const end = document.positionAt(
            document.offsetAt(range.start) + rewrite.replacement.length,
        );
        await vscode.window.showTextDocument(document, {
            selection: new vscode.Range(range.start, end),
        });
    }

    private refusal(rewrite: Rewrite): string | undefined {
        const { document, code, fileName } = rewrite.target;
        return acceptRefusal({
            state: rewrite.state,
            replacement: rewrite.replacement,
            originalText: code,
            fileName,
            versionAtStart: rewrite.versionAtStart,
            versionNow: document.isClosed ? undefined : document.version,
        });
    }

    /** Forgets the rewrite: stops it if it runs, and takes its proposal out or closes its diff. */
    private discard(rewrite: Rewrite): void {
        if (!this.isActive(rewrite)) return;
        const { inline } = rewrite;
        this.forget(rewrite);
        if (inline) void inline.rejectAll();
    }

    /** Forgets the rewrite whose proposal is over: stops it if it runs, and closes its diff. */
    private forget(rewrite: Rewrite): void {
        if (!this.isActive(rewrite)) return;
        this.active.delete(rewrite.target.document.uri.toString());
        rewrite.cancellation.cancel();
        rewrite.cancellation.dispose();
        clearTimeout(rewrite.refreshTimer);
        if (rewrite.inline) return;
        const proposal = rewrite.proposalUri.toString();
        const tabs = vscode.window.tabGroups.all
            .flatMap((group) => group.tabs)
            .filter(
                (tab) =>
                    tab.input instanceof vscode.TabInputTextDiff &&
                    tab.input.modified.toString() === proposal,
            );
        void vscode.window.tabGroups.close(tabs).then(() => {
            this.documents.delete(rewrite.originalUri);
            this.documents.delete(rewrite.proposalUri);
        });
    }

    private isActive(rewrite: Rewrite): boolean {
        return this.active.get(rewrite.target.document.uri.toString()) === rewrite;
    }

    /** The rewrite shown with `uri` on either side of its diff. */
    private find(uri: vscode.Uri | undefined): Rewrite | undefined {
        const wanted = uri?.toString();
        return [...this.active.values()].find(
            (rewrite) =>
                rewrite.proposalUri.toString() === wanted ||
                rewrite.originalUri.toString() === wanted,
        );
    }

    dispose(): void {
        // An inline proposal stays in its document (backed up, when the window reloads, as it is
        // now), and the next activation takes it out: taking it out now could race the backup.
        for (const rewrite of [...this.active.values()])
            if (rewrite.inline) rewrite.cancellation.cancel();
            else this.discard(rewrite);
        this.tabListener.dispose();
        this.documents.dispose();
    }
}

function activeDiffProposal(): vscode.Uri | undefined {
    const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
    return input instanceof vscode.TabInputTextDiff ? input.modified : undefined;
}

/** The whitespace before the selection on its first line (see OriginalCode.linePrefix). */
function linePrefix(target: CodeTarget): string {
    return leadingWhitespace(
        target.document.lineAt(target.range.start.line).text.slice(0, target.range.start.character),
    );
}

function linesPhrase(lines: string): string {
    return lines.includes("-") ? `lines ${lines}` : `line ${lines}`;
}

type InstructionItem = vscode.QuickPickItem & { instruction: string };

/** Recent custom instructions first, then the presets; typing offers the text as an instruction of its own. */
async function pickInstruction(globalState: vscode.Memento): Promise<string | undefined> {
    const recent = globalState.get<string[]>(RECENT_INSTRUCTIONS_KEY, []);
    const listed: InstructionItem[] = [
        ...recent.map((text) => ({ label: text, description: "recent", instruction: text })),
        ...REWRITE_PRESETS.map((preset) => ({
            label: preset.label,
            description: preset.instruction,
            instruction: preset.instruction,
        })),
    ];
    const pick = vscode.window.createQuickPick<InstructionItem>();
    pick.title = "OLMo: Rewrite Selection";
    pick.placeholder = "Pick an instruction, or type your own and press Enter";
    pick.items = listed;
    pick.onDidChangeValue((value) => {
        const typed = value.trim();
        const own = {
            label: typed,
            description: "your instruction",
            instruction: typed,
            alwaysShow: true,
        };
        pick.items =
            typed && !listed.some((item) => item.label === typed) ? [own, ...listed] : listed;
    });
    const chosen = await new Promise<InstructionItem | undefined>((resolve) => {
        pick.onDidAccept(() => resolve(pick.selectedItems[0]));
        pick.onDidHide(() => resolve(undefined));
        pick.show();
    });
    pick.dispose();
    if (chosen)
        await globalState.update(
            RECENT_INSTRUCTIONS_KEY,
            rememberInstruction(recent, chosen.instruction),
        );
    return chosen?.instruction;
}
