// Model files: the checks a local GGUF passes before it is loaded, and the model-file requests
// (inspecting a local or remote GGUF for fit before loading or downloading it, and downloading one
// into the models folder).
import { open, stat } from "node:fs/promises";
import os from "node:os";
import { GgufInsights, readGgufFileInfo, type GgufFileInfo, type Llama } from "node-llama-cpp";
import { downloadModel, resolveUrl } from "./download.js";
import { BASELINE_CONTEXT_SIZE } from "./defaults.js";
import { errorText, SidecarError } from "./errors.js";
import { estimateFit } from "./fitEstimate.js";
import type {
    DownloadParams,
    DownloadResult,
    InspectModelParams,
    InspectModelResult,
} from "./protocol.js";

export async function inspectModel(
    llama: Llama,
    params: InspectModelParams,
    signal?: AbortSignal,
): Promise<InspectModelResult> {
    const where = params.source
        ? resolveUrl({ endpoint: params.source.endpoint ?? defaultEndpoint(), ...params.source })
        : params.path;
    if (!where)
        throw new SidecarError("invalidParams", "olmo/inspectModel needs a path or a source.");
    let info;
    try {
        // Over HTTP this reads only the header, with range requests.
        info = await readGgufFileInfo(where, { signal, readTensorInfo: true });
    } catch (error) {
        throw new SidecarError(
            params.source ? "downloadFailed" : "modelInvalid",
            `Could not read the model header of ${where}: ${errorText(error)}`,
        );
    }
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

/** GGUF's fixed start: magic, version, tensor count, metadata entry count. */
const GGUF_PREFIX_BYTES = 24;
/** The smallest tensor description (one-byte name, one dimension), to bound how many a file can hold. */
const MIN_TENSOR_INFO_BYTES = 8 + 1 + 4 + 8 + 4 + 8;
/** The smallest metadata entry (one-byte key, one-byte value). */
const MIN_METADATA_ENTRY_BYTES = 8 + 1 + 4 + 1;

/**
 * Checks a local model file before node-llama-cpp reads it: present, a GGUF whose counts fit its
 * size, an olmo2 architecture, and hyperparameters llama.cpp can take without aborting the process.
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
        await checkCounts(modelPath, info.size);
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

/** The counts at the start of the file, against its size, before anything is allocated for them. */
async function checkCounts(modelPath: string, size: number): Promise<void> {
    const file = await open(modelPath, "r");
    try {
        const { buffer, bytesRead } = await file.read(
            Buffer.alloc(GGUF_PREFIX_BYTES),
            0,
            GGUF_PREFIX_BYTES,
            0,
        );
        if (bytesRead < GGUF_PREFIX_BYTES || buffer.toString("latin1", 0, 4) !== "GGUF")
            throw new Error("it does not start with the GGUF signature");
        const room = BigInt(size - GGUF_PREFIX_BYTES);
        const tensors = buffer.readBigUInt64LE(8);
        if (tensors * BigInt(MIN_TENSOR_INFO_BYTES) > room)
            throw new Error(
                `its header claims ${tensors} tensors, more than a file of ${size} bytes can describe`,
            );
        const entries = buffer.readBigUInt64LE(16);
        if (entries * BigInt(MIN_METADATA_ENTRY_BYTES) > room)
            throw new Error(
                `its header claims ${entries} metadata entries, more than a file of ${size} bytes can hold`,
            );
    } finally {
        await file.close();
    }
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
