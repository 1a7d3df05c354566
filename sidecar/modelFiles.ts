// Model files: the checks a local GGUF passes before it is loaded, and the model-file requests
// (inspecting a local or remote GGUF for fit before loading or downloading it, and downloading one
// into the models folder).
import { mkdtemp, open, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import { GgufInsights, readGgufFileInfo, type GgufFileInfo, type Llama } from "node-llama-cpp";
import { BASELINE_CONTEXT_SIZE } from "./defaults.js";
import { downloadModel, fetchRange, inspectRemote, type DownloadSource } from "./download.js";
import { errorText, SidecarError } from "./errors.js";
import { estimateFit } from "./fitEstimate.js";
import type {
    DownloadParams,
    DownloadResult,
    InspectModelParams,
    InspectModelResult,
} from "./protocol.js";

export async function inspectModel(
    getLlama: () => Promise<Llama>,
    params: InspectModelParams,
    signal?: AbortSignal,
): Promise<InspectModelResult> {
    const info = params.source
        ? await readRemoteHeader(
              { endpoint: params.source.endpoint || defaultEndpoint(), ...params.source },
              signal,
          )
        : await readLocalHeader(params.path);
    const llama = await getLlama();
    const insights = await GgufInsights.from(info, llama);
    const vram = llama.gpu ? await llama.getVramState() : undefined;
    const fit = estimateFit(insights, params.contextSize ?? BASELINE_CONTEXT_SIZE, {
        freeVram: vram?.free ?? 0,
        freeRam: os.freemem(),
        unifiedMemory: llama.gpu === "metal",
    });
    return {
        ...fit,
        architecture: info.metadata.general.architecture,
        backend: llama.gpu === false ? "cpu" : llama.gpu,
    };
}

async function readLocalHeader(path: string | undefined): Promise<GgufFileInfo> {
    if (!path)
        throw new SidecarError("invalidParams", "olmo/inspectModel needs a path or a source.");
    const size = (await stat(path).catch(() => undefined))?.size;
    if (size === undefined)
        throw new SidecarError("modelMissing", `Model file not found: ${path}.`);
    try {
        await checkLocalHeader(path, size);
        return await readGgufFileInfo(path, { readTensorInfo: true, logWarnings: false });
    } catch (error) {
        throw new SidecarError(
            "modelInvalid",
            `${path} is not a valid GGUF model (${errorText(error)}).`,
        );
    }
}

/**
 * The header of a file on the hub, fetched with range requests (at most MAX_HEADER_BYTES) and
 * checked before node-llama-cpp parses it from a temporary copy: its own reader would fetch with
 * retries for minutes when offline, and follow redirects to http.
 */
async function readRemoteHeader(
    source: DownloadSource,
    signal?: AbortSignal,
): Promise<GgufFileInfo> {
    const remote = await inspectRemote(source, signal);
    let fetched = Buffer.alloc(0);
    let headerEnd: number;
    try {
        headerEnd = await checkHeaderStructure({
            size: remote.totalBytes,
            read: async (offset, length) => {
                // Reads come in order; fetch what is missing up to the end of this one.
                if (offset + length > fetched.length) {
                    const more = await fetchRange(
                        remote.url,
                        fetched.length,
                        offset + length - fetched.length,
                        signal,
                    );
                    fetched = Buffer.concat([fetched, more]);
                }
                return fetched.subarray(offset, offset + length);
            },
        });
    } catch (error) {
        if (error instanceof SidecarError) throw error;
        throw new SidecarError(
            "modelInvalid",
            `${source.file} on ${new URL(remote.url).host} is not a valid GGUF model (${errorText(error)}).`,
        );
    }
    const dir = await mkdtemp(join(os.tmpdir(), "olmo-header-"));
    try {
        const copy = join(dir, "header.gguf");
        await writeFile(copy, fetched.subarray(0, headerEnd));
        return await readGgufFileInfo(copy, { readTensorInfo: true, logWarnings: false });
    } catch (error) {
        throw new SidecarError(
            "modelInvalid",
            `${source.file} on ${new URL(remote.url).host} is not a valid GGUF model (${errorText(error)}).`,
        );
    } finally {
        await rm(dir, { recursive: true, force: true });
    }
}

/** Where HF_ENDPOINT points, as the Hugging Face tools do, else the hub itself. */
export function defaultEndpoint(): string {
    return process.env.HF_ENDPOINT || "https://huggingface.co";
}

export function download(
    params: DownloadParams,
    onProgress: Parameters<typeof downloadModel>[2],
    signal: AbortSignal,
): Promise<DownloadResult> {
    return downloadModel(
        {
            endpoint: params.endpoint || defaultEndpoint(),
            repo: params.repo,
            file: params.file,
            revision: params.revision,
        },
        params.directory,
        onProgress,
        signal,
        { allowUnverified: params.allowUnverified === true },
    );
}

/** llama.cpp aborts the whole process on an OLMo-2 header outside these (LLAMA_MAX_LAYERS is 512). */
const MAX_LAYERS = 512;

/** What loading needs from a checked header. */
export interface ModelHeader {
    trainContextSize: number;
    blockCount: number;
    /** The header as read: the chat format is told from it (chatWrapper.ts). */
    file: GgufFileInfo;
}

/**
 * The most header (metadata and tensor descriptions) read from a file or fetched from a server: a
 * real OLMo-2 header is about 4 MB, nearly all of it the tokenizer.
 */
const MAX_HEADER_BYTES = 64 * 2 ** 20;
/** What one read of the header takes from the file or the server. */
const HEADER_CHUNK_BYTES = 2 ** 20;
/** GGML_MAX_DIMS: a tensor with more dimensions is not a llama.cpp tensor. */
const MAX_TENSOR_DIMS = 4;
/** GGUF value types with a fixed size, by type id (8 is a string, 9 an array). */
const FIXED_VALUE_BYTES: Record<number, number> = {
    0: 1,
    1: 1,
    2: 2,
    3: 2,
    4: 4,
    5: 4,
    6: 4,
    7: 1,
    10: 8,
    11: 8,
    12: 8,
};
/** The smallest tensor description (one-byte name, one dimension), to bound how many a file can hold. */
const MIN_TENSOR_INFO_BYTES = 8 + 1 + 4 + 8 + 4 + 8;
/** The smallest metadata entry (one-byte key, one-byte value). */
const MIN_METADATA_ENTRY_BYTES = 8 + 1 + 4 + 1;
const STRING_TYPE = 8;
const ARRAY_TYPE = 9;

/** Where the header's bytes come from: a local file, or a server read with range requests. */
export interface HeaderSource {
    /** The file's size in bytes. */
    readonly size: number;
    /** `length` bytes at `offset` (never past `size`). */
    read(offset: number, length: number): Promise<Buffer>;
}

/**
 * Walks the GGUF header before anything else reads it: every count, string length and array length
 * must fit within what is left of the file and of MAX_HEADER_BYTES (node-llama-cpp's reader
 * allocates whatever a length field claims). Returns where the header ends.
 */
export async function checkHeaderStructure(source: HeaderSource): Promise<number> {
    const limit = Math.min(source.size, MAX_HEADER_BYTES);
    let window: Buffer = Buffer.alloc(0);
    let windowStart = 0;
    let at = 0;
    const room = () => limit - at;
    const claim = (what: string, bytes: bigint): number => {
        if (bytes > BigInt(room()))
            throw new Error(
                source.size > MAX_HEADER_BYTES && bytes <= BigInt(source.size - at)
                    ? `${what} at byte ${at} claims ${bytes} bytes, past the ${MAX_HEADER_BYTES / 2 ** 20} MiB a model header may take`
                    : `${what} at byte ${at} claims ${bytes} bytes, but only ${source.size - at} remain in the file`,
            );
        return Number(bytes);
    };
    const take = async (bytes: number): Promise<Buffer> => {
        claim("a field", BigInt(bytes));
        if (at + bytes > windowStart + window.length) {
            windowStart = at;
            window = await source.read(
                at,
                Math.min(Math.max(bytes, HEADER_CHUNK_BYTES), limit - at),
            );
            if (window.length < bytes)
                throw new Error(`the file ends early, at byte ${at + window.length}`);
        }
        const slice = window.subarray(at - windowStart, at - windowStart + bytes);
        at += bytes;
        return slice;
    };
    const u32 = async () => (await take(4)).readUInt32LE(0);
    const u64 = async () => (await take(8)).readBigUInt64LE(0);
    const skip = (what: string, bytes: bigint) => (at += claim(what, bytes));
    const string = async (what: string) => skip(what, await u64());
    const value = async (type: number, what: string, depth: number): Promise<void> => {
        const fixed = FIXED_VALUE_BYTES[type];
        if (fixed !== undefined) return void skip(what, BigInt(fixed));
        if (type === STRING_TYPE) return void (await string(what));
        if (type !== ARRAY_TYPE || depth > 0)
            throw new Error(`${what} has an unknown value type ${type}`);
        const itemType = await u32();
        const count = await u64();
        const itemFixed = FIXED_VALUE_BYTES[itemType];
        if (itemFixed !== undefined)
            return void skip(`${what} (${count} items)`, count * BigInt(itemFixed));
        // Each further item takes at least its own 8-byte length.
        claim(`${what} (${count} items)`, count * 8n);
        for (let i = 0n; i < count; i++) await value(itemType, what, depth + 1);
    };

    if ((await take(4)).toString("latin1") !== "GGUF")
        throw new Error("it does not start with the GGUF signature");
    const version = await u32();
    if (version !== 2 && version !== 3)
        throw new Error(`it is GGUF version ${version}, not 2 or 3`);
    const tensors = await u64();
    const entries = await u64();
    if (tensors * BigInt(MIN_TENSOR_INFO_BYTES) > BigInt(room()))
        throw new Error(
            `its header claims ${tensors} tensors, more than a file of ${source.size} bytes can describe`,
        );
    if (entries * BigInt(MIN_METADATA_ENTRY_BYTES) > BigInt(room()))
        throw new Error(
            `its header claims ${entries} metadata entries, more than a file of ${source.size} bytes can hold`,
        );
    for (let i = 0n; i < entries; i++) {
        const keyAt = at;
        const keyLength = claim(`metadata key ${i}`, await u64());
        const key = (await take(keyLength)).toString("utf8");
        const what =
            keyLength <= 256 ? `the value of ${key}` : `the value of the key at byte ${keyAt}`;
        await value(await u32(), what, 0);
    }
    for (let i = 0n; i < tensors; i++) {
        await string(`the name of tensor ${i}`);
        const dims = await u32();
        if (dims < 1 || dims > MAX_TENSOR_DIMS)
            throw new Error(`tensor ${i} claims ${dims} dimensions (at most ${MAX_TENSOR_DIMS})`);
        skip(`tensor ${i}`, BigInt(dims * 8 + 4 + 8));
    }
    return at;
}

/** A local file as a header source. */
async function checkLocalHeader(modelPath: string, size: number): Promise<void> {
    const file = await open(modelPath, "r");
    try {
        await checkHeaderStructure({
            size,
            read: async (offset, length) => {
                const { buffer, bytesRead } = await file.read(
                    Buffer.alloc(length),
                    0,
                    length,
                    offset,
                );
                return buffer.subarray(0, bytesRead);
            },
        });
    } finally {
        await file.close();
    }
}

/**
 * Checks a local model file before node-llama-cpp reads it: present, a GGUF whose counts and lengths fit
 * its size, an olmo2 architecture, and hyperparameters llama.cpp can take without aborting the process.
 */
export async function checkModelFile(modelPath: string): Promise<ModelHeader> {
    if (typeof modelPath !== "string" || modelPath.trim() === "") {
        throw new SidecarError(
            "modelMissing",
            "No model file is set. Set olmo.modelPath to a .gguf file.",
        );
    }
    const info = await stat(modelPath).catch(() => undefined);
    if (!info)
        throw new SidecarError(
            "modelMissing",
            `Model file not found: ${modelPath}. Check olmo.modelPath.`,
        );
    if (info.isDirectory())
        throw new SidecarError("modelInvalid", `${modelPath} is a folder, not a .gguf file.`);
    if (info.size === 0)
        throw new SidecarError(
            "modelInvalid",
            `${modelPath} is empty (0 bytes); download it again.`,
        );
    let header: GgufFileInfo;
    try {
        await checkLocalHeader(modelPath, info.size);
        header = await readGgufFileInfo(modelPath, { readTensorInfo: true });
        // llama.cpp checks every tensor's bounds too, but with a less helpful message.
        const lastTensorStart =
            header.tensorInfo?.reduce((end, t) => Math.max(end, Number(t.fileOffset)), 0) ?? 0;
        if (lastTensorStart >= info.size) throw new Error("the file ends before its last tensor");
    } catch (error) {
        throw new SidecarError(
            "modelInvalid",
            `${modelPath} is not a valid GGUF model (${errorText(error)}). It may be truncated or another format; download it again.`,
        );
    }
    const architecture = header.metadata.general.architecture;
    if (architecture !== "olmo2") {
        throw new SidecarError(
            "unsupportedArchitecture",
            `${modelPath} is a "${architecture}" model. OLMo Local formats prompts for OLMo-2 (olmo2) models only; choose an OLMo-2 GGUF.`,
        );
    }
    return checkHyperparameters(modelPath, header);
}

/**
 * The OLMo-2 hyperparameters, each within what llama.cpp can take: outside them it aborts the
 * whole process (an assertion, or a division by zero) instead of failing the load.
 */
function checkHyperparameters(modelPath: string, header: GgufFileInfo): ModelHeader {
    const value = (key: string): unknown =>
        key
            .split(".")
            .reduce<unknown>(
                (node, part) =>
                    node !== null && typeof node === "object"
                        ? (node as Record<string, unknown>)[part]
                        : undefined,
                header.architectureMetadata,
            );
    const impossible = (key: string, expected: string): never => {
        const found = value(key);
        throw new SidecarError(
            "modelInvalid",
            `${modelPath} has an impossible header: olmo2.${key} is ${typeof found === "string" ? JSON.stringify(found) : String(found)} (expected ${expected}). ` +
                `The file is damaged or was converted wrongly; download it again.`,
        );
    };
    const whole = (key: string, min: number, max: number): number => {
        const found = value(key);
        return typeof found === "number" && Number.isInteger(found) && found >= min && found <= max
            ? found
            : impossible(key, `a whole number from ${min} to ${max}`);
    };
    const blockCount = whole("block_count", 1, MAX_LAYERS);
    const width = whole("embedding_length", 1, 1 << 16);
    whole("feed_forward_length", 1, 1 << 20);
    const heads = whole("attention.head_count", 1, width);
    if (value("attention.head_count_kv") !== undefined) whole("attention.head_count_kv", 1, heads);
    const trainContextSize = whole("context_length", 1, 1 << 24);
    const epsilon = value("attention.layer_norm_rms_epsilon");
    if (typeof epsilon !== "number" || !(epsilon > 0 && epsilon < 1))
        impossible("attention.layer_norm_rms_epsilon", "a number between 0 and 1");
    const ropeBase = value("rope.freq_base");
    if (
        ropeBase !== undefined &&
        (typeof ropeBase !== "number" || !(ropeBase > 0 && Number.isFinite(ropeBase)))
    )
        impossible("rope.freq_base", "a positive number");
    return { trainContextSize, blockCount, file: header };
}
