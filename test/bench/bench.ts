// `npm run bench`: the product path (the sidecar over JSON-RPC stdio, streaming) against
// node-llama-cpp used directly, on a generated OLMo-2 model: both loaded at once, taking turns
// request by request, the order flipping every round.
// Not part of `npm test`. Progress goes to stderr; the markdown table to stdout; everything
// measured to bench-results/bench.json (or --out). Then rewrites with and without prompt-lookup
// drafts, through the sidecar (speculation.ts).
//   node build.mjs && node --import tsx test/bench/bench.ts [--shape 1b] [--rounds 5] [--threads 1] [--gpu cpu]
import { createReadStream } from "node:fs";
import { mkdir, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import { dirname, resolve } from "node:path";
import { pipeline } from "node:stream/promises";
import { Writable } from "node:stream";
import { ensureTestModel, REPO_ROOT } from "../support/models.js";
import { SIDECAR_PATH } from "../support/sidecarProcess.js";
import { getBenchLlama } from "./baselineSide.js";
import { interleaveMarkdown, runInterleave, summarizeInterleave } from "./interleave.js";
import { machineInfo } from "./machine.js";
import { parseBenchOptions, SHAPES } from "./options.js";
import { markdown, speculationMarkdown, summarize } from "./report.js";
import { runRound, type RoundResult } from "./rounds.js";
import { runSpeculation } from "./speculation.js";
import { measureDraftCeiling } from "./draftCeiling.js";
import { MAX_DRAFT_TOKENS } from "../../sidecar/speculation.js";
import { runThreadSweep } from "./threadSweep.js";
import { buildPrompt } from "./workload.js";

const benchStarted = performance.now();
const log = (line: string) =>
    console.error(
        `[bench ${((performance.now() - benchStarted) / 1000).toFixed(0).padStart(4)} s] ${line}`,
    );

const options = parseBenchOptions(process.argv.slice(2));
await stat(SIDECAR_PATH).catch(() => {
    throw new Error(
        `${SIDECAR_PATH} is missing: run \`node build.mjs\` first (npm run bench does).`,
    );
});

const shape = SHAPES[options.shape];
log(
    `model: ${options.shape} shape (${shape.layers} layers × ${shape.width}, ${shape.type}), generating it unless cached`,
);
const modelPath = await ensureTestModel(shape);
const modelBytes = (await stat(modelPath)).size;
log(`model: ${modelPath} (${(modelBytes / 2 ** 20).toFixed(0)} MiB)`);

const llama = await getBenchLlama(options.gpu);
const machine = await machineInfo(llama);
log(
    `machine: ${machine.cpuModel}, ${machine.cores} cores, load average ${machine.loadAverageAtStart.map((l) => l.toFixed(2)).join(" ")}`,
);

const vocabulary = await llama.loadModel({ modelPath, vocabOnly: true });
const prompt = buildPrompt(vocabulary, options.promptTokens);
// What the sidecar's engine will really use, so that the baseline uses the same.
const settings = {
    modelPath,
    gpu: options.gpu,
    threads: Math.min(options.threads, llama.cpuMathCores),
    // A vocabulary-only model reports a train context of 0: read it from the file instead.
    contextSize: Math.min(
        options.contextSize,
        vocabulary.fileInsights.trainContextSize ?? options.contextSize,
    ),
};
await vocabulary.dispose();
if (settings.threads !== options.threads)
    log(
        `only ${llama.cpuMathCores} cores do math: ${settings.threads} thread(s) per side, as the sidecar would`,
    );

// Both sides map the same file: read it once so that the first round does not pay the disk.
await pipeline(
    createReadStream(modelPath),
    new Writable({ write: (_chunk, _encoding, done) => done() }),
);

const rounds: RoundResult[] = [];
for (let round = 0; round < options.rounds; round++) {
    rounds.push(
        await runRound(round, { llama, settings, prompt, decodeTokens: options.decodeTokens, log }),
    );
}
const sweep =
    options.sweepThreads.length > 0
        ? await runThreadSweep(llama, settings, prompt, options.sweepThreads, log)
        : [];
const interleave = await runInterleave(llama, settings, prompt, log);
const speculation =
    options.speculationRounds > 0
        ? await runSpeculation(settings, options.speculationRounds, log)
        : undefined;
const draftCeiling = speculation
    ? await measureDraftCeiling(llama, settings, MAX_DRAFT_TOKENS, log)
    : undefined;
await llama.dispose();

const summary = summarize({
    rounds,
    sweep,
    modelBytes,
    promptTokens: options.promptTokens,
    decodeTokens: options.decodeTokens,
});
const heading =
    `OLMo Local bench: ${options.shape} shape ${shape.type} (${(modelBytes / 1e9).toFixed(2)} GB), ${options.rounds} rounds (sides take turns request by request), ` +
    `${settings.threads} thread(s) per side, gpu ${options.gpu} (${machine.backend}${machine.gpuNames.length ? `: ${machine.gpuNames.join(", ")}` : ""}), ` +
    `context ${settings.contextSize}. ${machine.cpuModel}, ${machine.cores} cores, ${(machine.ramBytes / 2 ** 30).toFixed(0)} GiB RAM, ` +
    `Node ${machine.node}, node-llama-cpp ${machine.nodeLlamaCpp} (${machine.llamaBinary}); load average ${machine.loadAverageAtStart[0].toFixed(2)} at start, ` +
    `${os.loadavg()[0].toFixed(2)} at end.`;
console.log(markdown(summary, heading));
const interleaveSummary = summarizeInterleave(interleave);
console.log(`\n${interleaveMarkdown(interleaveSummary)}`);
if (speculation)
    console.log(`\n${speculationMarkdown(speculation, options.speculationRounds, draftCeiling)}`);

const outPath = resolve(REPO_ROOT, options.out);
await mkdir(dirname(outPath), { recursive: true });
await writeFile(
    outPath,
    JSON.stringify(
        {
            machine: { ...machine, loadAverageAtEnd: os.loadavg() },
            options,
            settings,
            model: { path: modelPath, bytes: modelBytes, shape },
            wallSeconds: (performance.now() - benchStarted) / 1000,
            ...summary,
            rounds,
            sweepProbes: sweep,
            interleave: { ...interleaveSummary, ...interleave },
            speculation,
            draftCeiling,
        },
        null,
        2,
    ) + "\n",
);
log(`wrote ${outPath}`);
