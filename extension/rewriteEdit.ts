// The pure part of "Rewrite Selection": fitting the model's code into the original range, deciding
// whether a proposal may be accepted, and the instruction list. No `vscode` import, so unit tests
// run it directly.

/** What the rewrite replaces, captured when it starts. */
export interface OriginalCode {
    /** The selected text, exactly as in the document. */
    text: string;
    /**
     * The whitespace at the start of the selection's first line that lies outside the selection,
     * e.g. the indentation when the selection starts at the first character of code.
     */
    linePrefix: string;
    /** The document's line ending. */
    eol: "\n" | "\r\n";
}

/**
 * The text that replaces the original range: the model's code with the selection's common
 * indentation re-applied when the model dropped it, the original's trailing newlines (no more, no
 * fewer), and the document's line endings. A blank proposal gives "".
 */
export function fitReplacement(proposal: string, original: OriginalCode): string {
    const code = proposal.replace(/\r\n/g, "\n").replace(/\n+$/, "");
    if (code.trim() === "") return "";
    const originalText = original.text.replace(/\r\n/g, "\n");
    const trailingNewlines = /\n*$/.exec(originalText)?.[0] ?? "";

    // The selection's indentation, judged on whole lines: its first line with the prefix it left out.
    const baseIndent = commonIndent((original.linePrefix + originalText).split("\n"));
    const lines = code.split("\n");
    // After a prefix the first line goes in where the selection started, with the selection's own
    // leading whitespace (none when it started at code); only the lines below it are indented.
    const firstIndented = original.linePrefix === "" ? 0 : 1;
    if (firstIndented === 1) lines[0] = leadingWhitespace(originalText) + lines[0].trimStart();
    const proposedIndent = commonIndent(lines.slice(firstIndented));
    if (!proposedIndent.startsWith(baseIndent)) {
        for (let i = firstIndented; i < lines.length; i++) {
            if (!isBlank(lines[i])) lines[i] = baseIndent + lines[i].slice(proposedIndent.length);
        }
    }

    return (lines.join("\n") + trailingNewlines).replace(/\n/g, original.eol);
}

/** The longest run of leading spaces and tabs that every non-blank line starts with. */
export function commonIndent(lines: readonly string[]): string {
    let common: string | undefined;
    for (const line of lines) {
        if (isBlank(line)) continue;
        const indent = leadingWhitespace(line);
        if (common === undefined) {
            common = indent;
            continue;
        }
        let same = 0;
        while (same < common.length && same < indent.length && common[same] === indent[same])
            same++;
        common = common.slice(0, same);
    }
    return common ?? "";
}

export function leadingWhitespace(text: string): string {
    return /^[ \t]*/.exec(text)?.[0] ?? "";
}

function isBlank(line: string): boolean {
    return line.trim() === "";
}

export type ProposalState = "streaming" | "done";

/** Why Accept must not apply the proposal, or undefined when it may. */
export function acceptRefusal(check: {
    state: ProposalState;
    replacement: string;
    originalText: string;
    fileName: string;
    versionAtStart: number;
    /** The document's version now; undefined when it is no longer open. */
    versionNow: number | undefined;
}): string | undefined {
    // A changed document rules the proposal out for good, so it is said first.
    if (check.versionNow === undefined)
        return `${check.fileName} was closed after the rewrite started. Run Rewrite Selection again.`;
    if (check.versionNow !== check.versionAtStart) {
        return `${check.fileName} changed after the rewrite started, so the selected code may no longer be where it was. Run Rewrite Selection again.`;
    }
    if (check.state === "streaming")
        return "The proposal is still being written: wait for it to finish, or Reject it.";
    return nothingToAccept(check.replacement, check.originalText);
}

/** Why a finished proposal offers nothing to accept (no code, or no change), or undefined. */
export function nothingToAccept(replacement: string, originalText: string): string | undefined {
    if (replacement === "") return "OLMo proposed no code, so there is nothing to accept.";
    if (replacement === originalText)
        return "OLMo proposed the same code as the original: there is nothing to change.";
    return undefined;
}

export interface RewritePreset {
    label: string;
    instruction: string;
}

export const REWRITE_PRESETS: readonly RewritePreset[] = [
    { label: "Simplify", instruction: "Simplify this code without changing what it does." },
    {
        label: "Add comments",
        instruction:
            "Add short comments that explain why the code does what it does. Do not change the code itself.",
    },
    {
        label: "Fix bugs",
        instruction: "Fix any bugs in this code. Keep everything that works as it is.",
    },
    {
        label: "Add types",
        instruction: "Add precise type annotations. Do not change the behaviour.",
    },
    {
        label: "Make it faster",
        instruction: "Make this code faster without changing what it returns or its side effects.",
    },
];

export const RECENT_INSTRUCTIONS_KEPT = 5;

/** The recent custom instructions after using `instruction`: most recent first, no duplicates, presets left out. */
export function rememberInstruction(recent: readonly string[], instruction: string): string[] {
    const text = instruction.trim();
    if (
        text === "" ||
        REWRITE_PRESETS.some((preset) => preset.label === text || preset.instruction === text)
    )
        return [...recent];
    return [text, ...recent.filter((earlier) => earlier !== text)].slice(
        0,
        RECENT_INSTRUCTIONS_KEPT,
    );
}
