// The pure part of an inline rewrite proposal: the original lines and the proposed lines laid out
// together in the document as segments (unchanged, removed, added, and while it streams the
// original lines the proposal has not reached yet), the hunks a CodeLens accepts or rejects, and
// where a user's edit falls. No `vscode` import, so unit tests run it directly.

export type SegmentKind = "same" | "removed" | "added" | "pending";

export interface Segment {
    kind: SegmentKind;
    lines: string[];
}

/** Above this many line pairs the diff is one hunk (all removed, all added) instead of an LCS. */
const MAX_DIFF_CELLS = 4_000_000;

/**
 * The line diff of `original` against `proposed`: unchanged lines, and each change as its removed
 * lines followed by its added lines.
 */
/**
 * How many items `a` and `b` share at their start, and then at their end (never overlapping the
 * start): lines of two texts, or characters of two strings.
 */
export function commonEnds<T>(
    a: ArrayLike<T>,
    b: ArrayLike<T>,
): { prefix: number; suffix: number } {
    let prefix = 0;
    while (prefix < a.length && prefix < b.length && a[prefix] === b[prefix]) prefix++;
    let suffix = 0;
    while (
        suffix < a.length - prefix &&
        suffix < b.length - prefix &&
        a[a.length - 1 - suffix] === b[b.length - 1 - suffix]
    )
        suffix++;
    return { prefix, suffix };
}

export function diffLines(original: readonly string[], proposed: readonly string[]): Segment[] {
    const { prefix, suffix } = commonEnds(original, proposed);
    const a = original.slice(prefix, original.length - suffix);
    const b = proposed.slice(prefix, proposed.length - suffix);

    const ops: Array<[SegmentKind, string]> = original.slice(0, prefix).map((l) => ["same", l]);
    if (a.length * b.length > MAX_DIFF_CELLS) {
        ops.push(...a.map((l): [SegmentKind, string] => ["removed", l]));
        ops.push(...b.map((l): [SegmentKind, string] => ["added", l]));
    } else {
        // lcs[i][j]: the longest common subsequence of a[i..] and b[j..].
        const lcs = Array.from({ length: a.length + 1 }, () => new Uint32Array(b.length + 1));
        for (let i = a.length - 1; i >= 0; i--)
            for (let j = b.length - 1; j >= 0; j--)
                lcs[i][j] =
                    a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
        let i = 0;
        let j = 0;
        while (i < a.length || j < b.length) {
            if (i < a.length && j < b.length && a[i] === b[j]) {
                ops.push(["same", a[i]]);
                i++;
                j++;
            } else if (j === b.length || (i < a.length && lcs[i + 1][j] >= lcs[i][j + 1])) {
                ops.push(["removed", a[i++]]);
            } else {
                ops.push(["added", b[j++]]);
            }
        }
    }
    ops.push(
        ...original.slice(original.length - suffix).map((l): [SegmentKind, string] => ["same", l]),
    );
    return normalize(groupOps(ops));
}

function groupOps(ops: ReadonlyArray<[SegmentKind, string]>): Segment[] {
    const segments: Segment[] = [];
    for (const [kind, line] of ops) {
        const last = segments.at(-1);
        if (last?.kind === kind) last.lines.push(line);
        else segments.push({ kind, lines: [line] });
    }
    return segments;
}

/**
 * Segments in canonical order: empty ones dropped, neighbours of one kind merged, and in each run
 * of changes the removed lines before the added ones.
 */
export function normalize(segments: readonly Segment[]): Segment[] {
    const out: Segment[] = [];
    let removed: string[] = [];
    let added: string[] = [];
    const flush = () => {
        if (removed.length) out.push({ kind: "removed", lines: removed });
        if (added.length) out.push({ kind: "added", lines: added });
        removed = [];
        added = [];
    };
    for (const segment of segments) {
        if (segment.kind === "removed") removed = [...removed, ...segment.lines];
        else if (segment.kind === "added") added = [...added, ...segment.lines];
        else if (segment.lines.length) {
            flush();
            const last = out.at(-1);
            if (last?.kind === segment.kind) last.lines = [...last.lines, ...segment.lines];
            else out.push({ kind: segment.kind, lines: [...segment.lines] });
        }
    }
    flush();
    return out;
}

/**
 * The layout of a proposal: while it streams, the original lines after the last unchanged one are
 * not reached yet, so they follow the proposed lines as pending instead of showing as removed.
 */
export function proposalSegments(
    original: readonly string[],
    proposed: readonly string[],
    streaming: boolean,
): Segment[] {
    const segments = diffLines(original, proposed);
    if (!streaming) return segments;
    let lastSame = segments.length - 1;
    while (lastSame >= 0 && segments[lastSame].kind !== "same") lastSame--;
    const tail = segments.slice(lastSame + 1);
    const removed = tail.filter((s) => s.kind === "removed").flatMap((s) => s.lines);
    const added = tail.filter((s) => s.kind === "added").flatMap((s) => s.lines);
    return [
        ...segments.slice(0, lastSame + 1),
        ...(added.length ? [{ kind: "added" as const, lines: added }] : []),
        ...(removed.length ? [{ kind: "pending" as const, lines: removed }] : []),
    ];
}

/** Every line as laid out in the document. */
export function layoutLines(segments: readonly Segment[]): string[] {
    return segments.flatMap((s) => s.lines);
}

/** The lines if every change is accepted (pending lines stay: the proposal never reached them). */
export function acceptedLines(segments: readonly Segment[]): string[] {
    return segments.filter((s) => s.kind !== "removed").flatMap((s) => s.lines);
}

/** The lines if every change is rejected: the original. */
export function rejectedLines(segments: readonly Segment[]): string[] {
    return segments.filter((s) => s.kind !== "added").flatMap((s) => s.lines);
}

/** One change: its removed and added lines, by line offset from the proposal's first line. */
export interface Hunk {
    /** The offset of its first line (removed, else added). */
    start: number;
    removed: number;
    added: number;
}

export function hunks(segments: readonly Segment[]): Hunk[] {
    const found: Hunk[] = [];
    let line = 0;
    let previous: SegmentKind | undefined;
    for (const segment of segments) {
        const count = segment.lines.length;
        if (segment.kind === "removed") found.push({ start: line, removed: count, added: 0 });
        else if (segment.kind === "added") {
            if (previous === "removed") found[found.length - 1].added = count;
            else found.push({ start: line, removed: 0, added: count });
        }
        previous = segment.kind;
        line += count;
    }
    return found;
}

/** The segments after accepting (`true`) or rejecting the `index`th hunk. */
export function resolveHunk(
    segments: readonly Segment[],
    index: number,
    accept: boolean,
): Segment[] {
    let seen = -1;
    const out: Segment[] = [];
    for (let i = 0; i < segments.length; i++) {
        const segment = segments[i];
        const startsHunk =
            (segment.kind === "removed" || segment.kind === "added") &&
            !(segment.kind === "added" && segments[i - 1]?.kind === "removed");
        if (startsHunk) seen++;
        const inHunk = seen === index && (segment.kind === "removed" || segment.kind === "added");
        if (!inHunk) out.push(segment);
        else if ((segment.kind === "added") === accept)
            out.push({ kind: "same", lines: segment.lines });
    }
    return normalize(out);
}

/** Where an edit of the document falls relative to a proposal laid out from `start`, `lineCount` lines long. */
export type EditPlace =
    | { place: "above"; lineDelta: number }
    | { place: "below" }
    | { place: "inside"; segment: number; lineDelta: number }
    | { place: "across"; lineDelta: number };

export interface LineEdit {
    startLine: number;
    startCharacter: number;
    endLine: number;
    endCharacter: number;
    text: string;
}

export function placeEdit(segments: readonly Segment[], start: number, edit: LineEdit): EditPlace {
    const lineDelta = (edit.text.match(/\n/g)?.length ?? 0) - (edit.endLine - edit.startLine);
    const lineCount = segments.reduce((n, s) => n + s.lines.length, 0);
    const endsAtLineStart = edit.endCharacter === 0 && edit.endLine > edit.startLine;
    // Ending at the proposal's first character counts as above when it deletes up to it or
    // inserts whole lines before it; typing there is inside.
    if (
        edit.endLine < start ||
        (edit.endLine === start &&
            edit.endCharacter === 0 &&
            (edit.startLine < start || edit.text.endsWith("\n")))
    )
        return { place: "above", lineDelta };
    if (edit.startLine >= start + lineCount) return { place: "below" };
    let first = start;
    for (let i = 0; i < segments.length; i++) {
        const end = first + segments[i].lines.length;
        const startsIn = edit.startLine >= first && edit.startLine < end;
        const endsIn = edit.endLine < end || (edit.endLine === end && endsAtLineStart);
        if (startsIn)
            return endsIn
                ? { place: "inside", segment: i, lineDelta }
                : { place: "across", lineDelta };
        first = end;
    }
    return { place: "across", lineDelta };
}
