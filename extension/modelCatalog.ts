// The OLMo models set-up offers, and which one suits this machine. Pure (no vscode): the numbers
// below decide the recommendation; the fit check before a download still reads the real file's
// header (olmo/inspectModel), so a wrong figure here can mislead the advice but never the check.
//
// Every repository and file name was verified in public sources on 2026-12-06 (the sources are
// named per entry); sizes are the hub's where a source gave bytes, else the quantization's usual
// size for that shape, marked "about".

export interface CatalogModel {
    /** Shown as "Download <name>". */
    name: string;
    family: "olmo2" | "olmo3";
    repo: string;
    file: string;
    quantization: string;
    /** File size in bytes (about the size of the weights in VRAM). */
    bytes: number;
    /** Whether `bytes` is the hub's exact figure. */
    exactSize: boolean;
    license: string;
    /** Where the repository and file name were verified. */
    verifiedIn: string;
    trainContext: number;
    /** KV cache per token on the layers that see the whole context (f16). */
    fullKvBytesPerToken: number;
    /** Sliding-window layers: KV per token and the window (OLMo 3: 3 of 4 layers, 4096 tokens). */
    slidingWindow?: { kvBytesPerToken: number; window: number };
}

const KIB = 1024;

/** KV bytes per token and layer: keys and values, f16, kv heads × head size 128. */
const kvPerLayer = (kvHeads: number) => 2 * kvHeads * 128 * 2;

export const DEFAULT_MODEL_ID = "olmo-2-13b";

export const CATALOG: Readonly<Record<string, CatalogModel>> = {
    "olmo-2-13b": {
        name: "OLMo-2 13B Instruct",
        family: "olmo2",
        repo: "allenai/OLMo-2-1124-13B-Instruct-GGUF",
        file: "olmo-2-1124-13B-instruct-Q4_K_M.gguf",
        quantization: "Q4_K_M",
        bytes: 8.35e9,
        exactSize: true,
        license: "Apache-2.0",
        verifiedIn: "the repository's file list (project reference olmo2.md); allenai's own GGUF",
        trainContext: 4096,
        fullKvBytesPerToken: 40 * kvPerLayer(40), // 800 KiB
    },
    "olmo-2-7b": {
        name: "OLMo-2 7B Instruct",
        family: "olmo2",
        repo: "allenai/OLMo-2-1124-7B-Instruct-GGUF",
        file: "olmo-2-1124-7B-instruct-Q4_K_M.gguf",
        quantization: "Q4_K_M",
        bytes: 4_472_020_256,
        exactSize: true,
        license: "Apache-2.0",
        verifiedIn:
            "allenai's own GGUF; file, bytes and SHA-256 pinned at revision 410e006 in a public evaluation repository's tests",
        trainContext: 4096,
        fullKvBytesPerToken: 32 * kvPerLayer(32), // 512 KiB
    },
    "olmo-3-7b": {
        name: "OLMo 3 7B Instruct",
        family: "olmo3",
        repo: "bartowski/allenai_Olmo-3-7B-Instruct-GGUF",
        file: "allenai_Olmo-3-7B-Instruct-Q4_K_M.gguf",
        quantization: "Q4_K_M",
        bytes: 4.47e9,
        exactSize: false,
        license: "Apache-2.0",
        verifiedIn:
            "bartowski's quantization of allenai/Olmo-3-7B-Instruct (no allenai GGUF file list could be verified), named in public set-up scripts",
        trainContext: 65536,
        fullKvBytesPerToken: 8 * kvPerLayer(32),
        slidingWindow: { kvBytesPerToken: 24 * kvPerLayer(32), window: 4096 },
    },
    "olmo-3-32b": {
        name: "OLMo 3.1 32B Instruct",
        family: "olmo3",
        repo: "unsloth/Olmo-3.1-32B-Instruct-GGUF",
        file: "Olmo-3.1-32B-Instruct-Q4_K_M.gguf",
        quantization: "Q4_K_M",
        bytes: 19.5e9,
        exactSize: false,
        license: "Apache-2.0",
        verifiedIn:
            "unsloth's quantization of allenai/Olmo-3.1-32B-Instruct, named in public llama.cpp configurations (no allenai GGUF could be verified)",
        trainContext: 65536,
        fullKvBytesPerToken: 16 * kvPerLayer(8),
        slidingWindow: { kvBytesPerToken: 48 * kvPerLayer(8), window: 4096 },
    },
};

/** What the machine has, as measured (the sidecar's VRAM and RAM, the models folder's disk). */
export interface Machine {
    /** Free VRAM in bytes; 0 without a GPU backend. */
    freeVramBytes: number;
    freeRamBytes: number;
    freeDiskBytes: number;
    /** Apple silicon: weights and cache live in the same memory as everything else. */
    unifiedMemory?: boolean;
}

/** Compute buffers and the desktop's share of VRAM, on top of weights and KV cache. */
const OVERHEAD_BYTES = 1.0 * 2 ** 30;
/** Below this the model is of little use for chat with code in it. */
export const USEFUL_CONTEXT = 4096;
/** Context steps tried, largest first. */
const CONTEXT_STEPS = [65536, 32768, 16384, 8192, 4096];

export function kvBytes(model: CatalogModel, context: number): number {
    const swa = model.slidingWindow;
    return (
        model.fullKvBytesPerToken * context +
        (swa ? swa.kvBytesPerToken * Math.min(context, swa.window) : 0)
    );
}

export function memoryNeeded(model: CatalogModel, context: number): number {
    return model.bytes + kvBytes(model, context) + OVERHEAD_BYTES;
}

/** The largest context step (≥ USEFUL_CONTEXT) that fits in `bytes` with the whole model, or 0. */
export function largestContext(model: CatalogModel, bytes: number): number {
    for (const context of CONTEXT_STEPS) {
        if (context <= model.trainContext && memoryNeeded(model, context) <= bytes) return context;
    }
    return 0;
}

/** Whether set-up offers the model here at all: the disk holds it, and VRAM plus RAM run it. */
export function canHold(model: CatalogModel, machine: Machine): boolean {
    const memory = machine.unifiedMemory
        ? machine.freeRamBytes
        : machine.freeVramBytes + machine.freeRamBytes;
    return machine.freeDiskBytes >= model.bytes && memory >= memoryNeeded(model, USEFUL_CONTEXT);
}

export interface Recommendation {
    id: string;
    /** One line: why this one. */
    reason: string;
}

/** Preference at full GPU speed: the most capable that fits with a useful context. */
const GPU_ORDER = ["olmo-3-32b", "olmo-2-13b", "olmo-3-7b", "olmo-2-7b"];
/** On the CPU speed is memory bandwidth per token: the 7Bs answer about twice as fast as the 13B. */
const CPU_ORDER = ["olmo-3-7b", "olmo-2-7b", "olmo-2-13b"];

export function recommend(machine: Machine): Recommendation {
    const vram = machine.unifiedMemory ? machine.freeRamBytes : machine.freeVramBytes;
    const where = machine.unifiedMemory ? "unified memory" : "GPU";
    for (const id of GPU_ORDER) {
        const model = CATALOG[id]!;
        if (machine.freeDiskBytes < model.bytes) continue;
        const context = largestContext(model, vram);
        if (context > 0)
            return {
                id,
                reason: `fits your ${gb(vram)} ${where} with a ${contextLabel(context)} context`,
            };
    }
    const thirteen = CATALOG[DEFAULT_MODEL_ID]!;
    for (const id of CPU_ORDER) {
        const model = CATALOG[id]!;
        if (!canHold(model, machine)) continue;
        const reason =
            vram <= 0
                ? `no GPU found: on the CPU a 7B answers about twice as fast as the 13B`
                : `the ${thirteen.name.replace(/ Instruct$/, "")} would run ${partLabel(thirteen, vram)} on the CPU here`;
        return {
            id,
            reason: id === DEFAULT_MODEL_ID ? `${reason}; the smallest that fits` : reason,
        };
    }
    return {
        id: DEFAULT_MODEL_ID,
        reason: `none fits the ${gb(machine.freeRamBytes)} of free RAM and ${gb(machine.freeDiskBytes)} of free disk; it will be slow or fail`,
    };
}

function partLabel(model: CatalogModel, vram: number): string {
    const share = Math.max(0, vram - OVERHEAD_BYTES) / memoryNeeded(model, USEFUL_CONTEXT);
    return share >= 0.4 ? "half" : "mostly";
}

function contextLabel(context: number): string {
    return `${context / KIB}k`;
}

function gb(bytes: number): string {
    return `${Math.round(bytes / 1e9)} GB`;
}
