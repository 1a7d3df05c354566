// The model-file requests: inspecting a local or remote GGUF for fit before loading or
// downloading it, and downloading one into the models folder.
import os from "node:os";
import { GgufInsights, readGgufFileInfo, type Llama } from "node-llama-cpp";
import { downloadModel, resolveUrl } from "./download.js";
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
    const fit = estimateFit(insights, params.contextSize ?? 4096, {
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
