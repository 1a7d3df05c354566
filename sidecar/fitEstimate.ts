// Will this model fit? Before a download (from the remote header) or a load: the weights and the
// KV cache against the free VRAM and RAM, using node-llama-cpp's own estimates, with a plain
// verdict and a suggestion when it does not fit.
import type { GgufInsights } from "node-llama-cpp";
import type { ModelFit } from "./protocol.js";

export interface MemoryState {
    /** Free VRAM in bytes; 0 without a GPU backend. */
    freeVram: number;
    freeRam: number;
    /** Apple silicon: the GPU maps the file in place, so weights count once, in shared memory. */
    unifiedMemory?: boolean;
}

/**
 * Sliding-window models (OLMo 3) keep only the window on 3 of 4 layers; their evaluated prefix is
 * reused across turns through node-llama-cpp's sequence checkpoints instead of a full-size cache
 * on every layer (`swaFullCache`), which costs four times the KV memory at 65k tokens for the same
 * reuse (README: "OLMo 3 and sliding-window attention"). The estimate counts the same cache.
 */
export const SWA_FULL_CACHE = false;

/** Leave this much VRAM for the desktop and the compute buffers' growth. */
const VRAM_MARGIN = 512 * 2 ** 20;

/** `sequences`: conversations whose KV caches are kept at once, each a full context. */
export function estimateFit(
    insights: GgufInsights,
    contextSize: number,
    memory: MemoryState,
    sequences = 1,
): ModelFit {
    const totalLayers = insights.totalLayers;
    const need = (gpuLayers: number) => {
        const weights = insights.estimateModelResourceRequirements({
            gpuLayers,
            gpuSupportsMmap: memory.unifiedMemory ?? false,
        });
        const context = insights.estimateContextResourceRequirements({
            contextSize,
            modelGpuLayers: gpuLayers,
            swaFullCache: SWA_FULL_CACHE,
            sequences,
        });
        return { vram: weights.gpuVram + context.gpuVram, ram: weights.cpuRam + context.cpuRam };
    };
    const full = need(totalLayers);
    const cpuOnly = need(0);
    const kv = insights.estimateContextResourceRequirements({
        contextSize,
        modelGpuLayers: totalLayers,
        swaFullCache: SWA_FULL_CACHE,
        sequences,
    });
    const base = {
        modelBytes: insights.modelSize,
        totalLayers,
        contextSize,
        contextBytes: kv.gpuVram + kv.cpuRam,
        fullGpuVramBytes: full.vram,
        cpuOnlyRamBytes: cpuOnly.ram,
        freeVramBytes: memory.freeVram,
        freeRamBytes: memory.freeRam,
    };
    const budget = memory.freeVram - VRAM_MARGIN;
    if (budget > 0 && full.vram <= budget && full.ram <= memory.freeRam) {
        return {
            ...base,
            verdict: "gpu",
            gpuLayers: totalLayers,
            message: `Fits in VRAM: all ${totalLayers} layers on the GPU.`,
        };
    }
    // The most layers that fit, by bisection (the estimate grows with the layers).
    let low = 0;
    let high = totalLayers;
    while (low < high) {
        const mid = Math.ceil((low + high) / 2);
        if (need(mid).vram <= budget) low = mid;
        else high = mid - 1;
    }
    const partial = need(low);
    if (low > 0 && partial.ram <= memory.freeRam) {
        return {
            ...base,
            verdict: "partial",
            gpuLayers: low,
            message: `Fits partly: ${low} of ${totalLayers} layers on the GPU, the rest on the CPU (slower). A smaller quantization or context would fit entirely.`,
        };
    }
    if (cpuOnly.ram <= memory.freeRam) {
        return {
            ...base,
            verdict: "cpu",
            gpuLayers: 0,
            message:
                memory.freeVram > 0
                    ? "Does not fit in VRAM: it runs on the CPU, slowly. Choose a smaller quantization or a smaller context to use the GPU."
                    : "No GPU found: it runs on the CPU, slowly.",
        };
    }
    return {
        ...base,
        verdict: "none",
        gpuLayers: 0,
        message: `Does not fit: it needs about ${gib(cpuOnly.ram)} of RAM and ${gib(memory.freeRam)} is free. Choose a smaller quantization (Q3_K_M, Q2_K) or a smaller context.`,
    };
}

/**
 * How many of `wanted` sequences a loaded model can have: all of them when their contexts fit the
 * free memory now (VRAM for the layers on the GPU, with the same margin as above), else one.
 */
export function affordableSequences(
    insights: GgufInsights,
    loaded: { contextSize: number; gpuLayers: number },
    memory: MemoryState,
    wanted: number,
): number {
    if (wanted <= 1) return 1;
    const need = insights.estimateContextResourceRequirements({
        contextSize: loaded.contextSize,
        modelGpuLayers: loaded.gpuLayers,
        sequences: wanted,
    });
    const vramOk = need.gpuVram === 0 || need.gpuVram <= memory.freeVram - VRAM_MARGIN;
    return vramOk && need.cpuRam <= memory.freeRam ? wanted : 1;
}

function gib(bytes: number): string {
    return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}
