// A rewrite proposal shown in the document itself: the original lines stay, marked removed, with
// the proposed lines after them, marked added; CodeLenses accept or reject each hunk or all of it.
// The proposal lines live in the document, so they must never outlive it: before each change a
// record of the original goes to workspace storage, and the next activation takes any proposal a
// reload or crash left behind (hot exit backs dirty documents up) back out; a save writes the
// document without the proposal; edits inside the proposal while it streams end it.
import * as vscode from "vscode";
import {
    acceptedLines,
    diffLines,
    hunks,
    layoutLines,
    placeEdit,
    proposalSegments,
    rejectedLines,
    resolveHunk,
    type Hunk,
    type Segment,
    commonEnds,
} from "./proposalHunks.js";
import { displayName } from "./selection.js";

const RECORDS_KEY = "olmo.inlineProposals";
/** True while the active editor shows a proposal: the keybindings and the palette use it. */
const CONTEXT_KEY = "olmo.inlineProposal";

/** What outlives the extension host, to take a proposal back out of its document. */
interface ProposalRecord {
    startLine: number;
    /** The proposal's lines as laid out in the document, line endings included. */
    layout: string;
    /** The lines the layout replaced. */
    original: string;
    /** Reverting to the saved file gives the original: it was saved, and nothing else changed. */
    revertible: boolean;
}

/** The rewrite that feeds a proposal, told what happens to it. */
export interface ProposalOwner {
    /** Stops the generation, if it still runs. */
    stop(): void;
    /** The proposal left the document (accepted, rejected or ended). */
    ended(): void;
    /** Shows the proposal as a diff of `range` (the original lines, back in the document). */
    openAsDiff(range: vscode.Range, proposed: string | undefined): Promise<void>;
}

export class InlineProposals implements vscode.CodeLensProvider, vscode.Disposable {
    private readonly proposals = new Map<string, InlineProposal>();
    /** Records left by an earlier extension host, by document URI, until their document opens. */
    private readonly leftBehind: Map<string, ProposalRecord>;
    private readonly lensesChanged = new vscode.EventEmitter<void>();
    readonly onDidChangeCodeLenses = this.lensesChanged.event;
    readonly decorations = {
        removed: vscode.window.createTextEditorDecorationType({
            isWholeLine: true,
            backgroundColor: new vscode.ThemeColor("diffEditor.removedLineBackground"),
            overviewRulerColor: new vscode.ThemeColor("editorOverviewRuler.deletedForeground"),
            overviewRulerLane: vscode.OverviewRulerLane.Left,
        }),
        added: vscode.window.createTextEditorDecorationType({
            isWholeLine: true,
            backgroundColor: new vscode.ThemeColor("diffEditor.insertedLineBackground"),
            overviewRulerColor: new vscode.ThemeColor("editorOverviewRuler.addedForeground"),
            overviewRulerLane: vscode.OverviewRulerLane.Left,
        }),
        // Original lines the streaming proposal has not reached yet.
        pending: vscode.window.createTextEditorDecorationType({ opacity: "0.6" }),
    };
    private readonly subscriptions: vscode.Disposable[];

    constructor(
        private readonly workspaceState: vscode.Memento,
        readonly log: vscode.LogOutputChannel,
    ) {
        this.leftBehind = new Map(
            Object.entries(workspaceState.get<Record<string, ProposalRecord>>(RECORDS_KEY, {})),
        );
        this.subscriptions = [
            vscode.languages.registerCodeLensProvider("*", this),
            vscode.workspace.onDidOpenTextDocument((document) => this.takeOutLeftBehind(document)),
            vscode.workspace.onDidChangeTextDocument((event) =>
                this.proposals.get(event.document.uri.toString())?.onDocumentChange(event),
            ),
            vscode.workspace.onWillSaveTextDocument((event) =>
                this.proposals.get(event.document.uri.toString())?.onWillSave(event),
            ),
            vscode.workspace.onDidCloseTextDocument((document) => {
                // A change of language (VS Code detects it in untitled documents) closes and
                // reopens the same document: it stays open, and so does its proposal.
                const key = document.uri.toString();
                if (vscode.workspace.textDocuments.some((open) => open.uri.toString() === key))
                    return;
                this.proposals.get(key)?.onClose();
            }),
            vscode.window.onDidChangeVisibleTextEditors(() => {
                for (const proposal of this.proposals.values()) proposal.decorate();
            }),
            vscode.window.onDidChangeActiveTextEditor(() => this.updateContext()),
            ...registerCommands(this),
        ];
        for (const document of vscode.workspace.textDocuments) this.takeOutLeftBehind(document);
    }

    /** Starts a proposal over the whole lines of `range`; it shows nothing until its first update. */
    start(
        document: vscode.TextDocument,
        range: vscode.Range,
        owner: ProposalOwner,
    ): InlineProposal {
        const proposal = new InlineProposal(this, document, range, owner);
        this.proposals.set(document.uri.toString(), proposal);
        this.persist();
        this.updateContext();
        return proposal;
    }

    find(uri: vscode.Uri | string | undefined): InlineProposal | undefined {
        const key = uri?.toString() ?? vscode.window.activeTextEditor?.document.uri.toString();
        return key === undefined ? undefined : this.proposals.get(key);
    }

    forget(proposal: InlineProposal): void {
        const key = proposal.document.uri.toString();
        if (this.proposals.get(key) !== proposal) return;
        this.proposals.delete(key);
        this.updateContext();
        this.lensesChanged.fire();
        this.persist();
    }

    changed(): void {
        this.lensesChanged.fire();
        this.persist();
    }

    /** Every proposal's record, written before the document shows what it records. */
    persist(): void {
        const records: Record<string, ProposalRecord> = Object.fromEntries(this.leftBehind);
        for (const [key, proposal] of this.proposals) records[key] = proposal.record();
        void this.workspaceState.update(RECORDS_KEY, records);
    }

    private updateContext(): void {
        const shown = this.find(undefined) !== undefined;
        void vscode.commands.executeCommand("setContext", CONTEXT_KEY, shown);
    }

    provideCodeLenses(document: vscode.TextDocument): vscode.CodeLens[] {
        return this.proposals.get(document.uri.toString())?.lenses() ?? [];
    }

    /** Takes a proposal that an earlier extension host left in `document` back out. */
    private takeOutLeftBehind(document: vscode.TextDocument): void {
        const key = document.uri.toString();
        const record = this.leftBehind.get(key);
        if (!record) return;
        this.leftBehind.delete(key);
        this.persist();
        void takeOut(document, record).then((outcome) => {
            const name = displayName(document);
            if (outcome === "restored")
                this.log.info(`took an unfinished OLMo proposal out of ${name} after a restart`);
            else if (outcome === "absent")
                // Hot exit had not backed the proposal up: the restored document is the saved file.
                this.log.info(
                    `${name} came back without the unfinished OLMo proposal after a restart`,
                );
            else if (outcome === "missing") {
                this.log.warn(`the unfinished OLMo proposal in ${name} was not found`);
                void vscode.window.showWarningMessage(
                    `OLMo could not find the unfinished rewrite proposal in ${name} to take it out after the restart: check the file (Undo, or File: Revert File).`,
                );
            }
        });
    }

    dispose(): void {
        // Proposals stay in their documents: their records take them out on the next activation.
        for (const subscription of this.subscriptions) subscription.dispose();
        for (const type of Object.values(this.decorations)) type.dispose();
        this.lensesChanged.dispose();
    }
}

/** Where the record's proposal is in `document`, or undefined. */
function findLayout(document: vscode.TextDocument, record: ProposalRecord): number | undefined {
    const text = document.getText();
    const at = document.offsetAt(new vscode.Position(record.startLine, 0));
    if (text.startsWith(record.layout, at)) return at;
    const found = text.indexOf(record.layout);
    return found >= 0 && text.indexOf(record.layout, found + 1) < 0 ? found : undefined;
}

async function takeOut(
    document: vscode.TextDocument,
    record: ProposalRecord,
): Promise<"restored" | "missing" | "absent"> {
    // A clean document is the saved file: the proposal never got into it (or its backup).
    if (!document.isDirty) return "absent";
    const at = findLayout(document, record);
    if (at === undefined) return "missing";
    if (record.revertible && (await revert(document))) return "restored";
    const edit = new vscode.WorkspaceEdit();
    const range = new vscode.Range(
        document.positionAt(at),
        document.positionAt(at + record.layout.length),
    );
    edit.replace(document.uri, range, record.original);
    return (await vscode.workspace.applyEdit(edit)) ? "restored" : "missing";
}

/**
 * Reloads a file document from disk (File: Revert File, which works on the active editor), so
 * that it is clean again as it was; false when it could not.
 */
async function revert(document: vscode.TextDocument): Promise<boolean> {
    if (document.isUntitled || document.isClosed) return false;
    const version = document.version;
    await vscode.window.showTextDocument(document, { preview: false });
    if (vscode.window.activeTextEditor?.document !== document) return false;
    await vscode.commands.executeCommand("workbench.action.files.revert");
    return document.version !== version && !document.isDirty;
}

export class InlineProposal {
    readonly fileName: string;
    private readonly eol: string;
    /** The first line of the proposal in the document; follows edits above it. */
    private startLine: number;
    private readonly original: string[];
    /** Whether the lines end with a line break (not when they end the document without one). */
    private readonly endsWithEol: boolean;
    /** The selection's text before and after it on its first and last lines. */
    private readonly before: string;
    private readonly after: string;
    private segments: Segment[];
    private streaming = true;
    private readonly savedAtStart: boolean;
    private changedOutside = false;
    private resolvedSome = false;
    /** Set while the proposal's own edit is applied, so that its change event is not the user's. */
    private applying = false;
    private ended = false;
    private queue: Promise<void> = Promise.resolve();

    constructor(
        private readonly proposals: InlineProposals,
        readonly document: vscode.TextDocument,
        range: vscode.Range,
        private readonly owner: ProposalOwner,
    ) {
        this.fileName = displayName(document);
        this.eol = document.eol === vscode.EndOfLine.CRLF ? "\r\n" : "\n";
        this.startLine = range.start.line;
        const lineAligned = range.end.character === 0 && range.end.line > range.start.line;
        const endLine = lineAligned ? range.end.line : range.end.line + 1;
        const end =
            endLine < document.lineCount
                ? new vscode.Position(endLine, 0)
                : document.lineAt(document.lineCount - 1).range.end;
        const whole = document.getText(
            new vscode.Range(range.start.line, 0, end.line, end.character),
        );
        this.endsWithEol = endLine < document.lineCount;
        this.original = this.toLines(whole);
        this.before = document.getText(
            new vscode.Range(range.start.line, 0, range.start.line, range.start.character),
        );
        this.after = document.getText(new vscode.Range(range.end, end));
        this.segments = [{ kind: "same", lines: this.original }];
        this.savedAtStart = !document.isDirty && !document.isUntitled;
    }

    private toLines(text: string): string[] {
        if (text === "") return [];
        const body =
            this.endsWithEol && text.endsWith(this.eol) ? text.slice(0, -this.eol.length) : text;
        return body.split(this.eol);
    }

    private text(lines: readonly string[]): string {
        return lines.length === 0 ? "" : lines.join(this.eol) + (this.endsWithEol ? this.eol : "");
    }

    record(): ProposalRecord {
        return {
            startLine: this.startLine,
            layout: this.text(layoutLines(this.segments)),
            original: this.text(rejectedLines(this.segments)),
            revertible: this.revertible(),
        };
    }

    private revertible(): boolean {
        return this.savedAtStart && !this.changedOutside && !this.resolvedSome;
    }

    private lineCount(segments = this.segments): number {
        return segments.reduce((count, segment) => count + segment.lines.length, 0);
    }

    /** The proposal's lines in the document, line endings included. */
    private range(lineCount = this.lineCount()): vscode.Range {
        const endLine = this.startLine + lineCount;
        const end =
            endLine < this.document.lineCount
                ? new vscode.Position(endLine, 0)
                : this.document.lineAt(this.document.lineCount - 1).range.end;
        return new vscode.Range(new vscode.Position(this.startLine, 0), end);
    }

    /** Runs proposal edits one after another; a failed one ends the proposal with its message. */
    private enqueue(step: () => Promise<void>): Promise<void> {
        this.queue = this.queue.then(async () => {
            if (this.ended) return;
            try {
                await step();
            } catch (error) {
                const message = error instanceof Error ? error.message : String(error);
                this.proposals.log.error(`inline proposal in ${this.fileName}: ${message}`);
                this.finish();
                void vscode.window.showErrorMessage(
                    `OLMo's proposal for ${this.fileName} ended: ${message}`,
                );
            }
        });
        return this.queue;
    }

    get isStreaming(): boolean {
        return this.streaming;
    }

    /** Shows `replacement` (the new text of the selection) in place of the original lines. */
    update(replacement: string, streaming: boolean): Promise<void> {
        return this.enqueue(async () => {
            const proposed = this.toLines(this.before + replacement + this.after);
            this.proposals.log.debug(
                `proposal in ${this.fileName}: ${streaming ? "streaming" : "complete"}, ${replacement.length} characters`,
            );
            await this.layOut(proposalSegments(this.original, proposed, streaming));
            this.streaming = streaming;
            this.proposals.changed();
            this.decorate();
        });
    }

    /** Replaces what the document shows of the proposal by `segments`, in one edit of the part that differs. */
    private async layOut(segments: Segment[]): Promise<void> {
        const range = this.range();
        const current = this.document.getText(range);
        if (current !== this.text(layoutLines(this.segments)))
            throw new Error("the document changed under the proposal");
        const next = this.text(layoutLines(segments));
        // The record says what the document is about to hold before it holds it.
        const previous = this.segments;
        this.segments = segments;
        this.proposals.persist();
        try {
            await this.replace(range, current, next);
        } catch (error) {
            this.segments = previous;
            throw error;
        }
    }

    /** Replaces `range` (holding `current`) by `next`, touching only the characters that differ. */
    private async replace(range: vscode.Range, current: string, next: string): Promise<void> {
        const { prefix: head, suffix: tail } = commonEnds(current, next);
        if (head === current.length && head === next.length) return;
        const start = this.document.offsetAt(range.start);
        const edit = new vscode.WorkspaceEdit();
        edit.replace(
            this.document.uri,
            new vscode.Range(
                this.document.positionAt(start + head),
                this.document.positionAt(start + current.length - tail),
            ),
            next.slice(head, next.length - tail),
        );
        this.applying = true;
        try {
            if (!(await vscode.workspace.applyEdit(edit)))
                throw new Error(`${this.fileName} could not be edited`);
        } finally {
            this.applying = false;
        }
    }

    decorate(): void {
        const ranges: Record<"removed" | "added" | "pending", vscode.Range[]> = {
            removed: [],
            added: [],
            pending: [],
        };
        let line = this.startLine;
        for (const segment of this.ended ? [] : this.segments) {
            const count = segment.lines.length;
            if (segment.kind !== "same" && count > 0)
                ranges[segment.kind].push(new vscode.Range(line, 0, line + count - 1, 0));
            line += count;
        }
        for (const editor of vscode.window.visibleTextEditors) {
            if (editor.document !== this.document) continue;
            for (const kind of ["removed", "added", "pending"] as const)
                editor.setDecorations(this.proposals.decorations[kind], ranges[kind]);
        }
    }

    hunks(): Hunk[] {
        return hunks(this.segments);
    }

    lenses(): vscode.CodeLens[] {
        const uri = this.document.uri;
        const at = (line: number) => new vscode.Range(line, 0, line, 0);
        const lens = (line: number, title: string, command: string, ...args: unknown[]) =>
            new vscode.CodeLens(at(line), { title, command, arguments: [uri, ...args] });
        // While it streams, a label (no command) instead of Accept All.
        const first = this.streaming
            ? new vscode.CodeLens(at(this.startLine), {
                  title: "$(loading~spin) OLMo is writing…",
                  command: "",
              })
            : lens(this.startLine, "Accept All", "olmo.proposal.acceptAll");
        const lenses = [
            first,
            lens(this.startLine, "Reject All", "olmo.proposal.rejectAll"),
            lens(this.startLine, "Open as Diff", "olmo.proposal.openAsDiff"),
        ];
        if (this.streaming) return lenses;
        this.hunks().forEach((hunk, index) => {
            const line = this.startLine + hunk.start;
            lenses.push(lens(line, "Accept", "olmo.proposal.acceptHunk", index));
            lenses.push(lens(line, "Reject", "olmo.proposal.rejectHunk", index));
        });
        return lenses;
    }

    /** The hunk at the cursor's line, else the next one below it, else the last. */
    hunkAtCursor(): number {
        const line = vscode.window.activeTextEditor?.selection.active.line ?? this.startLine;
        const all = this.hunks();
        const index = all.findIndex(
            (hunk) => this.startLine + hunk.start + hunk.removed + hunk.added > line,
        );
        return index >= 0 ? index : all.length - 1;
    }

    /** The first line of each hunk. */
    hunkLines(): number[] {
        return this.hunks().map((hunk) => this.startLine + hunk.start);
    }

    acceptAll(): Promise<void> {
        return this.enqueue(async () => {
            if (this.streaming) {
                void vscode.window.showInformationMessage(
                    "OLMo is still writing the proposal: wait for it to finish, or Reject All.",
                );
                return;
            }
            const accepted = this.text(acceptedLines(this.segments));
            // Back to the original first, so that one Undo after the accepting edit goes there.
            await this.restoreOriginal();
            const range = this.range();
            await this.replace(range, this.document.getText(range), accepted);
            this.finish();
        });
    }

    rejectAll(): Promise<void> {
        this.owner.stop();
        return this.enqueue(async () => {
            await this.restoreOriginal();
            this.finish();
        });
    }

    resolveHunk(index: number, accept: boolean): Promise<void> {
        return this.enqueue(async () => {
            if (this.streaming || index < 0 || index >= this.hunks().length) return;
            await this.layOut(resolveHunk(this.segments, index, accept));
            this.resolvedSome = true;
            if (this.hunks().length === 0) return this.finish();
            this.proposals.changed();
            this.decorate();
        });
    }

    /** Gives the proposal to the diff editor: the original lines go back, the diff shows it. */
    openAsDiff(): Promise<void> {
        return this.enqueue(async () => {
            const proposed = this.streaming ? undefined : this.text(acceptedLines(this.segments));
            await this.restoreOriginal();
            const range = this.range();
            this.finish(false);
            await this.owner.openAsDiff(range, proposed);
        });
    }

    /**
     * Takes the proposal out: the original lines (with any hunks accepted so far) go back, and a
     * document that was saved and changed nowhere else is reverted, so that it is clean again.
     */
    private async restoreOriginal(): Promise<void> {
        const original = this.text(rejectedLines(this.segments));
        if (this.revertible()) {
            this.applying = true;
            try {
                if (await revert(this.document)) {
                    this.segments = [{ kind: "same", lines: this.toLines(original) }];
                    return;
                }
            } finally {
                this.applying = false;
            }
        }
        await this.layOut([{ kind: "same", lines: this.toLines(original) }]);
    }

    /** The proposal is over: no more decorations, lenses or record. */
    private finish(tellOwner = true): void {
        if (this.ended) return;
        this.ended = true;
        this.decorate();
        this.proposals.forget(this);
        if (tellOwner) this.owner.ended();
    }

    /** Ends the proposal, after an edit it cannot follow, with the original lines back. */
    private endAfterEdit(lineCount: number, why: string): void {
        this.owner.stop();
        const edit = new vscode.WorkspaceEdit();
        edit.replace(
            this.document.uri,
            this.range(lineCount),
            this.text(rejectedLines(this.segments)),
        );
        this.finish();
        void vscode.workspace.applyEdit(edit);
        void vscode.window.showInformationMessage(
            `OLMo's proposal for ${this.fileName} ended, and the original lines are back: ${why}.`,
        );
    }

    onDocumentChange(event: vscode.TextDocumentChangeEvent): void {
        if (this.applying || this.ended || event.contentChanges.length === 0) return;
        // From the bottom up, so that each change's lines are those of the document before it.
        const changes = [...event.contentChanges].sort((a, b) =>
            b.range.start.compareTo(a.range.start),
        );
        let lineCount = this.lineCount();
        let cannotFollow: string | undefined;
        for (const change of changes) {
            const place = placeEdit(this.segments, this.startLine, {
                startLine: change.range.start.line,
                startCharacter: change.range.start.character,
                endLine: change.range.end.line,
                endCharacter: change.range.end.character,
                text: change.text,
            });
            if (place.place === "above") {
                this.startLine += place.lineDelta;
                this.changedOutside = true;
                continue;
            }
            if (place.place === "below") {
                this.changedOutside = true;
                continue;
            }
            lineCount += place.lineDelta;
            const segment = place.place === "inside" ? this.segments[place.segment] : undefined;
            if (this.streaming) cannotFollow = "it was edited while OLMo was still writing it";
            else if (!segment || segment.kind === "removed")
                cannotFollow = "an edit reached lines marked removed";
            else
                segment.lines = new Array<string>(
                    Math.max(0, segment.lines.length + place.lineDelta),
                ).fill("");
        }
        if (cannotFollow) return this.endAfterEdit(lineCount, cannotFollow);
        // Edited lines of the proposal: read back what they now hold, and diff them again, so that
        // the hunks follow the edit (a proposed line edited to match an original one is unchanged).
        let line = this.startLine;
        for (const segment of this.segments) {
            segment.lines = segment.lines.map((_, i) => this.document.lineAt(line + i).text);
            line += segment.lines.length;
        }
        this.proposals.changed();
        this.decorate();
        const rediffed = diffLines(rejectedLines(this.segments), acceptedLines(this.segments));
        if (this.text(layoutLines(rediffed)) !== this.text(layoutLines(this.segments)))
            void this.enqueue(async () => {
                await this.layOut(
                    diffLines(rejectedLines(this.segments), acceptedLines(this.segments)),
                );
                this.proposals.changed();
                this.decorate();
            });
    }

    /** A save writes the document without the proposal, which ends it. */
    onWillSave(event: vscode.TextDocumentWillSaveEvent): void {
        if (this.ended) return;
        this.owner.stop();
        const edit = vscode.TextEdit.replace(this.range(), this.text(rejectedLines(this.segments)));
        this.finish();
        event.waitUntil(Promise.resolve([edit]));
        void vscode.window.showInformationMessage(
            `Saving ${this.fileName} took OLMo's proposal out (a proposal is never saved): run Rewrite Selection again to see it.`,
        );
    }

    /** A document closed without saving has lost the proposal with its other changes. */
    onClose(): void {
        this.owner.stop();
        this.finish();
    }
}

function registerCommands(proposals: InlineProposals): vscode.Disposable[] {
    const withProposal =
        (run: (proposal: InlineProposal, ...args: unknown[]) => unknown) =>
        (uri?: unknown, ...args: unknown[]) => {
            const proposal = proposals.find(uri instanceof vscode.Uri ? uri : undefined);
            if (!proposal)
                return void vscode.window.showInformationMessage(
                    "There is no OLMo proposal in this editor.",
                );
            return run(proposal, ...args);
        };
    const hunkIndex = (proposal: InlineProposal, index: unknown) =>
        typeof index === "number" ? index : proposal.hunkAtCursor();
    const move = (proposal: InlineProposal, step: 1 | -1) => {
        const editor = vscode.window.activeTextEditor;
        const lines = proposal.hunkLines();
        if (!editor || lines.length === 0) return;
        const cursor = editor.selection.active.line;
        const target =
            step === 1
                ? (lines.find((line) => line > cursor) ?? lines[0])
                : ([...lines].reverse().find((line) => line < cursor) ?? lines[lines.length - 1]);
        const position = new vscode.Position(target, 0);
        editor.selection = new vscode.Selection(position, position);
        editor.revealRange(new vscode.Range(position, position));
    };
    const commands: Record<string, (proposal: InlineProposal, ...args: unknown[]) => unknown> = {
        "olmo.proposal.acceptAll": (proposal) => proposal.acceptAll(),
        "olmo.proposal.rejectAll": (proposal) => proposal.rejectAll(),
        "olmo.proposal.acceptHunk": (proposal, index) =>
            proposal.resolveHunk(hunkIndex(proposal, index), true),
        "olmo.proposal.rejectHunk": (proposal, index) =>
            proposal.resolveHunk(hunkIndex(proposal, index), false),
        "olmo.proposal.nextHunk": (proposal) => move(proposal, 1),
        "olmo.proposal.previousHunk": (proposal) => move(proposal, -1),
        "olmo.proposal.openAsDiff": (proposal) => proposal.openAsDiff(),
    };
    return Object.entries(commands).map(([id, run]) =>
        vscode.commands.registerCommand(id, withProposal(run)),
    );
}
