// The conversation store's writer SIGKILLed 20 times at random points while it saves: every time,
// a new store (a reloaded window) reads a complete conversation at least as new as the last save
// that was acknowledged, nothing is reported unreadable, and leftover temp files are never read.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { watch } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { ConversationStore } from "../../extension/conversationStore.js";
import { Rng } from "../support/olmo2-model.js";

const SEED = Number(process.env.STORE_KILL_SEED ?? 0x5704e);
const KILLS = 20;
const WRITER = fileURLToPath(new URL("../support/storeWriter.ts", import.meta.url));
const ID = "killed-writer";

/** When to kill: after a random delay, or as soon as a save's temp file appears (inside a write). */
type KillPoint = { afterMs: number } | "whileWriting";

/** Starts the writer, waits for its first acknowledged save, kills it at `point`; returns the last save it acknowledged. */
async function killWriter(folder: string, point: KillPoint): Promise<number> {
    const child = spawn(process.execPath, ["--import", "tsx", WRITER, folder, ID], {
        stdio: ["ignore", "pipe", "inherit"],
    });
    let acknowledged = 0;
    let buffered = "";
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
        child.once("exit", (_code, signal) => resolve(signal)),
    );
    await new Promise<void>((resolve, reject) => {
        child.stdout!.on("data", (chunk: Buffer) => {
            buffered += chunk.toString();
            const lines = buffered.split("\n");
            buffered = lines.pop()!;
            for (const line of lines)
                acknowledged = Number(/^saved (\d+)$/.exec(line)?.[1] ?? acknowledged);
            if (acknowledged > 0) resolve();
        });
        child.once("exit", () => reject(new Error("the writer exited before saving")));
    });
    if (point === "whileWriting") {
        const watcher = watch(folder);
        await new Promise<void>((resolve) =>
            watcher.on("change", (_event, name) => String(name).endsWith(".tmp") && resolve()),
        );
        watcher.close();
    } else {
        await delay(point.afterMs); // the random kill point
    }
    const lastBeforeKill = acknowledged;
    child.kill("SIGKILL");
    assert.equal(await exited, "SIGKILL");
    return lastBeforeKill;
}

describe("soak: conversation store killed mid-write", () => {
    let folder: string;
    before(async () => (folder = await mkdtemp(path.join(tmpdir(), "olmo-store-kill-"))));
    after(() => rm(folder, { recursive: true, force: true }));

    test(`${KILLS} kills of a saving process lose no acknowledged save and leave no unreadable file`, async (t) => {
        const rng = new Rng(SEED, 0);
        const tempFiles = async () =>
            new Set((await readdir(folder)).filter((name) => name.endsWith(".tmp")));
        let cutMidWrite = 0;
        for (let kill = 1; kill <= KILLS; kill++) {
            const tempBefore = await tempFiles();
            const point: KillPoint = kill % 2 ? "whileWriting" : { afterMs: rng.nextU32() % 150 };
            const acknowledged = await killWriter(folder, point);
            // A new temp file that was never renamed: this kill cut a write in the middle.
            if ([...(await tempFiles())].some((name) => !tempBefore.has(name))) cutMidWrite++;
            const reports: string[] = [];
            const stored = await new ConversationStore(folder, (message) =>
                reports.push(message),
            ).get(ID);
            assert.deepEqual(reports, [], `kill ${kill}: nothing unreadable`);
            assert.ok(stored, `kill ${kill}: the conversation is there`);
            // Each run starts from an empty conversation, so the stored one is this run's.
            const saved = stored.messages.length;
            assert.ok(
                saved >= acknowledged,
                `kill ${kill}: ${saved} messages stored, ${acknowledged} acknowledged`,
            );
            assert.ok(
                stored.messages.every((m, i) => m.id === `m${i + 1}`),
                `kill ${kill}: messages complete and in order`,
            );
        }
        t.diagnostic(`${KILLS} kills, ${cutMidWrite} of them in the middle of a write`);
        assert.ok(
            cutMidWrite >= KILLS / 4,
            `only ${cutMidWrite} kills landed mid-write: the test would prove little`,
        );
    });
});
