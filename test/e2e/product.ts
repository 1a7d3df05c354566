// The product under test: the VSIX packaged exactly as for the marketplace (linux-x64).
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, renameSync } from "node:fs";
import { join } from "node:path";
import { REPO_ROOT } from "./harness.js";

export const EXTENSION_ID = "olmo-local.olmo-local";
export const TEST_VSIX = join(REPO_ROOT, ".cache", "olmo-local-linux-x64.vsix");

/** Packages the VSIX with vsce (which runs the production build first), replacing the old one only when complete. */
export function packageVsix(): string {
    mkdirSync(join(REPO_ROOT, ".cache"), { recursive: true });
    const partial = `${TEST_VSIX}.${process.pid}.partial.vsix`;
    execFileSync(
        process.execPath,
        [
            join(REPO_ROOT, "node_modules", "@vscode", "vsce", "vsce"),
            "package",
            "--target",
            "linux-x64",
            "--allow-missing-repository",
            "--out",
            partial,
        ],
        {
            cwd: REPO_ROOT,
            stdio: ["ignore", "ignore", "inherit"],
        },
    );
    renameSync(partial, TEST_VSIX);
    return TEST_VSIX;
}

export function requireVsix(): string {
    if (!existsSync(TEST_VSIX))
        throw new Error(
            `${TEST_VSIX} is missing: run \`node --import tsx test/prepare.ts\` (npm test does).`,
        );
    return TEST_VSIX;
}
