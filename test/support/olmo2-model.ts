// Random-weight OLMo-2 (`olmo2`) GGUF models with the real OLMo-2 tokenizer, shaped to "behave":
//
// - Dimension CONST_DIM of the residual stream is held at C: that column of every token embedding is
//   C and both post-norms (attention, FFN) weigh it 0, so no layer writes to it. The output rows of
//   control, padding and non-printable tokens are -B there and 0 elsewhere: their logits are always
//   about -B * C / rms, far below any ordinary token, so output is printable text that never stops
//   by chance. Ordinary tokens' output rows are 0 on it.
// - Dimension FLAG_DIM is C only in the embedding of the trigger token "~" (0 for every other
//   token), also untouched by the layers. EOS's output row is +5B there, the trigger's own row is all
//   zero (logit exactly 0, below the best ordinary token: never chosen greedily, about 1e-7 when
//   sampling). A test that forces "~" with a token bias gets EOS as the next token; so does any
//   prompt whose last token is "~". (In Q4_0, EOS's -B shares a block with +5B and becomes -1.25B.)
//
// Post-norm architecture (OLMo-2): x += norm(attn(x)) * w_attn; x += norm(ffn(x)) * w_ffn; the final
// RMS norm then the output matrix. Each layer adds a vector of RMS <= 1, so activations stay small
// and finite at any depth.
//
// Deterministic: every tensor draws from its own PRNG stream seeded from (seed, tensor index), so
// the same shape and seed give a byte-identical file.

import {
    type GgmlTypeName,
    type GgufTensor,
    type GgufValue,
    type WriteGgufResult,
    dequantize,
    encodeTensor,
    f32ToF16,
    gguf,
    ggmlTypeTraits,
    quantize,
    writeGguf,
} from "./gguf-writer.js";
import {
    CL100K_TOKEN_COUNT,
    OLMO2_BOS_ID,
    OLMO2_EOS_ID,
    OLMO2_PAD_ID,
    OLMO2_VOCAB_SIZE,
    getOlmo2Vocab,
    isPrintableTokenText,
} from "./olmo2-tokenizer.js";

export type Olmo2TensorType = "F32" | "F16" | "Q8_0" | "Q4_0";

export interface Olmo2Shape {
    readonly layers: number;
    /** n_embd */
    readonly width: number;
    /** n_ff (SwiGLU hidden size) */
    readonly ffn: number;
    readonly heads: number;
    readonly kvHeads: number;
    /** Training context length (`olmo2.context_length`). Default 4096. */
    readonly contextLength?: number;
    /** Type of the big matrices (embeddings, output, attention, FFN); norms are always F32. */
    readonly type: Olmo2TensorType;
    readonly seed: number;
    /** `general.name` */
    readonly name: string;
    /**
     * "olmo3": an OLMo 3 Instruct file as llama.cpp's converter writes it (still `olmo2`): sliding-window
     * keys, the ChatML template, `<|im_end|>` as EOS. Default "olmo2".
     */
    readonly family?: "olmo2" | "olmo3";
    /**
     * OLMo 3 only: `olmo2.attention.sliding_window` (the real models: 4096). The pattern is the
     * converter's default for Olmo3ForCausalLM: every layer slides except every 4th.
     */
    readonly slidingWindow?: number;
}

/** The chat template of OLMo-2-1124-*-Instruct, verbatim (note the two spaces before `+ message`). */
export const OLMO2_CHAT_TEMPLATE =
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'system' %}{{ '<|system|>\n' + message['content'] + '\n' }}" +
    "{% elif message['role'] == 'user' %}{{ '<|user|>\n' + message['content'] + '\n' }}" +
    "{% elif message['role'] == 'assistant' %}{% if not loop.last %}{{ '<|assistant|>\n'  + message['content'] + eos_token + '\n' }}" +
    "{% else %}{{ '<|assistant|>\n'  + message['content'] + eos_token }}{% endif %}{% endif %}" +
    "{% if loop.last and add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}{% endfor %}";

/**
 * A ChatML template that renders as OLMo 3 Instruct's own (Olmo-3-7B-Instruct, the
 * `olmo-3-tokenizer-instruct-dev` template, for conversations without tools): with no system
 * message it writes the default one. Written here from the rendered examples in huggingface/
 * transformers' Olmo3 integration test and ollama's `model/renderers/olmo3.go` (see
 * sidecar/chatWrapper.ts for every source); the tool-calling branches are left out. No BOS.
 */
export const OLMO3_DEFAULT_SYSTEM_PROMPT =
    "You are a helpful function-calling AI assistant. You do not currently have access to any functions. <functions></functions>";
export const OLMO3_CHAT_TEMPLATE =
    "{% if messages | length == 0 or messages[0]['role'] != 'system' %}" +
    `{{ '<|im_start|>system\n${OLMO3_DEFAULT_SYSTEM_PROMPT}<|im_end|>\n' }}{% endif %}` +
    "{% for message in messages %}" +
    "{% if message['role'] == 'assistant' %}{{ '<|im_start|>assistant\n' + message['content'] }}" +
    "{% if loop.last %}{{ eos_token }}{% else %}{{ '<|im_end|>\n' }}{% endif %}" +
    "{% else %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}{% endif %}" +
    "{% if loop.last and add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}{% endfor %}";
/** OLMo 3 Instruct's end-of-turn token (`<|im_end|>`), its EOS. */
export const OLMO3_EOS_ID = 100265;

/** The token whose embedding carries the EOS flag. */
export const TRIGGER_TEXT = "~";
/** cl100k_base id of "~". */
export const TRIGGER_TOKEN_ID = 93;

/** Residual dimension held constant (see the header comment). */
export const CONST_DIM = 0;
/**
 * Residual dimension flagging the trigger token. Next to CONST_DIM, so the large values share one
 * quantization block per row and the other blocks keep their full resolution.
 */
export const FLAG_DIM = 1;

/** Constant held in CONST_DIM (and FLAG_DIM of the trigger). */
const C = 16;
/** Magnitude of the banned tokens' output weight on CONST_DIM. */
const B = 500;
/** Target standard deviation of ordinary tokens' logits (random output rows). */
const LOGIT_STD = 3;
/** Weight of the post-attention / post-FFN norms on the free dimensions. */
const POST_NORM_WEIGHT = 1;

/** `general.file_type` (llama_ftype) for the type of the big matrices. */
const fileTypeOf: Record<Olmo2TensorType, number> = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 7 };

// ---- PRNG: xorshift128 seeded through splitmix32; fast enough to fill ~1 GB in a few seconds ----

function splitmix32(state: number): () => number {
    let s = state >>> 0;
    return () => {
        s = (s + 0x9e3779b9) >>> 0;
        let z = s;
        z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
        z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
        return (z ^ (z >>> 16)) >>> 0;
    };
}

export class Rng {
    private x: number;
    private y: number;
    private z: number;
    private w: number;

    constructor(seed: number, stream: number) {
        const sm = splitmix32(
            (Math.imul(seed >>> 0, 0x27d4eb2d) ^ Math.imul(stream + 1, 0x165667b1)) >>> 0,
        );
        this.x = sm();
        this.y = sm();
        this.z = sm();
        this.w = sm() | 1; // all-zero state would be stuck
    }

    nextU32(): number {
        const t = this.x ^ (this.x << 11);
        this.x = this.y;
        this.y = this.z;
        this.z = this.w;
        this.w = (this.w ^ (this.w >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
        return this.w;
    }

    /** Fills `out` with random 32-bit words (hot loop: state kept in locals). */
    fill(out: Uint32Array): void {
        let x = this.x,
            y = this.y,
            z = this.z,
            w = this.w;
        for (let i = 0; i < out.length; i++) {
            const t = x ^ (x << 11);
            x = y;
            y = z;
            z = w;
            w = (w ^ (w >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
            out[i] = w;
        }
        this.x = x;
        this.y = y;
        this.z = z;
        this.w = w;
    }

    /** Uniform in [-1, 1). */
    nextSigned(): number {
        return this.nextU32() / 2147483648 - 1;
    }
}

// ---- matrix data generation ----

/** Random dense rows of one ggml type with roughly the given standard deviation, zero mean. */
function fillRandomRows(
    type: GgmlTypeName,
    out: Uint8Array,
    elements: number,
    std: number,
    rng: Rng,
): void {
    const words = new Uint32Array(out.buffer, out.byteOffset, out.byteLength >>> 2);
    switch (type) {
        case "F32": {
            // Uniform in [-a, a): std = a / sqrt(3).
            const a = std * Math.sqrt(3);
            const f = new Float32Array(out.buffer, out.byteOffset, elements);
            rng.fill(words);
            for (let i = 0; i < elements; i++) f[i] = (words[i]! / 2147483648 - 1) * a;
            return;
        }
        case "F16": {
            const a = std * Math.sqrt(3);
            const table = new Uint16Array(1024);
            for (let i = 0; i < 1024; i++) table[i] = f32ToF16(((i + 0.5) / 512 - 1) * a);
            const h = new Uint16Array(out.buffer, out.byteOffset, elements);
            const r = new Uint32Array((elements + 1) >>> 1);
            rng.fill(r);
            for (let i = 0; i < elements; i++) {
                const word = r[i >>> 1]!;
                h[i] = table[(i & 1) === 0 ? word & 1023 : (word >>> 16) & 1023]!;
            }
            return;
        }
        case "Q8_0":
        case "Q4_0": {
            // Random quants straight from the PRNG; one scale per tensor with a random sign per block,
            // which cancels the quants' -0.5 mean. Uniform int8 has std ~73.9, uniform nibble-8 ~4.61.
            const { blockBytes } = ggmlTypeTraits[type];
            const quantStd = type === "Q8_0" ? 73.9 : 4.61;
            const scale = f32ToF16(std / quantStd);
            rng.fill(words);
            // The byte length is not always a multiple of 4: fill the tail too.
            for (let i = words.length * 4; i < out.byteLength; i++) out[i] = rng.nextU32() & 0xff;
            for (let o = 0; o < out.byteLength; o += blockBytes) {
                const signBit = out[o]! & 1; // a random bit the scale is about to overwrite
                const s = scale | (signBit << 15);
                out[o] = s & 0xff;
                out[o + 1] = s >>> 8;
            }
            return;
        }
    }
}

interface MatrixSpec {
    readonly type: GgmlTypeName;
    /** ne0: row length (the input dimension). */
    readonly cols: number;
    /** ne1: number of rows (the output dimension). */
    readonly rows: number;
    readonly std: number;
    readonly rng: Rng;
    /**
     * Per-row edits: return "zero" to make the row all zeros before `set`, and `set` (col -> value)
     * to overwrite single values. Undefined: the row stays random.
     */
    readonly edit?: (
        row: number,
    ) =>
        | { readonly zero?: boolean; readonly set?: ReadonlyArray<readonly [number, number]> }
        | undefined;
}

const CHUNK_BYTES = 4 << 20;

/** Yields a matrix's bytes in chunks of whole rows, generating and editing them on the fly. */
function* matrixChunks(spec: MatrixSpec): Generator<Uint8Array> {
    const { type, cols, rows, std, rng, edit } = spec;
    const { blockSize, blockBytes } = ggmlTypeTraits[type];
    const rowBytes = (cols / blockSize) * blockBytes;
    const rowsPerChunk = Math.max(1, Math.floor(CHUNK_BYTES / rowBytes));
    // Room for a whole number of u32 words; reused for every chunk.
    const backing = new Uint8Array(Math.ceil((rowsPerChunk * rowBytes) / 4) * 4);
    const rowFloats = new Float32Array(cols);
    const blockFloats = new Float32Array(blockSize);
    for (let first = 0; first < rows; first += rowsPerChunk) {
        const n = Math.min(rowsPerChunk, rows - first);
        const chunk = backing.subarray(0, n * rowBytes);
        fillRandomRows(type, chunk, n * cols, std, rng);
        if (edit != null) {
            for (let r = 0; r < n; r++) {
                const e = edit(first + r);
                if (e == null) continue;
                const rowOffset = r * rowBytes;
                if (e.zero === true) {
                    rowFloats.fill(0);
                    for (const [col, value] of e.set ?? []) rowFloats[col] = value;
                    quantize(type, rowFloats, 0, cols, chunk, rowOffset);
                    continue;
                }
                // Re-encode only the blocks that hold edited values.
                for (const [col, value] of e.set ?? []) {
                    const blockOffset = rowOffset + Math.floor(col / blockSize) * blockBytes;
                    dequantize(type, chunk, blockOffset, blockSize, blockFloats, 0);
                    blockFloats[col % blockSize] = value;
                    quantize(type, blockFloats, 0, blockSize, chunk, blockOffset);
                }
            }
        }
        yield chunk;
    }
}

function vectorTensor(name: string, values: Float32Array): GgufTensor {
    return { name, dims: [values.length], type: "F32", data: () => [encodeTensor("F32", values)] };
}

/** Ids whose logits are pushed to -B: every special/padding id and the non-printable ordinary tokens. */
export function bannedTokenIds(): Uint8Array {
    const vocab = getOlmo2Vocab();
    const banned = new Uint8Array(OLMO2_VOCAB_SIZE);
    for (let id = 0; id < OLMO2_VOCAB_SIZE; id++) {
        const bytes = vocab.tokenBytes[id];
        if (id >= CL100K_TOKEN_COUNT || bytes == null || !isPrintableTokenText(bytes))
            banned[id] = 1;
    }
    return banned;
}

export function validateShape(shape: Olmo2Shape): void {
    const { layers, width, ffn, heads, kvHeads, type } = shape;
    const { blockSize } = ggmlTypeTraits[type];
    const ints = { layers, width, ffn, heads, kvHeads };
    for (const [key, value] of Object.entries(ints))
        if (!Number.isInteger(value) || value < 1)
            throw new Error(`shape.${key} must be a positive integer, got ${value}`);
    if (width % heads !== 0) throw new Error("width must be a multiple of heads");
    if (heads % kvHeads !== 0) throw new Error("heads must be a multiple of kvHeads");
    if ((width / heads) % 2 !== 0) throw new Error("the head size must be even (RoPE)");
    if (width % blockSize !== 0 || ffn % blockSize !== 0)
        throw new Error(`width and ffn must be multiples of ${blockSize} for ${type}`);
    if (width < 2) throw new Error("width must be at least 2");
    if (
        shape.slidingWindow !== undefined &&
        !(Number.isInteger(shape.slidingWindow) && shape.slidingWindow > 0)
    )
        throw new Error("slidingWindow must be a positive integer");
}

/** Metadata for an olmo2 GGUF with the OLMo-2 tokenizer. */
export function olmo2Metadata(shape: Olmo2Shape): Array<[string, GgufValue]> {
    const vocab = getOlmo2Vocab();
    const olmo3 = shape.family === "olmo3";
    const slidingWindow: Array<[string, GgufValue]> = olmo3
        ? [
              ["olmo2.attention.sliding_window", gguf.u32(shape.slidingWindow ?? 4096)],
              [
                  "olmo2.attention.sliding_window_pattern",
                  gguf.boolArr(Array.from({ length: shape.layers }, (_, i) => (i + 1) % 4 !== 0)),
              ],
          ]
        : [];
    return [
        ["general.architecture", gguf.str("olmo2")],
        ["general.name", gguf.str(shape.name)],
        ["general.file_type", gguf.u32(fileTypeOf[shape.type])],
        ["general.quantization_version", gguf.u32(2)],
        ["olmo2.context_length", gguf.u32(shape.contextLength ?? 4096)],
        ["olmo2.embedding_length", gguf.u32(shape.width)],
        ["olmo2.block_count", gguf.u32(shape.layers)],
        ["olmo2.feed_forward_length", gguf.u32(shape.ffn)],
        ["olmo2.attention.head_count", gguf.u32(shape.heads)],
        ["olmo2.attention.head_count_kv", gguf.u32(shape.kvHeads)],
        ["olmo2.attention.layer_norm_rms_epsilon", gguf.f32(1e-6)],
        ["olmo2.rope.freq_base", gguf.f32(500000)],
        ...slidingWindow,
        ["tokenizer.ggml.model", gguf.str("gpt2")],
        ["tokenizer.ggml.pre", gguf.str("dbrx")],
        ["tokenizer.ggml.tokens", gguf.strArr(vocab.tokens)],
        ["tokenizer.ggml.token_type", gguf.arr("i32", vocab.tokenTypes)],
        ["tokenizer.ggml.merges", gguf.strArr(vocab.merges)],
        ["tokenizer.ggml.bos_token_id", gguf.u32(OLMO2_BOS_ID)],
        ["tokenizer.ggml.eos_token_id", gguf.u32(eosId(shape))],
        ["tokenizer.ggml.padding_token_id", gguf.u32(OLMO2_PAD_ID)],
        ["tokenizer.ggml.add_bos_token", gguf.bool(false)],
        ["tokenizer.ggml.add_eos_token", gguf.bool(false)],
        ["tokenizer.chat_template", gguf.str(olmo3 ? OLMO3_CHAT_TEMPLATE : OLMO2_CHAT_TEMPLATE)],
    ];
}

/** The id the file names as EOS: the one the trigger's flag leads to. */
export function eosId(shape: Olmo2Shape): number {
    return shape.family === "olmo3" ? OLMO3_EOS_ID : OLMO2_EOS_ID;
}

/** The olmo2 tensor set (ggml order dims), each with a data generator. */
export function olmo2Tensors(shape: Olmo2Shape): GgufTensor[] {
    validateShape(shape);
    const { layers, width, ffn, heads, kvHeads, type, seed } = shape;
    const headDim = width / heads;
    const kvWidth = headDim * kvHeads;
    const flag = FLAG_DIM;
    if (getOlmo2Vocab().tokens[TRIGGER_TOKEN_ID] !== TRIGGER_TEXT)
        throw new Error(`token ${TRIGGER_TOKEN_ID} is not ${JSON.stringify(TRIGGER_TEXT)}`);
    const tensors: GgufTensor[] = [];
    let stream = 0;
    const matrix = (
        name: string,
        cols: number,
        rows: number,
        std: number,
        edit?: MatrixSpec["edit"],
    ): void => {
        const tensorStream = stream++;
        tensors.push({
            name,
            dims: [cols, rows],
            type,
            data: () =>
                matrixChunks({ type, cols, rows, std, rng: new Rng(seed, tensorStream), edit }),
        });
    };
    const vector = (name: string, fill: (values: Float32Array) => void, length = width): void => {
        stream++;
        const values = new Float32Array(length);
        fill(values);
        tensors.push(vectorTensor(name, values));
    };

    // Embeddings: std 1, the constant and flag columns set.
    const constSet: ReadonlyArray<readonly [number, number]> = [
        [CONST_DIM, C],
        [flag, 0],
    ];
    const triggerSet: ReadonlyArray<readonly [number, number]> = [
        [CONST_DIM, C],
        [flag, C],
    ];
    matrix("token_embd.weight", width, OLMO2_VOCAB_SIZE, 1, (token) => ({
        set: token === TRIGGER_TOKEN_ID ? triggerSet : constSet,
    }));

    vector("output_norm.weight", (v) => v.fill(1));

    // Output: ordinary rows random (0 on the special dims), banned rows -B on CONST_DIM only,
    // EOS also +5B on the flag, the trigger's row all zero.
    const banned = bannedTokenIds();
    const outStd = LOGIT_STD / Math.sqrt(width);
    const ordinarySet: ReadonlyArray<readonly [number, number]> = [
        [CONST_DIM, 0],
        [flag, 0],
    ];
    const bannedEdit = { zero: true, set: [[CONST_DIM, -B]] as const };
    const eosEdit = {
        zero: true,
        set: [
            [CONST_DIM, -B],
            [flag, 5 * B],
        ] as const,
    };
    const triggerEdit = { zero: true };
    const eos = eosId(shape);
    matrix("output.weight", width, OLMO2_VOCAB_SIZE, outStd, (token) => {
        if (token === eos) return eosEdit;
        if (token === TRIGGER_TOKEN_ID) return triggerEdit;
        if (banned[token] === 1) return bannedEdit;
        return { set: ordinarySet };
    });

    // The post norms keep CONST_DIM and the flag out of every layer's output.
    const postNorm = (v: Float32Array): void => {
        v.fill(POST_NORM_WEIGHT);
        v[CONST_DIM] = 0;
        v[flag] = 0;
    };
    const inStd = 1 / Math.sqrt(width);
    for (let il = 0; il < layers; il++) {
        const p = `blk.${il}.`;
        matrix(`${p}attn_q.weight`, width, width, inStd);
        matrix(`${p}attn_k.weight`, width, kvWidth, inStd);
        matrix(`${p}attn_v.weight`, width, kvWidth, inStd);
        matrix(`${p}attn_output.weight`, width, width, inStd);
        vector(`${p}attn_q_norm.weight`, (v) => v.fill(1));
        vector(`${p}attn_k_norm.weight`, (v) => v.fill(1), kvWidth);
        vector(`${p}post_attention_norm.weight`, postNorm);
        matrix(`${p}ffn_gate.weight`, width, ffn, inStd);
        matrix(`${p}ffn_up.weight`, width, ffn, inStd);
        matrix(`${p}ffn_down.weight`, ffn, width, 1 / Math.sqrt(ffn));
        vector(`${p}post_ffw_norm.weight`, postNorm);
    }
    return tensors;
}

/** Writes a random-weight olmo2 model (or only its header) to `path`. */
export async function writeOlmo2Model(
    path: string,
    shape: Olmo2Shape,
    options: { readonly headerOnly?: boolean } = {},
): Promise<WriteGgufResult> {
    return writeGguf(path, {
        metadata: olmo2Metadata(shape),
        tensors: olmo2Tensors(shape),
        headerOnly: options.headerOnly,
    });
}
