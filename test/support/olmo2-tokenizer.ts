// The OLMo-2 ("dolma2") vocabulary, rebuilt from js-tiktoken's cl100k_base ranks, in the form a GGUF
// `gpt2` tokenizer needs: GPT-2 byte-level token strings, BPE merges, token types.
//
// Merges: for each multi-byte token, in rank order, the one pair that tiktoken's own BPE merges last
// when it encodes that token's bytes alone. Why only that pair: tiktoken merges, at each step, the
// adjacent pair whose concatenation has the lowest rank; within the span of any token it produces,
// the merges are exactly those of encoding the span alone, so a token always forms from the same
// final pair. With one merge per token ranked like the token, llama.cpp's BPE (lowest merge rank
// first, leftmost on ties) makes the same choices as tiktoken (lowest token rank, leftmost on ties),
// including ties. Every cl100k token is reachable this way, so tiktoken's whole-piece shortcut gives
// no different answer either. (HF's conversion emits every split whose halves are tokens: 2.3 times
// as many merges, and a different tie order in rare cases.)

import cl100kBase from "js-tiktoken/ranks/cl100k_base";

export const OLMO2_VOCAB_SIZE = 100352;
/** Ordinary (BPE) tokens: ranks 0..100255. */
export const CL100K_TOKEN_COUNT = 100256;

/** Named special tokens of dolma2 and their ids. */
export const OLMO2_SPECIAL_TOKENS: Readonly<Record<string, number>> = {
    "<|extra_id_0|>": 100256,
    "<|endoftext|>": 100257,
    "<|fim_prefix|>": 100258,
    "<|fim_middle|>": 100259,
    "<|fim_suffix|>": 100260,
    "<|im_start|>": 100264,
    "<|im_end|>": 100265,
    "<|endofprompt|>": 100276,
    "<|pad|>": 100277,
};
export const OLMO2_BOS_ID = 100257;
export const OLMO2_EOS_ID = 100257;
export const OLMO2_PAD_ID = 100277;

/** llama.cpp `llama_token_type` values as stored in `tokenizer.ggml.token_type`. */
export const TokenType = {
    NORMAL: 1,
    UNKNOWN: 2,
    CONTROL: 3,
    USER_DEFINED: 4,
    UNUSED: 5,
    BYTE: 6,
} as const;

export interface Olmo2Vocab {
    /** Token strings by id: byte-level GPT-2 strings for ordinary tokens, plain text for specials. */
    readonly tokens: readonly string[];
    readonly tokenTypes: Int32Array;
    /** "left right" byte-level strings, highest priority first. */
    readonly merges: readonly string[];
    /** Raw bytes of ordinary tokens (ids below CL100K_TOKEN_COUNT); null for special ids. */
    readonly tokenBytes: ReadonlyArray<Uint8Array | null>;
    /** Every special id (named ones and placeholders) to its text. */
    readonly specialTokens: ReadonlyMap<number, string>;
}

/** GPT-2's byte -> printable unicode character table (bytes_to_unicode). */
export function gpt2ByteToUnicode(): string[] {
    const table: string[] = new Array<string>(256);
    let extra = 0;
    for (let b = 0; b < 256; b++) {
        const printable =
            (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
        table[b] = String.fromCharCode(printable ? b : 256 + extra++);
    }
    return table;
}

/** Names for the ids between and after the named specials: distinct, never produced from plain text. */
function placeholderName(id: number): string {
    return id >= 100278 ? `<|pad_${id}|>` : `<|reserved_${id}|>`;
}

/** The cl100k_base token bytes by rank. The js-tiktoken file is "<name> <first rank> <base64 token> ...". */
export function loadCl100kTokenBytes(): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (const line of cl100kBase.bpe_ranks.split("\n")) {
        if (line.length === 0) continue;
        const [, offsetText, ...encoded] = line.split(" ");
        const offset = Number.parseInt(offsetText!, 10);
        for (const [i, b64] of encoded.entries())
            out[offset + i] = new Uint8Array(Buffer.from(b64, "base64"));
    }
    if (out.length !== CL100K_TOKEN_COUNT || out.some((b) => b == null))
        throw new Error(`unexpected cl100k_base ranks: ${out.length} tokens`);
    return out;
}

let cached: Olmo2Vocab | undefined;

/** Builds (once per process) the full 100352-entry OLMo-2 vocabulary. */
export function getOlmo2Vocab(): Olmo2Vocab {
    cached ??= buildOlmo2Vocab();
    return cached;
}

function buildOlmo2Vocab(): Olmo2Vocab {
    const tokenBytes = loadCl100kTokenBytes();
    const byteChar = gpt2ByteToUnicode();

    // Work on latin1 strings (one char per byte) for fast map keys.
    const latin1 = tokenBytes.map((b) => Buffer.from(b).toString("latin1"));
    const rankOf = new Map<string, number>();
    for (const [rank, s] of latin1.entries()) rankOf.set(s, rank);

    const toByteLevel = (s: string): string => {
        let out = "";
        for (let i = 0; i < s.length; i++) out += byteChar[s.charCodeAt(i)];
        return out;
    };

    const merges: string[] = [];
    for (const s of latin1) {
        if (s.length < 2) continue;
        const [left, right] = lastMerge(s, rankOf);
        merges.push(`${toByteLevel(left)} ${toByteLevel(right)}`);
    }

    const tokens: string[] = latin1.map(toByteLevel);
    const tokenTypes = new Int32Array(OLMO2_VOCAB_SIZE).fill(TokenType.NORMAL);
    const specialTokens = new Map<number, string>();
    const named = new Map(Object.entries(OLMO2_SPECIAL_TOKENS).map(([text, id]) => [id, text]));
    for (let id = CL100K_TOKEN_COUNT; id < OLMO2_VOCAB_SIZE; id++) {
        const text = named.get(id) ?? placeholderName(id);
        tokens[id] = text;
        tokenTypes[id] = TokenType.CONTROL;
        specialTokens.set(id, text);
    }
    if (new Set(tokens).size !== tokens.length)
        throw new Error("duplicate token strings in the generated vocabulary");

    const allBytes: Array<Uint8Array | null> = [...tokenBytes];
    for (let id = CL100K_TOKEN_COUNT; id < OLMO2_VOCAB_SIZE; id++) allBytes.push(null);

    return { tokens, tokenTypes, merges, tokenBytes: allBytes, specialTokens };
}

/**
 * Runs tiktoken's BPE on one token's bytes and returns the last pair it merges, which is the token
 * itself (every cl100k token is reachable; throw if one is not).
 */
function lastMerge(s: string, rankOf: ReadonlyMap<string, number>): [string, string] {
    let parts: string[] = Array.from(s, (c) => c);
    while (parts.length > 2) {
        let best = -1;
        let bestRank = Infinity;
        for (let i = 0; i < parts.length - 1; i++) {
            const rank = rankOf.get(parts[i]! + parts[i + 1]!);
            if (rank !== undefined && rank < bestRank) {
                bestRank = rank;
                best = i;
            }
        }
        if (best < 0) break;
        parts = [
            ...parts.slice(0, best),
            parts[best]! + parts[best + 1]!,
            ...parts.slice(best + 2),
        ];
    }
    if (parts.length !== 2 || !rankOf.has(parts[0]!) || !rankOf.has(parts[1]!))
        throw new Error(`cl100k token ${JSON.stringify(s)} is not reachable by BPE`);
    return [parts[0]!, parts[1]!];
}

/**
 * Whether a token's bytes are printable text on their own: valid UTF-8 without control, format,
 * private-use or unassigned characters, line/paragraph separators or U+FFFD (tab and newline are fine).
 */
export function isPrintableTokenText(bytes: Uint8Array): boolean {
    let text: string;
    try {
        text = fatalDecoder.decode(bytes);
    } catch {
        return false;
    }
    return !unprintable.test(text);
}
const fatalDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
// Cc except \t and \n; Cf (zero-width, BOM, bidi controls), Co, Cn, Zl/Zp separators, U+FFFD.
const unprintable =
    /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\p{Cf}\p{Co}\p{Cn}\p{Zl}\p{Zp}\ufffd]/u;
