// `npm run bench:download`: the model download through the sidecar (olmo/download over stdio:
// HTTP, SHA-256 while receiving, write, verify, rename) against curl fetching the same file from
// the same local stand-in for the hub, alternating, median of a few rounds.
//   node --import tsx test/bench/download.ts [--shape tiny|small|1b] [--rounds N]
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ensureTestModel, OLMO2_1B_SHAPE } from "../support/models.js";
import { ModelServer } from "../support/modelServer.js";
import { SidecarProcess } from "../support/sidecarProcess.js";

const { values } = parseArgs({
    options: { shape: { type: "string", default: "1b" }, rounds: { type: "string", default: "3" } },
});
const shape = values.shape === "1b" ? OLMO2_1B_SHAPE : (values.shape as "tiny" | "small");
const rounds = Number(values.rounds);
const repo = "allenai/OLMo-2-bench-GGUF";
const file = "olmo-2-bench.gguf";

const server = await ModelServer.start({ repo, file, path: await ensureTestModel(shape) });
const { sidecar } = await SidecarProcess.start();
const sidecarMBps: number[] = [];
const curlMBps: number[] = [];
try {
    for (let round = 0; round < rounds; round++) {
        const dir = await mkdtemp(join(tmpdir(), "olmo-download-bench-"));
        const sides = [
            async () => {
                const started = performance.now();
                await sidecar.request("olmo/download", {
                    endpoint: server.endpoint,
                    repo,
                    file,
                    directory: join(dir, "sidecar"),
                });
                sidecarMBps.push(server.size / 1e6 / ((performance.now() - started) / 1000));
            },
            async () => {
                const started = performance.now();
                // Asynchronously: the stand-in server runs in this same process.
                await promisify(execFile)("curl", [
                    "-sSfL",
                    "-o",
                    join(dir, "curl.gguf"),
                    `${server.endpoint}/${repo}/resolve/main/${file}`,
                ]);
                curlMBps.push(server.size / 1e6 / ((performance.now() - started) / 1000));
            },
        ];
        // Alternate which side goes first, so that neither always meets a warm page cache.
        for (const side of round % 2 === 0 ? sides : sides.reverse()) await side();
        await rm(dir, { recursive: true, force: true });
    }
} finally {
    await sidecar.stop();
    await server.stop();
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(
    `| ${(server.size / 1e6).toFixed(0)} MB over 127.0.0.1, ${rounds} rounds | median MB/s | min–max |`,
);
console.log("|---|---|---|");
console.log(
    `| sidecar (olmo/download, SHA-256 checked) | ${median(sidecarMBps).toFixed(0)} | ${Math.min(...sidecarMBps).toFixed(0)}–${Math.max(...sidecarMBps).toFixed(0)} |`,
);
console.log(
    `| curl | ${median(curlMBps).toFixed(0)} | ${Math.min(...curlMBps).toFixed(0)}–${Math.max(...curlMBps).toFixed(0)} |`,
);
console.log(
    `| ratio sidecar / curl | ${((median(sidecarMBps) / median(curlMBps)) * 100).toFixed(0)}% | |`,
);
