// Getting the code out of a rewrite answer. The prompt asks for one fenced block and nothing else;
// models still add a sentence before or after, or forget the fence. The rule: the code is the
// content of the longest fenced block (an unclosed fence runs to the end, as while streaming);
// without any fence, a leading "Here is..." line and trailing prose paragraphs are dropped.
// Nothing else is altered: no trimming of the code's own whitespace.

const OPENING_FENCE = /^( {0,3})(`{3,}|~{3,})[^\n`]*$/;
const LEAD_IN =
    /^(here('s| is| are)|sure|certainly|of course|okay|ok|below|the (rewritten|updated|modified|refactored|new) code)\b.*:\s*$/i;
const PROSE_PARAGRAPH =
    /^(this|these|the (above|code|changes|function)|i('ve| have)?\b|note|explanation|changes|in this|with this|now)\b/i;

interface Block {
    content: string;
    closed: boolean;
}

function fencedBlocks(text: string): Block[] {
    const lines = text.split("\n");
    const blocks: Block[] = [];
    for (let i = 0; i < lines.length; i++) {
        const open = OPENING_FENCE.exec(lines[i]);
        if (!open) continue;
        const fence = open[2];
        const body: string[] = [];
        let closed = false;
        let j = i + 1;
        for (; j < lines.length; j++) {
            const trimmed = lines[j].trim();
            if (
                trimmed.startsWith(fence[0].repeat(fence.length)) &&
                /^(`+|~+)$/.test(trimmed) &&
                trimmed.length >= fence.length
            ) {
                closed = true;
                break;
            }
            body.push(lines[j]);
        }
        blocks.push({ content: body.join("\n"), closed });
        i = j;
    }
    return blocks;
}

/** The code in a (possibly partial) rewrite answer. */
export function extractRewrittenCode(answer: string): string {
    const text = answer.replace(/\r\n/g, "\n");
    const blocks = fencedBlocks(text);
    if (blocks.length > 0) {
        const closed = blocks.filter((b) => b.closed);
        const candidates = closed.length > 0 ? closed : blocks;
        return candidates.reduce((longest, b) =>
            b.content.length > longest.content.length ? b : longest,
        ).content;
    }
    return withoutProse(text);
}

function withoutProse(text: string): string {
    const paragraphs = text.split(/\n{2,}/);
    // Only drop prose when something code-like remains.
    while (paragraphs.length > 1 && PROSE_PARAGRAPH.test(paragraphs[paragraphs.length - 1].trim()))
        paragraphs.pop();
    let code = paragraphs.join("\n\n");
    const firstBreak = code.indexOf("\n");
    if (firstBreak > 0 && LEAD_IN.test(code.slice(0, firstBreak).trim()))
        code = code.slice(firstBreak + 1).replace(/^\n+/, "");
    return code.replace(/\n+$/, "");
}

/**
 * Turns the raw answer stream into a code stream: each push returns the code to append, or
 * `replace` with the whole code when the extraction changed earlier text (e.g. a fence appeared).
 */
export class RewriteCodeStream {
    private raw = "";
    private code = "";

    push(delta: string): { text: string; replace?: true } | undefined {
        this.raw += delta;
        // Hold back a trailing partial line only while it could still become a fence.
        const lineStart = this.raw.lastIndexOf("\n") + 1;
        const settled = /^ {0,3}(`*|~*)$/.test(this.raw.slice(lineStart))
            ? this.raw.slice(0, lineStart)
            : this.raw;
        const next = extractRewrittenCode(settled);
        if (next === this.code) return undefined;
        const previous = this.code;
        this.code = next;
        return next.startsWith(previous)
            ? { text: next.slice(previous.length) }
            : { text: next, replace: true };
    }

    /** The final code, from the whole answer. */
    finish(): { code: string; delta?: { text: string; replace?: true } } {
        const code = extractRewrittenCode(this.raw);
        const previous = this.code;
        this.code = code;
        if (code === previous) return { code };
        return {
            code,
            delta: code.startsWith(previous)
                ? { text: code.slice(previous.length) }
                : { text: code, replace: true },
        };
    }
}
