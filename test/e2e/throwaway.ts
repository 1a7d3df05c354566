// Throwaway extensions that tests build for themselves (never shipped): written to a folder and
// packaged with the repo's vsce, ready for the harness to install next to the product.
import { spawn } from "node:child_process";
import * as fs from "node:fs/promises";
import * as path from "node:path";
import { REPO_ROOT } from "./harness.js";

/**
 * Writes `files` (relative path -> content; a package.json among them) into `dir` and packages
 * them with vsce; returns the VSIX path. Plain CommonJS needs no build step.
 */
export async function packageThrowawayExtension(
    dir: string,
    files: Record<string, string>,
): Promise<string> {
    for (const [rel, content] of Object.entries(files)) {
        await fs.mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
        await fs.writeFile(path.join(dir, rel), content);
    }
    const { name } = JSON.parse(files["package.json"]) as { name: string };
    const vsix = path.join(dir, `${name}.vsix`);
    const vsce = path.join(REPO_ROOT, "node_modules", "@vscode", "vsce", "vsce");
    const args = [
        vsce,
        "package",
        "--allow-missing-repository",
        "--skip-license",
        "--no-dependencies",
        "--out",
        vsix,
    ];
    const output = await new Promise<string>((resolve, reject) => {
        const child = spawn(process.execPath, args, {
            cwd: dir,
            stdio: ["ignore", "pipe", "pipe"],
        });
        let text = "";
        child.stdout.on("data", (d: Buffer) => (text += d.toString()));
        child.stderr.on("data", (d: Buffer) => (text += d.toString()));
        child.on("error", reject);
        child.on("close", (code) =>
            code === 0
                ? resolve(text)
                : reject(new Error(`vsce package failed (${code}):\n${text}`)),
        );
    });
    await fs.access(vsix).catch(() => {
        throw new Error(`vsce printed no error but wrote no VSIX:\n${output}`);
    });
    return vsix;
}
