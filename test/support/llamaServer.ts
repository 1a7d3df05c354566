// llama.cpp's llama-server for the server tests and bench:server: built once (CPU only) from the
// llama.cpp source node-llama-cpp ships, linked against node-llama-cpp's prebuilt libraries, into
// a fixed folder of the test cache next to code-server
// (~/.cache/olmo-local/llama-server-<tag>-r<recipe>/), and started on 127.0.0.1 on a free port.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import {
    copyFileSync,
    existsSync,
    mkdirSync,
    openSync,
    readdirSync,
    readFileSync,
    renameSync,
    rmSync,
    writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { cacheRoot } from "../e2e/codeserver.js";
import { cloneLlamaCpp, llamaCppTag } from "./llamaCppSource.js";
import { REPO_ROOT } from "./models.js";

const log = (line: string) => process.stderr.write(`[llama-server] ${line}\n`);

/** Bumped whenever the build recipe changes, so that a binary cached by an older one is rebuilt. */
const BUILD_RECIPE = 2;

export function llamaServerDir(): string {
    return join(cacheRoot(), `llama-server-${llamaCppTag()}-r${BUILD_RECIPE}`);
}

/**
 * Starts the build in the background when the cache lacks the binary (test/prepare.ts: the build
 * then overlaps the tests that come before the server tests), logging to build.log in the folder.
 * Returns false when the binary is already there.
 */
export function startLlamaServerBuild(): boolean {
    const dir = llamaServerDir();
    if (existsSync(join(dir, "llama-server")) || buildRunning(dir) !== undefined) return false;
    mkdirSync(dir, { recursive: true });
    const logFile = openSync(join(dir, "build.log"), "w");
    const child = spawn(
        "nice",
        [
            "-n",
            "19",
            process.execPath,
            "--import",
            "tsx",
            fileURLToPath(import.meta.url),
            "--build",
        ],
        { detached: true, stdio: ["ignore", logFile, logFile] },
    );
    child.unref();
    writeFileSync(join(dir, "build.pid"), String(child.pid));
    return true;
}

/** The pid of a background build still running, if any. */
function buildRunning(dir: string): number | undefined {
    const pid = Number(readFileSafe(join(dir, "build.pid")));
    if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
    try {
        process.kill(pid, 0);
        return pid;
    } catch {
        return undefined;
    }
}

function readFileSafe(path: string): string {
    try {
        return readFileSync(path, "utf8");
    } catch {
        return "";
    }
}

/**
 * The llama-server binary: the cached one, the one a background build (startLlamaServerBuild) is
 * making, once it ends, or one built here and now.
 */
export async function ensureLlamaServer(): Promise<string> {
    const dir = llamaServerDir();
    const binary = join(dir, "llama-server");
    if (existsSync(binary)) return binary;
    const pid = buildRunning(dir);
    if (pid !== undefined) {
        log(`waiting for the background build (pid ${pid}, log ${join(dir, "build.log")})`);
        while (buildRunning(dir) === pid) await new Promise((resolve) => setTimeout(resolve, 1000));
        if (existsSync(binary)) return binary;
        throw new Error(
            `the background llama-server build failed:\n${readFileSafe(join(dir, "build.log")).slice(-4000)}`,
        );
    }
    await buildLlamaServer();
    return binary;
}

/**
 * node-llama-cpp's prebuilt shared libraries of the same llama.cpp release: llama, ggml, the CPU
 * backend variants ggml picks from at run time, and llama-common (which also holds cpp-httplib).
 */
const PREBUILT_LIBS = join(
    REPO_ROOT,
    "node_modules",
    "@node-llama-cpp",
    `${process.platform}-${process.arch}`,
    "bins",
    `${process.platform}-${process.arch}`,
);

/** What the binary links against; the other prebuilt libraries are ggml's CPU backends. */
const LINKED_LIBS = [
    "libllama-common.so",
    `libllama.${llamaCppTag()}.so`,
    `libggml.${llamaCppTag()}.so`,
    "libggml-base.so",
];

/** The CMake targets whose sources llama-server needs beyond node-llama-cpp's libraries. */
const COMPILED_TARGETS =
    /\/CMakeFiles\/(server-context|llama-server-impl|llama-server|mtmd|vendor-hash)\.dir\//;

/**
 * Builds llama-server (a few minutes on 2 cores; under `nice`, as everything heavy here): only
 * the server's own sources, multimodal support (mtmd) and a hash are compiled, with the flags of
 * the tree's own CMake configuration, and linked against node-llama-cpp's prebuilt libraries,
 * copied next to the binary (found by its `$ORIGIN` rpath, and ggml loads its CPU backends from
 * there). The cloned source is kept for an interrupted build to resume; the binary is moved
 * into place only when it is complete.
 */
async function buildLlamaServer(): Promise<void> {
    if (!existsSync(join(PREBUILT_LIBS, LINKED_LIBS[0])))
        throw new Error(
            `llama-server links against node-llama-cpp's prebuilt libraries, but ${PREBUILT_LIBS} lacks them (npm ci installs them)`,
        );
    const dir = llamaServerDir();
    const started = performance.now();
    mkdirSync(dir, { recursive: true });
    const source = join(dir, "source");
    if (!existsSync(join(source, "CMakeLists.txt"))) {
        rmSync(source, { recursive: true, force: true });
        log(`llama.cpp ${llamaCppTag()}: cloning node-llama-cpp's git bundle`);
        cloneLlamaCpp(source, log);
    }
    const build = join(dir, "build");
    const cmake = (args: string[]) =>
        execFileSync("nice", ["-n", "19", "cmake", ...args], {
            stdio: ["ignore", "inherit", "inherit"],
        });
    // No OpenSSL: node-llama-cpp's cpp-httplib, which the server links against, is built without.
    // No web UI: the tests start the server with --no-webui.
    cmake([
        "-S",
        source,
        "-B",
        build,
        "-DCMAKE_BUILD_TYPE=Release",
        "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON",
        "-DLLAMA_CURL=OFF",
        "-DLLAMA_OPENSSL=OFF",
        "-DLLAMA_BUILD_UI=OFF",
        "-DLLAMA_USE_PREBUILT_UI=OFF",
        "-DLLAMA_BUILD_TESTS=OFF",
        "-DLLAMA_BUILD_EXAMPLES=OFF",
        "-DLLAMA_BUILD_SERVER=ON",
    ]);
    // The (empty) web UI's generated sources and library: nothing of llama or ggml.
    cmake(["--build", build, "--target", "llama-ui", "-j2"]);
    const compiles = (
        JSON.parse(readFileSync(join(build, "compile_commands.json"), "utf8")) as {
            directory: string;
            command: string;
        }[]
    )
        .map((entry) => ({ ...entry, output: / -o (\S+) /.exec(entry.command)?.[1] ?? "" }))
        .filter((entry) => COMPILED_TARGETS.test(`/${entry.output}`));
    if (!compiles.some((entry) => entry.output.includes("/llama-server.dir/")))
        throw new Error(
            `llama.cpp ${llamaCppTag()}'s CMake configuration has no llama-server target (${build})`,
        );
    await compileTwoAtATime(compiles);
    const objects = compiles.map((entry) => join(entry.directory, entry.output));
    for (const lib of readdirSync(PREBUILT_LIBS).filter((f) => f.endsWith(".so")))
        copyFileSync(join(PREBUILT_LIBS, lib), join(dir, lib));
    const linked = join(build, "llama-server");
    execFileSync(
        "nice",
        [
            "-n",
            "19",
            "c++",
            "-o",
            linked,
            ...objects,
            join(build, "tools", "ui", "libllama-ui.a"),
            ...LINKED_LIBS.map((lib) => join(dir, lib)),
            "-Wl,-rpath,$ORIGIN",
            "-pthread",
        ],
        { stdio: ["ignore", "inherit", "inherit"] },
    );
    renameSync(linked, join(dir, "llama-server"));
    log(
        `built in ${((performance.now() - started) / 1000).toFixed(0)} s: ${join(dir, "llama-server")}`,
    );
}

/** Runs the compiler commands two at a time (this machine's cores); rejects on the first failure. */
async function compileTwoAtATime(
    compiles: { directory: string; command: string }[],
): Promise<void> {
    const queue = [...compiles];
    const worker = async () => {
        for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
            const { directory, command } = next;
            const child = spawn("nice", ["-n", "19", "sh", "-c", command], {
                cwd: directory,
                stdio: ["ignore", "inherit", "inherit"],
            });
            const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
            if (code !== 0) throw new Error(`compiling failed (exit ${code}): ${command}`);
        }
    };
    await Promise.all([worker(), worker()]);
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv.includes("--build")) {
    try {
        await buildLlamaServer();
    } finally {
        rmSync(join(llamaServerDir(), "build.pid"), { force: true });
    }
}

export async function freePort(): Promise<number> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    await new Promise((resolve) => server.close(resolve));
    if (address === null || typeof address === "string") throw new Error("no port");
    return address.port;
}

export interface LlamaServerOptions {
    model: string;
    /** Parallel slots (`--parallel`); each gets contextSize / parallel tokens of context. */
    parallel?: number;
    /** Total context (`--ctx-size`) over all slots. */
    contextSize?: number;
    apiKey?: string;
    threads?: number;
    /** The model id the server answers to (`--alias`). */
    alias?: string;
}

export interface RunningLlamaServer {
    url: string;
    process: ChildProcess;
    /** The server's log so far (stderr and stdout). */
    output(): string;
    stop(): Promise<void>;
}

/** Starts llama-server on 127.0.0.1 on a free port and resolves once `/health` answers 200. */
export async function startLlamaServer(options: LlamaServerOptions): Promise<RunningLlamaServer> {
    const binary = await ensureLlamaServer();
    const port = await freePort();
    const args = [
        "--model",
        options.model,
        "--host",
        "127.0.0.1",
        "--port",
        String(port),
        "--parallel",
        String(options.parallel ?? 1),
        "--ctx-size",
        String(options.contextSize ?? 4096 * (options.parallel ?? 1)),
        "--threads",
        String(options.threads ?? 1),
        "--no-webui",
        ...(options.alias ? ["--alias", options.alias] : []),
        ...(options.apiKey ? ["--api-key", options.apiKey] : []),
    ];
    const child = spawn(binary, args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const collect = (chunk: Buffer) => {
        output = (output + chunk.toString()).slice(-200_000);
    };
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
    const url = `http://127.0.0.1:${port}`;
    const server: RunningLlamaServer = {
        url,
        process: child,
        output: () => output,
        async stop() {
            if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
            await exited;
        },
    };
    // /health answers 503 while the model loads and refuses connections before it listens.
    for (;;) {
        const early = await Promise.race([
            exited.then((code) => ({ code })),
            fetch(`${url}/health`).then(
                (r) => ({ status: r.status }),
                () => ({ status: 0 }),
            ),
        ]);
        if ("code" in early)
            throw new Error(`llama-server exited with ${early.code}:\n${output.slice(-4000)}`);
        if (early.status === 200) return server;
        await new Promise((resolve) => setTimeout(resolve, 100));
    }
}
