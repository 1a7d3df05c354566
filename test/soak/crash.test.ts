// The sidecar SIGKILLed at random points, 20 times: while starting, while loading, while
// generating and while idle. After each kill a fresh sidecar must load the same model and answer,
// and the model file (and its folder) must be exactly as before: the sidecar only ever reads it.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { copyFile, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as delayMs } from "node:timers/promises";
import { SidecarProcess } from "../support/sidecarProcess.js";
import { ensureTestModel } from "../support/models.js";
import { Rng } from "../support/olmo2-model.js";

const SEED = Number(process.env.CRASH_SEED ?? 0xc4a5);
const KILLS = 20;
const KINDS = ["starting", "loading", "generating", "idle"] as const;
type Kind = (typeof KINDS)[number];

const load = (modelPath: string) => ({
    modelPath,
    gpu: "cpu" as const,
    contextSize: 1024,
    threads: 1,
});

describe("soak: sidecar crashes", () => {
    let dir: string;
    let modelPath: string;
    let modelHash: string;

    before(async () => {
        dir = await mkdtemp(join(tmpdir(), "olmo-crash-"));
        modelPath = join(dir, "model.gguf");
        await copyFile(await ensureTestModel("tiny"), modelPath);
        modelHash = await sha256(modelPath);
    });
    after(() => rm(dir, { recursive: true, force: true }));

    test(`${KILLS} kills at random points; each time a fresh sidecar loads and answers, and the model file is untouched`, async () => {
        const rng = new Rng(SEED, 0);
        const random = (max: number) => rng.nextU32() % max;
        // Every kind of point equally often, in a seeded order.
        const kinds: Kind[] = Array.from({ length: KILLS }, (_, i) => KINDS[i % KINDS.length]);
        for (let i = kinds.length - 1; i > 0; i--) {
            const j = random(i + 1);
            [kinds[i], kinds[j]] = [kinds[j], kinds[i]];
        }
        let loadMs = 2000;
        const log: string[] = [];
        for (const [n, kind] of kinds.entries()) {
            const victim = SidecarProcess.spawn();
            let point: string;
            if (kind === "starting") {
                const delay = random(300);
                await delayMs(delay);
                point = `${delay} ms after spawn`;
            } else {
                await victim.initialize();
                if (kind === "loading") {
                    // Anywhere from the request's arrival to about when the load would finish.
                    const delay = random(loadMs);
                    void victim.request("olmo/load", load(modelPath)).catch(() => undefined);
                    await delayMs(delay);
                    point = `${delay} ms into a load (${victim.statuses.at(-1)?.state ?? "no status yet"})`;
                } else {
                    const info = await victim.request("olmo/load", load(modelPath));
                    loadMs = Math.max(200, info.loadMs);
                    if (kind === "generating") {
                        const at = 1 + random(30);
                        await new Promise<void>((resolve) => {
                            void victim
                                .chat(
                                    {
                                        conversationId: "c",
                                        messages: [{ role: "user", content: "Go on and on." }],
                                        sampling: { maxTokens: 900, tokenBias: { "~": -100 } },
                                    },
                                    (_t, all) => {
                                        if (all.length === at) resolve();
                                    },
                                )
                                .catch(() => undefined);
                        });
                        point = `at delta ${at} of a chat`;
                    } else {
                        await victim.chat({
                            conversationId: "c",
                            messages: [{ role: "user", content: "hi" }],
                            sampling: { maxTokens: 4 },
                        });
                        const delay = random(200);
                        await delayMs(delay);
                        point = `idle, ${delay} ms after an answer`;
                    }
                }
            }
            victim.child.kill("SIGKILL");
            await victim.exited();
            victim.connection.dispose();
            assert.equal(victim.child.signalCode, "SIGKILL", `kill ${n + 1} (${kind}) landed`);
            log.push(`${kind}: ${point}`);

            assert.equal(
                await sha256(modelPath),
                modelHash,
                `model file unchanged after kill ${n + 1} (${point})`,
            );
            assert.deepEqual(await readdir(dir), ["model.gguf"], "nothing written next to it");
            const { sidecar: fresh } = await SidecarProcess.start();
            try {
                const info = await fresh.request("olmo/load", load(modelPath));
                loadMs = Math.max(200, info.loadMs);
                const { result, deltas } = await fresh.chat({
                    conversationId: "after",
                    messages: [{ role: "user", content: "Are you there?" }],
                    sampling: { temperature: 0, maxTokens: 8 },
                });
                assert.equal(
                    result.usage.completionTokens,
                    8,
                    `a fresh sidecar answers after kill ${n + 1} (${point})`,
                );
                assert.equal(deltas.join(""), result.text);
            } finally {
                await fresh.stop();
            }
        }
        console.log(`# crash seed ${SEED}: ${kinds.length} kills survived: ${log.join("; ")}`);
    });
});

async function sha256(path: string): Promise<string> {
    return createHash("sha256")
        .update(await readFile(path))
        .digest("hex");
}
