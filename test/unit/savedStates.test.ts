import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { stateDirectory } from "../../sidecar/savedStates.js";

const exists = (path: string) =>
    stat(path).then(
        () => true,
        () => false,
    );

describe("unit: saved conversation states", () => {
    test("a new state folder sweeps away the folders of processes that are gone", async () => {
        // A pid that was just in use and is now free: a finished child's.
        const gonePid = spawnSync(process.execPath, ["-e", "process.exit(0)"]).pid;
        const stale = join(tmpdir(), `olmo-local-state-${gonePid}-test`);
        const living = join(tmpdir(), `olmo-local-state-${process.ppid}-test`);
        await mkdir(stale, { recursive: true });
        await mkdir(living, { recursive: true });
        let created: string | undefined;
        try {
            created = await stateDirectory();
            assert.equal(await exists(stale), false, "a dead process's states are deleted");
            assert.equal(await exists(living), true, "a living process's states are kept");
            assert.match(basename(created), new RegExp(`^olmo-local-state-${process.pid}-`));
        } finally {
            for (const path of [stale, living, created])
                if (path) await rm(path, { recursive: true, force: true });
        }
    });
});
