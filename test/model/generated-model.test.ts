// The generated random-weight OLMo-2 GGUF: deterministic bytes, a header node-llama-cpp reads as
// olmo2, the real OLMo-2 tokenizer (ids equal to tiktoken's cl100k_base), printable output of full
// length, and EOS on demand after the trigger token.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Tiktoken } from "js-tiktoken/lite";
import cl100kBase from "js-tiktoken/ranks/cl100k_base";
import {
    getLlama,
    readGgufFileInfo,
    LlamaCompletion,
    LlamaLogLevel,
    TokenBias,
    type Llama,
    type LlamaContext,
    type LlamaModel,
    type Token,
} from "node-llama-cpp";
import {
    GgmlType,
    type GgmlTypeName,
    dequantize,
    encodeTensor,
    f16ToF32,
    f32ToF16,
    ggmlTensorBytes,
} from "../support/gguf-writer.js";
import {
    OLMO2_CHAT_TEMPLATE,
    TRIGGER_TEXT,
    TRIGGER_TOKEN_ID,
    bannedTokenIds,
    olmo2Tensors,
    writeOlmo2Model,
} from "../support/olmo2-model.js";
import {
    OLMO2_EOS_ID,
    OLMO2_SPECIAL_TOKENS,
    OLMO2_VOCAB_SIZE,
} from "../support/olmo2-tokenizer.js";
import { TINY_SHAPE, ensureTestModel } from "../support/models.js";

const cl100k = new Tiktoken(cl100kBase);
/** tiktoken with every special token treated as plain text. */
const tiktokenPlain = (text: string): number[] => cl100k.encode(text, [], []);

// Printable: no control characters other than tab/newline, no U+FFFD, no format/private/unassigned.
const unprintable =
    /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\p{Cf}\p{Co}\p{Cn}\p{Zl}\p{Zp}\ufffd]/u;

// Not in the corpus: U+0085 (NEL) and U+FEFF (BOM). js-tiktoken's JS-regex `\s` counts BOM and not
// NEL as whitespace; Python tiktoken (Rust regex) and llama.cpp do the opposite, so there js-tiktoken
// is the odd one out. A 25k-string fuzz otherwise found no difference.
const corpus: Record<string, string> = {
    english:
        "The quick brown fox jumps over the lazy dog. It's a truth universally acknowledged, isn't it?",
    contractions:
        "I'm sure you're right; we'll see, they'd say. DON'T SHOUT, I'M here. You'Re 'quoted' O'Neil's",
    code: 'def add(a, b):\n    """Sum."""\n    return a + b  # trailing  \n\nclass Foo:\n\tdef bar(self) -> None:\n\t\tpass\n',
    ts: "export function f<T>(xs: readonly T[]): Map<string, T> {\n  const m = new Map();\n  for (const x of xs) m.set(`${x}`, x);\n  return m;\n}\n",
    json: '{"key": [1, 2.5, -3e10, true, null], "nested": {"a": "b\\n"}}',
    numbers: "0 1 12 123 1234 12345 123456789 3.14159 -42 1,000,000 2024-11-26 0x1F 1e-6",
    whitespace: "a  b   c    d\t\te\n\n\nf \n \n  g      \r\n\r\nh   ",
    onlySpaces: "        ",
    unicode: "naïve café résumé Grüße Ελληνικά русский язык עברית العربية हिन्दी",
    cjk: "你好，世界！日本語のテキスト。한국어 문장입니다.",
    emoji: "🚀 rocket 👩‍💻 coder 🇫🇷 flag 👍🏽 thumbs ✨✨✨",
    symbols: "→ ← ≠ ≤ ∞ © ® ™ § ¶ • … “quotes” ‘single’ — – ~tilde~ `backticks` ***bold***",
    markdown:
        "# Title\n\n- item one\n- item two\n\n```python\nprint('hi')\n```\n\n| a | b |\n|---|---|\n",
    mixed: "URL: https://example.com/path?q=1&r=2#frag, email a.b@c.de, path C:\\Users\\x\\file.txt",
    specialLookalikes:
        "<|user|>\nhi\n<|assistant|>\n<|system|> <|im_start|> <|endofprompt|> <|pad|> <|extra_id_0|>",
    repeated:
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa ............................ ----------------",
    longWord: "Pneumonoultramicroscopicsilicovolcanoconiosis antidisestablishmentarianism",
    empty: "",
};

async function sha256File(path: string): Promise<string> {
    const hash = createHash("sha256");
    for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
    return hash.digest("hex");
}

/** A metadata value as node-llama-cpp parses it (its own type for this is not exported). */
type MetadataValue = string | number | bigint | boolean | MetadataValue[];

/** Reads a dotted key from node-llama-cpp's nested metadata object. */
function metadataValue(metadata: unknown, key: string): MetadataValue | undefined {
    let node: unknown = metadata;
    for (const part of key.split(".")) {
        if (node == null || typeof node !== "object" || Array.isArray(node)) return undefined;
        node = (node as Record<string, unknown>)[part];
    }
    return node as MetadataValue | undefined;
}

describe("model: generated OLMo-2 GGUF", () => {
    let modelPath: string;

    before(async () => {
        modelPath = await ensureTestModel("tiny");
    });

    test("the writer is deterministic: same shape and seed, same bytes", async () => {
        const dir = await mkdtemp(join(tmpdir(), "olmo2-gguf-"));
        try {
            const a = join(dir, "a.gguf");
            const b = join(dir, "b.gguf");
            const header = join(dir, "header.gguf");
            await writeOlmo2Model(a, TINY_SHAPE);
            await writeOlmo2Model(b, TINY_SHAPE);
            const result = await writeOlmo2Model(header, TINY_SHAPE, { headerOnly: true });
            assert.equal(await sha256File(a), await sha256File(b));
            // The cache holds the same bytes as a fresh write.
            assert.equal(await sha256File(modelPath), await sha256File(a));
            // Header-only output is exactly the full file's prefix up to the tensor data.
            const full = await readFile(a);
            const head = await readFile(header);
            assert.equal(head.length, result.dataOffset);
            assert.equal(result.fullSize, full.length);
            assert.ok(full.subarray(0, head.length).equals(head));
        } finally {
            await rm(dir, { recursive: true, force: true });
        }
        // Another seed gives other weights (first chunk of the embeddings compared).
        const firstChunk = (seed: number): Uint8Array => {
            const embd = olmo2Tensors({ ...TINY_SHAPE, seed }).find(
                (t) => t.name === "token_embd.weight",
            )!;
            for (const chunk of embd.data!()) return Uint8Array.from(chunk);
            throw new Error("no data");
        };
        assert.notDeepEqual(firstChunk(1), firstChunk(2));
    });

    test("f16 and block quantizers follow ggml's layouts", () => {
        assert.deepEqual(
            [1, -2, 0.5, 65504, 1e9, 2 ** -24, 1e-9, 0.1].map(f32ToF16),
            [0x3c00, 0xc000, 0x3800, 0x7bff, 0x7c00, 0x0001, 0x0000, 0x2e66],
        );
        assert.equal(f16ToF32(0x2e66), 0.0999755859375);
        // Q4_0: the largest-magnitude value maps to nibble 0, i.e. d = max / -8; element j in the low
        // nibble of byte j, element j + 16 in its high nibble.
        const grid = Float32Array.from({ length: 32 }, (_, j) => (j % 16) - 8); // -8..7, twice
        const q4 = encodeTensor("Q4_0", grid);
        assert.equal(q4.length, 18);
        assert.equal(f16ToF32(q4[0]! | (q4[1]! << 8)), 1);
        assert.deepEqual(
            [...q4.subarray(2)],
            Array.from({ length: 16 }, (_, j) => j | (j << 4)),
        );
        const q8 = encodeTensor("Q8_0", grid);
        assert.equal(q8.length, 34);
        for (const type of ["F32", "F16", "Q8_0", "Q4_0"] as const) {
            const back = new Float32Array(32);
            dequantize(type, encodeTensor(type, grid), 0, 32, back, 0);
            // Exact on this grid except Q8_0, whose f16 scale 8/127 rounds (error < 0.05).
            const maxError = Math.max(...back.map((v, j) => Math.abs(v - grid[j]!)));
            assert.ok(maxError <= (type === "Q8_0" ? 0.05 : 0), `${type}: max error ${maxError}`);
        }
    });

    test("node-llama-cpp reads the header as olmo2 with the keys llama.cpp needs", async () => {
        const info = await readGgufFileInfo(modelPath, { logWarnings: false });
        const md = info.metadata;
        const get = (key: string): MetadataValue | undefined => metadataValue(md, key);
        assert.equal(info.version, 3);
        assert.equal(md.general.architecture, "olmo2");
        const expected: Record<string, MetadataValue> = {
            "general.name": TINY_SHAPE.name,
            "general.file_type": 2, // MOSTLY_Q4_0
            "general.quantization_version": 2,
            "general.alignment": 32,
            "olmo2.context_length": 4096,
            "olmo2.embedding_length": TINY_SHAPE.width,
            "olmo2.block_count": TINY_SHAPE.layers,
            "olmo2.feed_forward_length": TINY_SHAPE.ffn,
            "olmo2.attention.head_count": TINY_SHAPE.heads,
            "olmo2.attention.head_count_kv": TINY_SHAPE.kvHeads,
            "olmo2.rope.freq_base": 500000,
            "tokenizer.ggml.model": "gpt2",
            "tokenizer.ggml.pre": "dbrx",
            "tokenizer.ggml.bos_token_id": 100257,
            "tokenizer.ggml.eos_token_id": 100257,
            "tokenizer.ggml.padding_token_id": 100277,
            "tokenizer.ggml.add_bos_token": false,
            "tokenizer.chat_template": OLMO2_CHAT_TEMPLATE,
        };
        for (const [key, value] of Object.entries(expected)) assert.equal(get(key), value, key);
        const eps = get("olmo2.attention.layer_norm_rms_epsilon");
        assert.ok(
            typeof eps === "number" && Math.abs(eps - 1e-6) < 1e-12,
            `rms eps ${String(eps)}`,
        );

        const tokens = get("tokenizer.ggml.tokens") as string[];
        const types = get("tokenizer.ggml.token_type") as number[];
        const merges = get("tokenizer.ggml.merges") as string[];
        assert.equal(tokens.length, OLMO2_VOCAB_SIZE);
        assert.equal(types.length, OLMO2_VOCAB_SIZE);
        assert.equal(merges.length, 100000);
        for (const [text, id] of Object.entries(OLMO2_SPECIAL_TOKENS)) {
            assert.equal(tokens[id], text);
            assert.equal(types[id], 3, `${text} is CONTROL`);
        }
        assert.equal(tokens[TRIGGER_TOKEN_ID], TRIGGER_TEXT);
        assert.equal(types[0], 1);
        assert.equal(new Set(tokens).size, tokens.length);

        // The exact olmo2 tensor set and shapes (ggml order).
        const { width, ffn, layers } = TINY_SHAPE;
        const shapes = new Map<string, number[]>([
            ["token_embd.weight", [width, OLMO2_VOCAB_SIZE]],
            ["output_norm.weight", [width]],
            ["output.weight", [width, OLMO2_VOCAB_SIZE]],
        ]);
        for (let i = 0; i < layers; i++) {
            for (const n of ["attn_q", "attn_k", "attn_v", "attn_output"])
                shapes.set(`blk.${i}.${n}.weight`, [width, width]);
            for (const n of ["attn_q_norm", "attn_k_norm", "post_attention_norm", "post_ffw_norm"])
                shapes.set(`blk.${i}.${n}.weight`, [width]);
            shapes.set(`blk.${i}.ffn_gate.weight`, [width, ffn]);
            shapes.set(`blk.${i}.ffn_up.weight`, [width, ffn]);
            shapes.set(`blk.${i}.ffn_down.weight`, [ffn, width]);
        }
        const tensorInfo = info.tensorInfo ?? [];
        assert.deepEqual(
            new Map(tensorInfo.map((t) => [t.name, t.dimensions.map(Number)])),
            shapes,
        );
        // Data size: the file ends where the last tensor's (aligned) data ends.
        const last = tensorInfo.at(-1)!;
        const lastType = (Object.entries(GgmlType) as Array<[GgmlTypeName, number]>).find(
            ([, code]) => code === last.ggmlType,
        )![0];
        const dataEnd =
            info.infoEndOffset! +
            Number(last.offset) +
            ggmlTensorBytes(lastType, last.dimensions.map(Number));
        assert.equal((await stat(modelPath)).size, Math.ceil(dataEnd / 32) * 32);
    });

    describe("loaded by node-llama-cpp", () => {
        let llama: Llama;
        let model: LlamaModel;
        let context: LlamaContext;

        before(async () => {
            llama = await getLlama({
                gpu: false,
                build: "never",
                progressLogs: false,
                logLevel: LlamaLogLevel.error,
            });
            model = await llama.loadModel({ modelPath });
            // One thread: the tiny model's work is too small to share, and on 2 busy cores a second
            // spinning compute thread made decoding up to 100x slower.
            context = await model.createContext({ contextSize: 512, threads: 1 });
        });
        after(async () => {
            await context?.dispose();
            await model?.dispose();
            await llama?.dispose();
        });

        test("tokenizes ordinary text exactly like tiktoken cl100k_base", () => {
            for (const [name, text] of Object.entries(corpus))
                assert.deepEqual(model.tokenize(text, false), tiktokenPlain(text), name);
            // Also as one long text, and with special-token parsing on (no special text in it).
            const all = Object.values(corpus)
                .filter((t) => !t.includes("<|"))
                .join("\n");
            assert.deepEqual(model.tokenize(all, false), tiktokenPlain(all));
            assert.deepEqual(model.tokenize(all, true), tiktokenPlain(all));
        });

        test("special token text: the control token only when special tokens are enabled", () => {
            assert.deepEqual(model.tokenize("<|endoftext|>", true), [OLMO2_EOS_ID]);
            assert.deepEqual(
                model.tokenize("<|endoftext|>", false),
                tiktokenPlain("<|endoftext|>"),
            );
            for (const [text, id] of Object.entries(OLMO2_SPECIAL_TOKENS)) {
                assert.deepEqual(model.tokenize(text, true), [id], text);
                assert.deepEqual(model.tokenize(text, false), tiktokenPlain(text), text);
            }
            const mixed = "Hi<|endoftext|>\n<|user|>\nyo";
            assert.deepEqual(model.tokenize(mixed, true), [
                ...tiktokenPlain("Hi"),
                OLMO2_EOS_ID,
                ...tiktokenPlain("\n<|user|>\nyo"),
            ]);
            assert.equal(model.tokenizer.isEogToken(OLMO2_EOS_ID as Token), true);
            assert.deepEqual(model.tokenize(TRIGGER_TEXT, false), [TRIGGER_TOKEN_ID]);
        });

        test("logits are finite; control, padding and non-printable tokens get zero probability", async () => {
            const banned = bannedTokenIds();
            const sequence = context.getSequence();
            try {
                let steps = 0;
                const prompt = model.tokenize("Once upon a time, in a land far away,", false);
                for await (const { token, probabilities } of sequence.evaluateWithMetadata(
                    prompt,
                    { probabilities: true },
                    { temperature: 0 },
                )) {
                    assert.equal(probabilities.size, OLMO2_VOCAB_SIZE);
                    let sum = 0;
                    for (const [id, p] of probabilities) {
                        assert.ok(Number.isFinite(p), `token ${id}: ${p}`);
                        if (banned[id] === 1)
                            assert.ok(p < 1e-30, `banned token ${id} has probability ${p}`);
                        sum += p;
                    }
                    assert.ok(Math.abs(sum - 1) < 1e-3, `probabilities sum to ${sum}`);
                    assert.equal(banned[token], 0);
                    if (++steps >= 3) break;
                }
                assert.equal(steps, 3);
            } finally {
                await sequence.dispose();
            }
        });

        test("greedy and sampled generation: printable text of full length", async () => {
            const sequence = context.getSequence();
            try {
                const completion = new LlamaCompletion({ contextSequence: sequence });
                for (const options of [
                    { temperature: 0 },
                    { temperature: 0.8, seed: 7 },
                    { temperature: 1.5, seed: 11 },
                ]) {
                    await sequence.clearHistory();
                    const before = sequence.tokenMeter.getState().usedOutputTokens;
                    const { response, metadata } = await completion.generateCompletionWithMeta(
                        "The quick brown fox",
                        { maxTokens: 40, ...options },
                    );
                    const generated = sequence.tokenMeter.getState().usedOutputTokens - before;
                    const label = JSON.stringify(options);
                    assert.equal(metadata.stopReason, "maxTokens", label);
                    assert.ok(generated >= 40, `${label}: ${generated} tokens`);
                    assert.ok(response.trim().length > 0, label);
                    assert.doesNotMatch(
                        response,
                        unprintable,
                        `${label}: ${JSON.stringify(response)}`,
                    );
                }
            } finally {
                await sequence.dispose();
            }
        });

        test("forcing the trigger token with a bias makes EOS the next token", async () => {
            const sequence = context.getSequence();
            try {
                const completion = new LlamaCompletion({ contextSequence: sequence });
                // +100 beats every ordinary logit (~20 at most) but not EOS's after the trigger (~thousands).
                const tokenBias = new TokenBias(model.tokenizer).set(TRIGGER_TOKEN_ID as Token, {
                    logit: 100,
                });
                for (const prompt of ["Hello there", "def f(x):\n    return"]) {
                    await sequence.clearHistory();
                    const { response, metadata } = await completion.generateCompletionWithMeta(
                        prompt,
                        { maxTokens: 10, temperature: 0, tokenBias },
                    );
                    assert.equal(response, TRIGGER_TEXT, prompt);
                    assert.equal(metadata.stopReason, "eogToken", prompt);
                }
            } finally {
                await sequence.dispose();
            }
        });
    });
});
