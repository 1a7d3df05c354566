// Which workspace files .gitignore leaves out, asked of git itself (`git check-ignore`): VS Code
// 1.100's findFiles applies files.exclude and an exclude glob but not .gitignore (findFiles2's
// useIgnoreFiles is a proposed API), and git's own answer covers nested .gitignore files,
// .git/info/exclude and the global excludes file. Without git, or outside a repository, nothing is
// left out, and the log says why.
import { spawn } from "node:child_process";

/** The paths (relative to `folder`) that git ignores; empty when git is absent or `folder` is no repository. */
export function gitIgnoredPaths(
    folder: string,
    relativePaths: readonly string[],
    log: (message: string) => void,
): Promise<Set<string>> {
    if (relativePaths.length === 0) return Promise.resolve(new Set());
    return new Promise((resolve) => {
        const git = spawn("git", ["-C", folder, "check-ignore", "--stdin", "-z"], {
            stdio: ["pipe", "pipe", "pipe"],
        });
        let out = "";
        let err = "";
        git.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
        git.stderr.setEncoding("utf8").on("data", (chunk: string) => (err += chunk));
        git.on("error", (error) => {
            log(`attachments: .gitignore not applied (git could not run: ${error.message})`);
            resolve(new Set());
        });
        git.on("close", (code) => {
            // 0: some paths are ignored; 1: none is; anything else: no repository, or git failed.
            if (code === 0 || code === 1) resolve(new Set(out.split("\0").filter(Boolean)));
            else {
                log(`attachments: .gitignore not applied in ${folder}: ${err.trim()}`);
                resolve(new Set());
            }
        });
        git.stdin.on("error", () => undefined);
        git.stdin.end(relativePaths.join("\0") + "\0");
    });
}
