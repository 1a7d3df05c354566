// A small, generic GGUF v3 writer for test models.
//
// Layout: magic "GGUF", u32 version 3, u64 tensor count, u64 KV count, the typed KV pairs, the tensor
// infos (name, n_dims, dims in ggml order, ggml type, data offset), padding to `general.alignment`,
// then each tensor's data, each one starting on an aligned offset. All little-endian.
// Tensor data is streamed: each tensor supplies a generator of chunks, so a 1 GB model never sits
// in memory at once.

import { open, type FileHandle } from "node:fs/promises";

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_VERSION = 3;
export const GGUF_DEFAULT_ALIGNMENT = 32;

/** GGUF metadata value types (gguf.h `gguf_type`). */
export const GgufType = {
    UINT8: 0,
    INT8: 1,
    UINT16: 2,
    INT16: 3,
    UINT32: 4,
    INT32: 5,
    FLOAT32: 6,
    BOOL: 7,
    STRING: 8,
    ARRAY: 9,
    UINT64: 10,
    INT64: 11,
    FLOAT64: 12,
} as const;
export type GgufScalarTypeName =
    "u8" | "i8" | "u16" | "i16" | "u32" | "i32" | "f32" | "u64" | "i64" | "f64";

const scalarTypeCode: Record<GgufScalarTypeName, number> = {
    u8: GgufType.UINT8,
    i8: GgufType.INT8,
    u16: GgufType.UINT16,
    i16: GgufType.INT16,
    u32: GgufType.UINT32,
    i32: GgufType.INT32,
    f32: GgufType.FLOAT32,
    u64: GgufType.UINT64,
    i64: GgufType.INT64,
    f64: GgufType.FLOAT64,
};

export type GgufValue =
    | {
          readonly kind: "scalar";
          readonly type: GgufScalarTypeName;
          readonly value: number | bigint;
      }
    | { readonly kind: "bool"; readonly value: boolean }
    | { readonly kind: "string"; readonly value: string }
    | { readonly kind: "stringArray"; readonly value: readonly string[] }
    | {
          readonly kind: "numberArray";
          readonly type: GgufScalarTypeName;
          readonly value: ArrayLike<number>;
      }
    | { readonly kind: "boolArray"; readonly value: readonly boolean[] };

/** Constructors for typed metadata values. */
export const gguf = {
    u8: (value: number): GgufValue => ({ kind: "scalar", type: "u8", value }),
    i8: (value: number): GgufValue => ({ kind: "scalar", type: "i8", value }),
    u16: (value: number): GgufValue => ({ kind: "scalar", type: "u16", value }),
    i16: (value: number): GgufValue => ({ kind: "scalar", type: "i16", value }),
    u32: (value: number): GgufValue => ({ kind: "scalar", type: "u32", value }),
    i32: (value: number): GgufValue => ({ kind: "scalar", type: "i32", value }),
    f32: (value: number): GgufValue => ({ kind: "scalar", type: "f32", value }),
    u64: (value: number | bigint): GgufValue => ({ kind: "scalar", type: "u64", value }),
    i64: (value: number | bigint): GgufValue => ({ kind: "scalar", type: "i64", value }),
    f64: (value: number): GgufValue => ({ kind: "scalar", type: "f64", value }),
    bool: (value: boolean): GgufValue => ({ kind: "bool", value }),
    str: (value: string): GgufValue => ({ kind: "string", value }),
    strArr: (value: readonly string[]): GgufValue => ({ kind: "stringArray", value }),
    arr: (type: GgufScalarTypeName, value: ArrayLike<number>): GgufValue => ({
        kind: "numberArray",
        type,
        value,
    }),
    boolArr: (value: readonly boolean[]): GgufValue => ({ kind: "boolArray", value }),
};

/** The ggml tensor types this writer can produce (ggml.h `ggml_type` codes). */
export const GgmlType = {
    F32: 0,
    F16: 1,
    Q4_0: 2,
    Q8_0: 8,
} as const;
export type GgmlTypeName = keyof typeof GgmlType;

/** Elements per block and bytes per block of each supported type. */
export const ggmlTypeTraits: Record<
    GgmlTypeName,
    { readonly blockSize: number; readonly blockBytes: number }
> = {
    F32: { blockSize: 1, blockBytes: 4 },
    F16: { blockSize: 1, blockBytes: 2 },
    Q4_0: { blockSize: 32, blockBytes: 18 }, // f16 scale + 16 bytes of nibbles
    Q8_0: { blockSize: 32, blockBytes: 34 }, // f16 scale + 32 int8
};

/** Bytes taken by `elements` values of `type` (the row length must be a multiple of the block size). */
export function ggmlTensorBytes(type: GgmlTypeName, dims: readonly number[]): number {
    const { blockSize, blockBytes } = ggmlTypeTraits[type];
    const elements = dims.reduce((a, b) => a * b, 1);
    if (dims[0]! % blockSize !== 0)
        throw new Error(
            `ggml type ${type} needs the first dimension to be a multiple of ${blockSize}, got ${dims[0]}`,
        );
    return (elements / blockSize) * blockBytes;
}

export interface GgufTensor {
    readonly name: string;
    /** Dimensions in ggml order: ne[0] (the contiguous row length) first. */
    readonly dims: readonly number[];
    readonly type: GgmlTypeName;
    /**
     * Produces the tensor's bytes in order, as chunks. Called once, only when data is written.
     * The total must equal `ggmlTensorBytes(type, dims)`.
     */
    readonly data?: () => Iterable<Uint8Array>;
}

export interface WriteGgufOptions {
    /** Ordered metadata. `general.alignment` is added when missing. */
    readonly metadata: ReadonlyArray<readonly [string, GgufValue]>;
    readonly tensors: readonly GgufTensor[];
    readonly alignment?: number;
    /** Write the header and tensor infos only (no tensor data): enough for metadata/estimate readers. */
    readonly headerOnly?: boolean;
}

export interface WriteGgufResult {
    /** Bytes written. */
    readonly size: number;
    /** Offset of the tensor data section. */
    readonly dataOffset: number;
    /** Size the file has (or would have) with all tensor data. */
    readonly fullSize: number;
}

/** A growable little-endian byte buffer for the header. */
class ByteWriter {
    private buf = new Uint8Array(1 << 16);
    private view = new DataView(this.buf.buffer);
    length = 0;
    private static readonly encoder = new TextEncoder();

    private ensure(extra: number): void {
        if (this.length + extra <= this.buf.length) return;
        let size = this.buf.length * 2;
        while (size < this.length + extra) size *= 2;
        const next = new Uint8Array(size);
        next.set(this.buf.subarray(0, this.length));
        this.buf = next;
        this.view = new DataView(next.buffer);
    }

    u8(v: number): void {
        this.ensure(1);
        this.view.setUint8(this.length, v);
        this.length += 1;
    }
    i8(v: number): void {
        this.ensure(1);
        this.view.setInt8(this.length, v);
        this.length += 1;
    }
    u16(v: number): void {
        this.ensure(2);
        this.view.setUint16(this.length, v, true);
        this.length += 2;
    }
    i16(v: number): void {
        this.ensure(2);
        this.view.setInt16(this.length, v, true);
        this.length += 2;
    }
    u32(v: number): void {
        this.ensure(4);
        this.view.setUint32(this.length, v, true);
        this.length += 4;
    }
    i32(v: number): void {
        this.ensure(4);
        this.view.setInt32(this.length, v, true);
        this.length += 4;
    }
    f32(v: number): void {
        this.ensure(4);
        this.view.setFloat32(this.length, v, true);
        this.length += 4;
    }
    f64(v: number): void {
        this.ensure(8);
        this.view.setFloat64(this.length, v, true);
        this.length += 8;
    }
    u64(v: number | bigint): void {
        this.ensure(8);
        this.view.setBigUint64(this.length, BigInt(v), true);
        this.length += 8;
    }
    i64(v: number | bigint): void {
        this.ensure(8);
        this.view.setBigInt64(this.length, BigInt(v), true);
        this.length += 8;
    }

    string(s: string): void {
        // Worst case 3 bytes per UTF-16 unit.
        this.ensure(8 + s.length * 3);
        const { written } = ByteWriter.encoder.encodeInto(s, this.buf.subarray(this.length + 8));
        this.view.setBigUint64(this.length, BigInt(written), true);
        this.length += 8 + written;
    }

    zeros(n: number): void {
        this.ensure(n);
        this.buf.fill(0, this.length, this.length + n);
        this.length += n;
    }

    scalar(type: GgufScalarTypeName, v: number | bigint): void {
        switch (type) {
            case "u8":
                this.u8(Number(v));
                break;
            case "i8":
                this.i8(Number(v));
                break;
            case "u16":
                this.u16(Number(v));
                break;
            case "i16":
                this.i16(Number(v));
                break;
            case "u32":
                this.u32(Number(v));
                break;
            case "i32":
                this.i32(Number(v));
                break;
            case "f32":
                this.f32(Number(v));
                break;
            case "f64":
                this.f64(Number(v));
                break;
            case "u64":
                this.u64(v);
                break;
            case "i64":
                this.i64(v);
                break;
        }
    }

    bytes(): Uint8Array {
        return this.buf.subarray(0, this.length);
    }
}

function writeValue(w: ByteWriter, value: GgufValue): void {
    switch (value.kind) {
        case "scalar":
            w.u32(scalarTypeCode[value.type]);
            w.scalar(value.type, value.value);
            break;
        case "bool":
            w.u32(GgufType.BOOL);
            w.u8(value.value ? 1 : 0);
            break;
        case "string":
            w.u32(GgufType.STRING);
            w.string(value.value);
            break;
        case "stringArray":
            w.u32(GgufType.ARRAY);
            w.u32(GgufType.STRING);
            w.u64(value.value.length);
            for (const s of value.value) w.string(s);
            break;
        case "numberArray":
            w.u32(GgufType.ARRAY);
            w.u32(scalarTypeCode[value.type]);
            w.u64(value.value.length);
            for (let i = 0; i < value.value.length; i++) w.scalar(value.type, value.value[i]!);
            break;
        case "boolArray":
            w.u32(GgufType.ARRAY);
            w.u32(GgufType.BOOL);
            w.u64(value.value.length);
            for (const b of value.value) w.u8(b ? 1 : 0);
            break;
    }
}

const alignUp = (n: number, alignment: number): number => Math.ceil(n / alignment) * alignment;

/** FileHandle.write may write less than asked: loop until all of it is out. */
async function writeAll(file: FileHandle, bytes: Uint8Array, length = bytes.length): Promise<void> {
    let done = 0;
    while (done < length) {
        const { bytesWritten } = await file.write(bytes, done, length - done);
        done += bytesWritten;
    }
}

/** Serializes the header (everything before the tensor data, padding included). */
export function buildGgufHeader(options: WriteGgufOptions): {
    header: Uint8Array;
    tensorOffsets: number[];
    dataBytes: number;
} {
    const alignment = options.alignment ?? GGUF_DEFAULT_ALIGNMENT;
    const metadata = [...options.metadata];
    const alignmentEntry = metadata.find(([key]) => key === "general.alignment");
    if (alignmentEntry == null) metadata.push(["general.alignment", gguf.u32(alignment)]);
    else if (alignmentEntry[1].kind !== "scalar" || Number(alignmentEntry[1].value) !== alignment)
        throw new Error("general.alignment in the metadata disagrees with the alignment option");

    const names = new Set<string>();
    for (const [key] of metadata) {
        if (names.has(key)) throw new Error(`duplicate metadata key ${key}`);
        names.add(key);
    }

    const w = new ByteWriter();
    w.u32(GGUF_MAGIC);
    w.u32(GGUF_VERSION);
    w.u64(options.tensors.length);
    w.u64(metadata.length);
    for (const [key, value] of metadata) {
        w.string(key);
        writeValue(w, value);
    }

    const tensorOffsets: number[] = [];
    let offset = 0;
    for (const tensor of options.tensors) {
        if (tensor.dims.length < 1 || tensor.dims.length > 4)
            throw new Error(`tensor ${tensor.name}: 1 to 4 dimensions expected`);
        w.string(tensor.name);
        w.u32(tensor.dims.length);
        for (const d of tensor.dims) w.u64(d);
        w.u32(GgmlType[tensor.type]);
        w.u64(offset);
        tensorOffsets.push(offset);
        offset = alignUp(offset + ggmlTensorBytes(tensor.type, tensor.dims), alignment);
    }
    w.zeros(alignUp(w.length, alignment) - w.length);
    return { header: w.bytes(), tensorOffsets, dataBytes: offset };
}

/** Writes a GGUF file, streaming tensor data chunk by chunk. */
export async function writeGguf(path: string, options: WriteGgufOptions): Promise<WriteGgufResult> {
    const alignment = options.alignment ?? GGUF_DEFAULT_ALIGNMENT;
    const { header, tensorOffsets, dataBytes } = buildGgufHeader(options);
    const file = await open(path, "w");
    try {
        await writeAll(file, header);
        let written = header.length;
        if (!options.headerOnly) {
            const padding = new Uint8Array(alignment);
            for (const [i, tensor] of options.tensors.entries()) {
                const start = header.length + tensorOffsets[i]!;
                if (written < start) {
                    await writeAll(file, padding, start - written);
                    written = start;
                }
                const expected = ggmlTensorBytes(tensor.type, tensor.dims);
                if (tensor.data == null) throw new Error(`tensor ${tensor.name} has no data`);
                let got = 0;
                for (const chunk of tensor.data()) {
                    // The producer may reuse its buffer once this write has finished.
                    await writeAll(file, chunk);
                    got += chunk.length;
                }
                if (got !== expected)
                    throw new Error(
                        `tensor ${tensor.name}: produced ${got} bytes, expected ${expected}`,
                    );
                written += got;
            }
            const end = header.length + dataBytes;
            if (written < end) {
                await writeAll(file, padding, end - written);
                written = end;
            }
        }
        return { size: written, dataOffset: header.length, fullSize: header.length + dataBytes };
    } finally {
        await file.close();
    }
}

// ---- f16 and block quantization (same layouts and rounding as ggml's reference quantizers) ----

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** float32 -> IEEE half bits, round to nearest even. */
export function f32ToF16(value: number): number {
    f32Scratch[0] = value;
    const x = u32Scratch[0]!;
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    let mant = x & 0x7fffff;
    if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0);
    const e = exp - 127 + 15;
    if (e >= 0x1f) return sign | 0x7c00;
    if (e <= 0) {
        if (e < -10) return sign;
        mant |= 0x800000;
        const shift = 14 - e;
        let h = mant >>> shift;
        const rem = mant & ((1 << shift) - 1);
        const half = 1 << (shift - 1);
        if (rem > half || (rem === half && (h & 1) !== 0)) h++;
        return sign | h;
    }
    let h = (e << 10) | (mant >>> 13);
    const rem = mant & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && (h & 1) !== 0)) h++; // a carry into the exponent is the correct rounding
    return sign | h;
}

/** IEEE half bits -> number. */
export function f16ToF32(h: number): number {
    const sign = (h & 0x8000) !== 0 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) return sign * mant * 2 ** -24;
    if (exp === 0x1f) return mant !== 0 ? NaN : sign * Infinity;
    return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

const roundHalfAway = (v: number): number => (v < 0 ? -Math.round(-v) : Math.round(v));

/** Quantizes `count` values (a multiple of the block size) of `src` from `srcOffset` into `dst` at `dstOffset`. */
export function quantize(
    type: GgmlTypeName,
    src: ArrayLike<number>,
    srcOffset: number,
    count: number,
    dst: Uint8Array,
    dstOffset: number,
): void {
    const view = new DataView(dst.buffer, dst.byteOffset, dst.byteLength);
    switch (type) {
        case "F32":
            for (let i = 0; i < count; i++)
                view.setFloat32(dstOffset + i * 4, src[srcOffset + i]!, true);
            return;
        case "F16":
            for (let i = 0; i < count; i++)
                view.setUint16(dstOffset + i * 2, f32ToF16(src[srcOffset + i]!), true);
            return;
        case "Q8_0":
            for (let b = 0; b < count / 32; b++) {
                const s = srcOffset + b * 32;
                const o = dstOffset + b * 34;
                let amax = 0;
                for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(src[s + j]!));
                const d = amax / 127;
                const id = d !== 0 ? 1 / d : 0;
                view.setUint16(o, f32ToF16(d), true);
                for (let j = 0; j < 32; j++)
                    view.setInt8(o + 2 + j, roundHalfAway(src[s + j]! * id));
            }
            return;
        case "Q4_0":
            for (let b = 0; b < count / 32; b++) {
                const s = srcOffset + b * 32;
                const o = dstOffset + b * 18;
                // ggml keeps the sign of the largest-magnitude value: it maps to -8.
                let amax = 0;
                let max = 0;
                for (let j = 0; j < 32; j++) {
                    const v = src[s + j]!;
                    if (amax < Math.abs(v)) {
                        amax = Math.abs(v);
                        max = v;
                    }
                }
                const d = max / -8;
                const id = d !== 0 ? 1 / d : 0;
                view.setUint16(o, f32ToF16(d), true);
                for (let j = 0; j < 16; j++) {
                    const x0 = Math.min(15, Math.trunc(src[s + j]! * id + 8.5));
                    const x1 = Math.min(15, Math.trunc(src[s + 16 + j]! * id + 8.5));
                    dst[o + 2 + j] = x0 | (x1 << 4);
                }
            }
            return;
    }
}

/** Inverse of `quantize`: decodes `count` values at `srcOffset` of `src` into `dst` from `dstOffset`. */
export function dequantize(
    type: GgmlTypeName,
    src: Uint8Array,
    srcOffset: number,
    count: number,
    dst: Float32Array,
    dstOffset: number,
): void {
    const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
    switch (type) {
        case "F32":
            for (let i = 0; i < count; i++)
                dst[dstOffset + i] = view.getFloat32(srcOffset + i * 4, true);
            return;
        case "F16":
            for (let i = 0; i < count; i++)
                dst[dstOffset + i] = f16ToF32(view.getUint16(srcOffset + i * 2, true));
            return;
        case "Q8_0":
            for (let b = 0; b < count / 32; b++) {
                const o = srcOffset + b * 34;
                const d = f16ToF32(view.getUint16(o, true));
                for (let j = 0; j < 32; j++)
                    dst[dstOffset + b * 32 + j] = view.getInt8(o + 2 + j) * d;
            }
            return;
        case "Q4_0":
            for (let b = 0; b < count / 32; b++) {
                const o = srcOffset + b * 18;
                const d = f16ToF32(view.getUint16(o, true));
                for (let j = 0; j < 16; j++) {
                    const q = src[o + 2 + j]!;
                    dst[dstOffset + b * 32 + j] = ((q & 0x0f) - 8) * d;
                    dst[dstOffset + b * 32 + 16 + j] = ((q >>> 4) - 8) * d;
                }
            }
            return;
    }
}

/** Encodes a whole float array as `type` (for small tensors such as norms). */
export function encodeTensor(type: GgmlTypeName, values: ArrayLike<number>): Uint8Array {
    const { blockSize, blockBytes } = ggmlTypeTraits[type];
    if (values.length % blockSize !== 0)
        throw new Error(`${values.length} values do not fill whole ${type} blocks`);
    const out = new Uint8Array((values.length / blockSize) * blockBytes);
    quantize(type, values, 0, values.length, out, 0);
    return out;
}
