// Dev launcher: try a built VSIX in a real VS Code by hand.
//
//   node --import tsx test/e2e/launch.ts <file.vsix> [folder] [--port N] [--vscode 4.100.3|4.139.1]
//
// With a desktop `code` on PATH it installs the VSIX there and opens the folder. Otherwise it
// serves code-server (installed offline into the test cache) with a persistent dev profile under
// .cache/dev-profile/, on 127.0.0.1 only, and stays in the foreground until Ctrl+C.
// It builds nothing: package the VSIX first.

import { spawn } from "node:child_process";
import { accessSync, constants, existsSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as net from "node:net";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { codeServerEnv, ensureCodeServer, type CodeServerVersion } from "./codeserver.js";

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const PROFILE = path.join(REPO_ROOT, ".cache", "dev-profile");

interface Args {
    vsix: string;
    folder: string;
    port: number;
    version: CodeServerVersion;
}

function parseArgs(argv: string[]): Args {
    const positional: string[] = [];
    let port = 8080;
    let version: CodeServerVersion = "4.100.3";
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === "--port") port = Number(argv[++i]);
        else if (a === "--vscode") version = argv[++i] as CodeServerVersion;
        else if (a === "-h" || a === "--help") usage(0);
        else positional.push(a);
    }
    if (positional.length < 1 || !Number.isInteger(port)) usage(2);
    return {
        vsix: path.resolve(positional[0]),
        folder: path.resolve(positional[1] ?? process.cwd()),
        port,
        version,
    };
}

function usage(code: number): never {
    process.stderr.write(
        "usage: node --import tsx test/e2e/launch.ts <file.vsix> [folder] [--port 8080] [--vscode 4.100.3|4.139.1]\n",
    );
    process.exit(code);
}

/** The first executable `name` on PATH. */
function onPath(name: string): string | undefined {
    for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
        const file = path.join(dir, name);
        try {
            accessSync(file, constants.X_OK);
            return file;
        } catch {
            // not here
        }
    }
    return undefined;
}

function runInherit(
    cmd: string,
    args: string[],
    env: NodeJS.ProcessEnv = process.env,
): Promise<number> {
    return new Promise((resolve, reject) => {
        const child = spawn(cmd, args, { stdio: "inherit", env });
        child.on("error", reject);
        child.on("exit", (code, signal) => resolve(code ?? (signal ? 128 : 1)));
    });
}

function portFree(port: number): Promise<boolean> {
    return new Promise((resolve) => {
        const srv = net.createServer();
        srv.once("error", () => resolve(false));
        srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
    });
}

async function firstFreePort(from: number): Promise<number> {
    for (let p = from; p < from + 100; p++) if (await portFree(p)) return p;
    throw new Error(`no free port in ${from}..${from + 99}`);
}

async function desktop(code: string, a: Args): Promise<number> {
    process.stderr.write(`Using desktop VS Code at ${code}\n`);
    const installed = await runInherit(code, ["--install-extension", a.vsix, "--force"]);
    if (installed !== 0) return installed;
    return runInherit(code, [a.folder]);
}

async function codeServer(a: Args): Promise<number> {
    const install = await ensureCodeServer(a.version);
    const dirs = {
        userData: path.join(PROFILE, "user-data"),
        extensions: path.join(PROFILE, "extensions"),
        state: path.join(PROFILE, "state"),
    };
    for (const d of Object.values(dirs)) await fs.mkdir(d, { recursive: true });
    // First run only: the profile is the developer's to change afterwards.
    const settingsFile = path.join(dirs.userData, "User", "settings.json");
    if (!existsSync(settingsFile)) {
        await fs.mkdir(path.dirname(settingsFile), { recursive: true });
        const settings = {
            "workbench.startupEditor": "none",
            "telemetry.telemetryLevel": "off",
            "update.mode": "none",
            "extensions.autoUpdate": false,
            "extensions.autoCheckUpdates": false,
        };
        await fs.writeFile(settingsFile, `${JSON.stringify(settings, null, 2)}\n`);
    }
    const env = codeServerEnv(install, dirs.state);
    const common = ["--user-data-dir", dirs.userData, "--extensions-dir", dirs.extensions];
    const installed = await runInherit(
        install.node,
        [install.entry, ...common, "--install-extension", a.vsix, "--force"],
        env,
    );
    if (installed !== 0) return installed;

    const port = await firstFreePort(a.port);
    const args = [
        install.entry,
        ...common,
        "--auth",
        "none",
        "--bind-addr",
        `127.0.0.1:${port}`,
        "--disable-telemetry",
        "--disable-update-check",
        a.folder,
    ];
    const url = `http://127.0.0.1:${port}/?folder=${encodeURIComponent(a.folder)}`;
    process.stderr.write(
        `\nVS Code (code-server ${a.version}) at ${url}\nProfile: ${PROFILE}\nCtrl+C to stop.\n\n`,
    );
    const child = spawn(install.node, args, { stdio: "inherit", env });
    // Pass Ctrl+C / kill on to the server, then exit with it.
    for (const sig of ["SIGINT", "SIGTERM"] as const) process.on(sig, () => child.kill(sig));
    return new Promise((resolve) =>
        child.on("exit", (code, signal) => resolve(code ?? (signal ? 0 : 1))),
    );
}

async function main(): Promise<number> {
    const a = parseArgs(process.argv.slice(2));
    if (!existsSync(a.vsix)) throw new Error(`VSIX not found: ${a.vsix} (build it first)`);
    const code = onPath("code");
    return code ? desktop(code, a) : codeServer(a);
}

main().then(
    (code) => process.exit(code),
    (e: unknown) => {
        process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
        process.exit(1);
    },
);
