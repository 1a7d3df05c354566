// The rules of @-attachments that need no VS Code: which suggestions match what was typed, which
// bytes are text, how large a file may be, the block each attachment puts into the prompt, the
// exclude glob for the file search and the URIs of a drop. Kept pure so they are unit-tested.
import type { AttachSuggestion } from "../media/protocol.js";
import { fenced } from "../sidecar/prompts.js";

/** Larger files are refused before reading: the same limit as Explain and Rewrite. */
export const MAX_ATTACHMENT_BYTES = 1_000_000;
/** The @ list shows at most this many entries. */
export const MAX_SUGGESTIONS = 50;

/** How well `query` matches a suggestion: lower is better, undefined is no match. */
function matchRank(suggestion: AttachSuggestion, query: string): number | undefined {
    const label = suggestion.label.toLowerCase();
    const detail = suggestion.detail.toLowerCase();
    if (label.startsWith(query)) return 0;
    if (label.includes(query)) return 1;
    if (detail.includes(query)) return 2;
    // The letters in order, as in VS Code's Quick Open: "cvw" finds "chatView.ts".
    let at = 0;
    for (const char of query) {
        at = detail.indexOf(char, at) + 1;
        if (at === 0) return undefined;
    }
    return 3;
}

/**
 * The suggestions that match `query` (case-insensitive), best first: the name starting with it,
 * containing it, the path containing it, then its letters in order. Equal matches keep their
 * order (selection, problems, open editors, then workspace files). An empty query keeps them all.
 */
export function filterSuggestions(
    suggestions: readonly AttachSuggestion[],
    query: string,
    limit = MAX_SUGGESTIONS,
): AttachSuggestion[] {
    const wanted = query.trim().toLowerCase();
    if (wanted === "") return suggestions.slice(0, limit);
    return suggestions
        .map((suggestion, order) => ({ suggestion, order, rank: matchRank(suggestion, wanted) }))
        .filter((m): m is typeof m & { rank: number } => m.rank !== undefined)
        .sort((a, b) => a.rank - b.rank || a.order - b.order)
        .slice(0, limit)
        .map((m) => m.suggestion);
}

/**
 * The file's text, or why it is not text: a NUL byte, or bytes that are not UTF-8 (a UTF-8 byte
 * order mark is dropped, as editors do).
 */
export function decodeText(bytes: Uint8Array): { text: string } | { binary: string } {
    if (bytes.includes(0)) return { binary: "it contains NUL bytes" };
    try {
        return { text: new TextDecoder("utf-8", { fatal: true }).decode(bytes) };
    } catch {
        return { binary: "it is not UTF-8 text" };
    }
}

/** "1.2 MB", "340 KB", "12 bytes". */
export function formatBytes(bytes: number): string {
    if (bytes >= 1_000_000) return `${(bytes / 1_000_000).toFixed(1)} MB`;
    if (bytes >= 1_000) return `${Math.round(bytes / 1_000)} KB`;
    return `${bytes} bytes`;
}

export function tooLargeMessage(name: string, bytes: number): string {
    return `${name} is ${formatBytes(bytes)}: files over ${formatBytes(MAX_ATTACHMENT_BYTES)} are not attached.`;
}

export function binaryMessage(name: string, reason: string): string {
    return `${name} looks like a binary file (${reason}): only text files can be attached.`;
}

/** The refusal of an attachment larger than the prompt can ever hold, or undefined when it fits. */
export function neverFitsMessage(label: string, tokens: number, room: number): string | undefined {
    if (tokens <= room) return undefined;
    return (
        `${label} is ${tokens.toLocaleString("en-US")} tokens: more than the ` +
        `${room.toLocaleString("en-US")} the context has room for (after reserving room for the answer). ` +
        `Attach a selection of it instead, or raise olmo.contextSize.`
    );
}

/** The prompt block of a file or a selection of one; `lines` is "12-30" for a part of it. */
export function fileBlock(path: string, text: string, language: string, lines?: string): string {
    const where = lines ? `\`${path}\` (lines ${lines})` : `\`${path}\``;
    return `From ${where}:\n\n${fenced(text, language)}`;
}

export interface Problem {
    /** 1-based. */
    line: number;
    severity: "error" | "warning" | "info" | "hint";
    message: string;
    source?: string;
}

/** The prompt block of a file's problems, one line each. */
export function problemsBlock(path: string, problems: readonly Problem[]): string {
    const lines = problems.map(
        (p) =>
            `- line ${p.line}, ${p.severity}: ${p.message.replace(/\s+/g, " ").trim()}` +
            (p.source ? ` (${p.source})` : ""),
    );
    return `Problems VS Code reports in \`${path}\`:\n\n${lines.join("\n")}`;
}

/** The language name for a file's fence, from its extension ("ts" for "a/b.ts"), or "". */
export function fenceLanguage(path: string): string {
    const name = path.split("/").pop() ?? "";
    const dot = name.lastIndexOf(".");
    return dot > 0 ? name.slice(dot + 1).toLowerCase() : "";
}

/**
 * One glob of every pattern `files.exclude` and `search.exclude` switch on, for findFiles: an
 * exclude given to findFiles replaces its default (files.exclude alone). Patterns with a `when`
 * clause (an object value) are left out: findFiles cannot evaluate them.
 */
export function excludeGlob(
    ...settings: Array<Record<string, unknown> | undefined>
): string | undefined {
    const patterns = [
        ...new Set(
            settings.flatMap((s) =>
                Object.entries(s ?? {})
                    .filter(([, on]) => on === true)
                    .map(([pattern]) => pattern),
            ),
        ),
    ];
    return patterns.length === 0 ? undefined : `{${patterns.join(",")}}`;
}

/** The URIs of a `text/uri-list` drop (RFC 2483: one per line, `#` lines are comments). */
export function parseUriList(uriList: string): string[] {
    return uriList
        .split(/\r?\n/)
        .map((line) => line.trim())
        .filter((line) => line !== "" && !line.startsWith("#"));
}
