// The GPU benchmark's table (run.sh, last step): llama.cpp's own llama-bench, node-llama-cpp alone
// and the sidecar over JSON-RPC, each against the memory-bandwidth ceiling: decoding reads every
// weight once per token, so no backend decodes faster than bandwidth ÷ model bytes.
//   node test/bench/gpu/ceiling.mjs --llama-bench llama-bench.json --bench bench.json
//     --device NAME [--bandwidth BYTES_PER_S] [--bandwidth-source TEXT]
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import type { Figure } from "../report.js";
import type { SpeculationCaseSummary } from "../speculation.js";
import { formatRatio, formatSpread } from "../report.js";

/** Peak memory bandwidth by the name nvidia-smi prints, bytes/s (the vendors' data sheets). */
const GPU_BANDWIDTH: readonly [name: string, bytesPerSecond: number][] = [
    ["NVIDIA H200", 4.8e12],
    ["NVIDIA H100 NVL", 3.9e12],
    ["NVIDIA H100 80GB HBM3", 3.35e12], // SXM
    ["NVIDIA H100 PCIe", 2.0e12],
    ["NVIDIA A100-SXM4-80GB", 2.039e12],
    ["NVIDIA A100 80GB PCIe", 1.935e12],
    ["NVIDIA A100-SXM4-40GB", 1.555e12],
    ["NVIDIA A100-PCIE-40GB", 1.555e12],
    ["NVIDIA L40S", 0.864e12],
    ["NVIDIA GeForce RTX 4090", 1.008e12],
    ["NVIDIA GeForce RTX 3090", 0.936e12],
];

/** The fields of one llama-bench `-o json` test this table reads. */
interface LlamaBenchTest {
    n_prompt: number;
    n_gen: number;
    avg_ts: number;
    stddev_ts: number;
    model_size: number;
    backends: string;
    build_commit: string;
}

interface BenchJson {
    model: { bytes: number; shape: { name: string; layers: number; width: number; type: string } };
    machine: { backend: string; gpuNames: string[]; llamaBinary: string };
    figures: Figure[];
    speculation?: { decodeTokens: number; cases: SpeculationCaseSummary[] };
}

function fail(message: string): never {
    console.error(`ceiling: ${message}`);
    process.exit(2);
}

const { values } = parseArgs({
    options: {
        "llama-bench": { type: "string" },
        bench: { type: "string" },
        device: { type: "string" },
        bandwidth: { type: "string" },
        "bandwidth-source": { type: "string" },
    },
    strict: true,
});
if (!values["llama-bench"] || !values.bench || !values.device)
    fail("--llama-bench, --bench and --device are required");
const device = values.device;
let bandwidth: number;
let bandwidthSource = values["bandwidth-source"] ?? "given";
if (values.bandwidth != null) {
    bandwidth = Number(values.bandwidth);
    if (!(bandwidth > 0))
        fail(`--bandwidth must be a positive number of bytes/s, not ${values.bandwidth}`);
} else {
    const known = GPU_BANDWIDTH.find(([name]) => device.startsWith(name));
    if (!known)
        fail(`no known bandwidth for "${device}": set BANDWIDTH (bytes/s) from its data sheet`);
    bandwidth = known[1];
    bandwidthSource = "data sheet";
}

const llamaBench = JSON.parse(readFileSync(values["llama-bench"], "utf8")) as LlamaBenchTest[];
const bench = JSON.parse(readFileSync(values.bench, "utf8")) as BenchJson;
const prompt = llamaBench.find((t) => t.n_prompt > 0 && t.n_gen === 0);
const generation = llamaBench.find((t) => t.n_gen > 0 && t.n_prompt === 0);
if (!prompt || !generation)
    fail(`${values["llama-bench"]} lacks a prompt test or a generation test`);
const figure = (key: string) => {
    const found = bench.figures.find((f) => f.key === key);
    if (!found) fail(`${values.bench} has no figure ${key}`);
    return found;
};
const prefill = figure("prefillTokensPerSecond");
const decode = figure("decodeTokensPerSecond");
const followUp = figure("followUpTimeToFirstTokenMs");

const ceiling = bandwidth / bench.model.bytes;
const ofCeiling = (tokensPerSecond: number | undefined) =>
    tokensPerSecond == null ? "—" : `${((100 * tokensPerSecond) / ceiling).toFixed(1)}%`;
const ofAnchor = (tokensPerSecond: number | undefined) =>
    tokensPerSecond == null ? "—" : `${((100 * tokensPerSecond) / generation.avg_ts).toFixed(1)}%`;
const shape = bench.model.shape;

const lines = [
    `${device}: ${(bandwidth / 1e9).toFixed(0)} GB/s (${bandwidthSource}); backend ${bench.machine.backend} ` +
        `(node-llama-cpp: ${bench.machine.llamaBinary}${bench.machine.gpuNames.length ? `, ${bench.machine.gpuNames.join(", ")}` : ""}; llama-bench: ${generation.backends}, llama.cpp ${generation.build_commit}).`,
    `Model: ${shape.name} (${shape.layers} layers × ${shape.width}, ${shape.type}), ${(bench.model.bytes / 1e9).toFixed(2)} GB: ` +
        `ceiling ${ceiling.toFixed(1)} tok/s (bandwidth ÷ model bytes).`,
    "",
    "| Path | Prefill tok/s (512-token prompt) | Decode tok/s (128 tokens) | Decode / ceiling | Decode / llama-bench |",
    "|---|---|---|---|---|",
    `| llama-bench (pp512, tg128): mean ± sd | ${prompt.avg_ts.toFixed(1)} ± ${prompt.stddev_ts.toFixed(1)} | ` +
        `${generation.avg_ts.toFixed(2)} ± ${generation.stddev_ts.toFixed(2)} | ${ofCeiling(generation.avg_ts)} | 100% |`,
    ...(["baseline", "product"] as const).map(
        (side) =>
            `| ${side === "baseline" ? "node-llama-cpp alone" : "sidecar over JSON-RPC"}: median (min–max) | ` +
            `${formatSpread(prefill[side], 1)} | ${formatSpread(decode[side], 2)} | ${ofCeiling(decode[side]?.median)} | ${ofAnchor(decode[side]?.median)} |`,
    ),
    "",
    `Sidecar / node-llama-cpp, per round: prefill ${formatRatio(prefill.ratio)}, decode ${formatRatio(decode.ratio)}; ` +
        `chat follow-up TTFT with KV reuse ${formatSpread(followUp.product, 0)} ms (node-llama-cpp alone ${formatSpread(followUp.baseline, 0)} ms).`,
];
if (bench.speculation) {
    lines.push(
        "",
        `Rewrites through the sidecar with prompt-lookup drafts (${bench.speculation.decodeTokens}-token answers):`,
        "",
        "| Case | Drafts accepted | Decode tok/s with drafts | With drafts / plain, per round | Same answer |",
        "|---|---|---|---|---|",
        ...bench.speculation.cases.map(
            (c) =>
                `| ${c.case} | ${(100 * c.acceptance).toFixed(1)}% (${c.acceptedDraftTokens}/${c.draftTokens}) | ` +
                `${formatSpread(c.draftedTokensPerSecond, 2)} | ${formatRatio(c.ratio)} | ${c.identical ? "yes" : "NO"} |`,
        ),
    );
}
console.log(lines.join("\n"));
