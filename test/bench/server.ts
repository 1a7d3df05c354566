// `npm run bench:server`: N simulated users (1, 4, 8 by default) each asking one question at the
// same moment, against one `llama-server --parallel N` (through the sidecar's remote engine, whose
// scheduler gives each server slot a request) and against the local sidecar (node-llama-cpp, whose
// scheduler runs them on its sequences). Same model file, threads, prompts and greedy decoding on
// both sides. Prints aggregate tokens/s and each user's time to the first token (median and max).
// Usage: node build.mjs && node --import tsx test/bench/server.ts [--shape small|1b] [--users 1,4,8]
//        [--threads N] [--prompt-words N] [--decode-tokens N]
import { parseArgs } from "node:util";
import type { ChatResult } from "../../sidecar/protocol.js";
import { startLlamaServer } from "../support/llamaServer.js";
import { ensureTestModel } from "../support/models.js";
import { SidecarProcess } from "../support/sidecarProcess.js";
import { SHAPES, type ShapeName } from "./options.js";
import { spread } from "./stats.js";

const { values } = parseArgs({
    options: {
        shape: { type: "string", default: "small" },
        users: { type: "string", default: "1,4,8" },
        threads: { type: "string", default: "1" },
        "prompt-words": { type: "string", default: "150" },
        "decode-tokens": { type: "string", default: "64" },
    },
    strict: true,
});
if (!(values.shape! in SHAPES))
    throw new Error(`--shape: one of ${Object.keys(SHAPES).join(", ")}`);
const shape = values.shape as ShapeName;
const userCounts = values.users!.split(",").map(Number);
const threads = Number(values.threads);
const promptWords = Number(values["prompt-words"]);
const decodeTokens = Number(values["decode-tokens"]);
/** Context per user: the prompt, the answer and room to spare. */
const CONTEXT_PER_USER = 1024;

/** Each user's own question (different from the first word, so that no prefix is shared). */
function question(user: number): string {
    const words = Array.from({ length: promptWords }, (_, i) => `w${(i * 7 + user * 13) % 97}`);
    return `User ${user} asks: ${words.join(" ")}?`;
}

interface Run {
    users: number;
    wallMs: number;
    results: ChatResult[];
}

/** All users at once on a loaded sidecar; the wall time runs from the start to the last answer. */
async function runUsers(sidecar: SidecarProcess, users: number, tag: string): Promise<Run> {
    const started = performance.now();
    const results = await Promise.all(
        Array.from({ length: users }, (_, user) =>
            sidecar
                .chat({
                    conversationId: `${tag}-${users}-${user}`,
                    messages: [{ role: "user", content: question(user) }],
                    // Greedy without "~", after which the generated model ends the text: each
                    // answer runs to the limit.
                    sampling: { temperature: 0, maxTokens: decodeTokens, tokenBias: { "~": -100 } },
                })
                .then(({ result }) => result),
        ),
    );
    return { users, wallMs: performance.now() - started, results };
}

/** One warm-up request, so that neither side pays its first-use costs inside the measurement. */
async function warmUp(sidecar: SidecarProcess): Promise<void> {
    await sidecar.chat({
        conversationId: "warm-up",
        messages: [{ role: "user", content: question(999) }],
        sampling: { temperature: 0, maxTokens: 8 },
    });
}

function row(side: string, run: Run): string {
    const tokens = run.results.reduce((n, r) => n + r.usage.completionTokens, 0);
    const ttft = spread(run.results.map((r) => r.timings.timeToFirstTokenMs))!;
    return `| ${run.users} | ${side} | ${(tokens / (run.wallMs / 1000)).toFixed(1)} | ${ttft.median.toFixed(0)} | ${ttft.max.toFixed(0)} | ${(run.wallMs / 1000).toFixed(1)} |`;
}

const modelPath = await ensureTestModel(SHAPES[shape]);
const lines = [
    `Model: generated ${shape} shape (${modelPath.split("/").pop()}), ${threads} threads each side, ` +
        `${promptWords}-word questions, ${decodeTokens} tokens per answer, greedy.`,
    "",
    "| Users | Side | Aggregate tok/s | TTFT median, ms | TTFT max, ms | Wall, s |",
    "|---|---|---|---|---|---|",
];
for (const users of userCounts) {
    const server = await startLlamaServer({
        model: modelPath,
        parallel: users,
        contextSize: CONTEXT_PER_USER * users,
        threads,
    });
    const { sidecar: remote } = await SidecarProcess.start();
    try {
        await remote.request("olmo/load", { server: { url: server.url } });
        await warmUp(remote);
        const run = await runUsers(remote, users, "server");
        lines.push(row(`llama-server --parallel ${users}`, run));
        console.error(lines.at(-1));
    } finally {
        await remote.stop();
        await server.stop();
    }
    const { sidecar: local } = await SidecarProcess.start();
    try {
        await local.request("olmo/load", {
            modelPath,
            threads,
            contextSize: CONTEXT_PER_USER,
        });
        await warmUp(local);
        const run = await runUsers(local, users, "local");
        lines.push(row("local sidecar", run));
        console.error(lines.at(-1));
    } finally {
        await local.stop();
    }
}
console.log(lines.join("\n"));
