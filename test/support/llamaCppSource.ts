// The llama.cpp source node-llama-cpp ships: its git bundle at the release's tag, with the patches
// node-llama-cpp applies after its own clone (applyLlamaCppRepoPatches.js). Shared by the GPU
// benchmark's preparation and the llama-server the server tests run.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "./models.js";

export const LLAMA_PACKAGE = join(REPO_ROOT, "node_modules", "node-llama-cpp");

/** The llama.cpp release node-llama-cpp carries, e.g. "b6912". */
export function llamaCppTag(): string {
    const info = JSON.parse(
        readFileSync(join(LLAMA_PACKAGE, "llama", "llama.cpp.info.json"), "utf8"),
    ) as { tag: string };
    return info.tag;
}

/** Clones the source into `destination` (which must not exist) and applies the patches. */
export function cloneLlamaCpp(destination: string, log: (line: string) => void): void {
    const git = (args: string[], cwd = REPO_ROOT) =>
        execFileSync("git", args, { cwd, stdio: ["ignore", "pipe", "inherit"] });
    git([
        "clone",
        "--quiet",
        "--depth",
        "1",
        join(LLAMA_PACKAGE, "llama", "gitRelease.bundle"),
        destination,
    ]);
    const patches = join(LLAMA_PACKAGE, "llama", "patches");
    for (const patch of readdirSync(patches).filter((f) => f.endsWith(".diff"))) {
        try {
            git(["apply", "--check", join(patches, patch)], destination);
        } catch {
            git(["apply", "--reverse", "--check", join(patches, patch)], destination); // already in
            log(`patch ${patch}: already in this release`);
            continue;
        }
        git(["apply", join(patches, patch)], destination);
        log(`patch ${patch}: applied`);
    }
}
