// Builds dist/: the extension (CommonJS, `vscode` external), the sidecar (ES module,
// node-llama-cpp external: native binaries must keep their package layout) and the webview script.
// Usage: node build.mjs [--watch] [--minify]
//        node build.mjs --package [target ...]   platform VSIXs into dist-vsix/ (default: all targets)
import * as esbuild from "esbuild";
import { execFileSync } from "node:child_process";
import {
    cpSync,
    existsSync,
    mkdirSync,
    readdirSync,
    readFileSync,
    rmSync,
    writeFileSync,
} from "node:fs";
import { join } from "node:path";

const pkg = JSON.parse(readFileSync(new URL("./package.json", import.meta.url), "utf8"));
const llamaPkg = JSON.parse(
    readFileSync(new URL("./node_modules/node-llama-cpp/package.json", import.meta.url), "utf8"),
);
const watch = process.argv.includes("--watch");
const packageTargets = process.argv.includes("--package")
    ? process.argv.slice(process.argv.indexOf("--package") + 1)
    : undefined;
const minify = process.argv.includes("--minify") || packageTargets !== undefined;

const common = {
    bundle: true,
    sourcemap: "linked",
    minify,
    logLevel: "warning",
    legalComments: "none",
};

const builds = [
    {
        ...common,
        entryPoints: ["extension/extension.ts"],
        outfile: "dist/extension.cjs",
        platform: "node",
        format: "cjs",
        target: "node20",
        // The language client is its own file, required on first use (extension/sidecarClient.ts).
        external: ["vscode", "./sidecarClient.cjs"],
    },
    {
        ...common,
        entryPoints: ["extension/sidecarClient.ts"],
        outfile: "dist/sidecarClient.cjs",
        platform: "node",
        format: "cjs",
        target: "node20",
        external: ["vscode"],
    },
    {
        ...common,
        // Split so that the engine (and node-llama-cpp with it) loads only on first use.
        entryPoints: { sidecar: "sidecar/main.ts" },
        outdir: "dist",
        splitting: true,
        outExtension: { ".js": ".mjs" },
        chunkNames: "sidecar-[name]-[hash]",
        platform: "node",
        format: "esm",
        target: "node20",
        external: ["node-llama-cpp"],
        define: {
            SIDECAR_VERSION: JSON.stringify(pkg.version),
            NODE_LLAMA_CPP_VERSION: JSON.stringify(llamaPkg.version),
        },
        // vscode-languageserver is CommonJS and calls require() for node built-ins.
        banner: {
            js: "import { createRequire as __olmoCreateRequire } from 'node:module'; const require = __olmoCreateRequire(import.meta.url);",
        },
    },
    {
        ...common,
        entryPoints: ["media/chat.ts"],
        outfile: "dist/webview.js",
        platform: "browser",
        format: "iife",
        target: "chrome120",
    },
    {
        // The webview's styles with the codicon font (emitted next to it as dist/codicon.ttf).
        ...common,
        entryPoints: ["media/chat.css"],
        outfile: "dist/webview.css",
        loader: { ".ttf": "file" },
        assetNames: "[name]",
    },
];

// Chunk names carry content hashes: clear the old ones so that only this build's chunks ship.
for (const name of existsSync("dist") ? readdirSync("dist") : []) {
    if (/^sidecar-.*\.mjs(\.map)?$/.test(name)) rmSync(`dist/${name}`);
}

if (watch) {
    for (const options of builds) await (await esbuild.context(options)).watch();
    console.log("watching for changes…");
} else {
    await Promise.all(builds.map((options) => esbuild.build(options)));
}

// Each VSIX carries node-llama-cpp's prebuilt binaries for its own platform only, all pinned to
// the same version (see README, "Packages" for the choice of GPU backends per platform).
const TARGET_BINARIES = {
    "linux-x64": ["linux-x64", "linux-x64-vulkan", "linux-x64-cuda"],
    "linux-arm64": ["linux-arm64"],
    "win32-x64": ["win-x64", "win-x64-vulkan", "win-x64-cuda"],
    "darwin-arm64": ["mac-arm64-metal"],
    "darwin-x64": ["mac-x64"],
};

if (packageTargets) {
    const targets = packageTargets.length > 0 ? packageTargets : Object.keys(TARGET_BINARIES);
    for (const target of targets) packageTarget(target);
}

/**
 * Stages the extension with only `target`'s binaries (fetched from the npm registry when this
 * machine has not installed them) and runs `vsce package --target` there.
 */
function packageTarget(target) {
    const binaries = TARGET_BINARIES[target];
    if (!binaries)
        throw new Error(
            `unknown target ${target}; known: ${Object.keys(TARGET_BINARIES).join(", ")}`,
        );
    const stage = join(".cache", "package", target);
    rmSync(stage, { recursive: true, force: true });
    mkdirSync(stage, { recursive: true });
    const manifest = { ...pkg, scripts: {}, devDependencies: {} }; // already built; nothing to run there
    writeFileSync(join(stage, "package.json"), JSON.stringify(manifest, null, 2));
    for (const file of ["README.md", "CHANGELOG.md", "LICENSE"]) cpSync(file, join(stage, file));
    cpSync("media", join(stage, "media"), {
        recursive: true,
        filter: (f) => !/\.(ts|json)$/.test(f),
    });
    cpSync("dist", join(stage, "dist"), { recursive: true, filter: (f) => !f.endsWith(".map") });

    // node-llama-cpp's runtime dependency tree, without other platforms' binaries or llama.cpp sources.
    const productionDirs = execFileSync("npm", ["ls", "--omit=dev", "--all", "--parseable"], {
        encoding: "utf8",
    })
        .split("\n")
        .map((line) => line.slice(line.indexOf("node_modules")))
        .filter(
            (dir) =>
                dir.startsWith("node_modules/") &&
                !dir.startsWith("node_modules/@node-llama-cpp/") &&
                dir !== "node_modules/typescript",
        );
    for (const dir of productionDirs) {
        cpSync(dir, join(stage, dir), {
            recursive: true,
            filter: (f) =>
                !/node-llama-cpp\/(llama\/(gitRelease\.bundle|addon|cmake|toolchains|xpack|patches|CMakeLists\.txt)|templates)/.test(
                    f,
                ) && !/\/node_modules\/[^/]+\/node_modules$/.test(f),
        });
    }
    for (const binary of binaries) {
        const into = join(stage, "node_modules", "@node-llama-cpp", binary);
        const installed = join("node_modules", "@node-llama-cpp", binary);
        if (existsSync(installed)) {
            cpSync(installed, into, { recursive: true });
            continue;
        }
        const tarball = execFileSync(
            "npm",
            [
                "pack",
                `@node-llama-cpp/${binary}@${llamaPkg.version}`,
                "--pack-destination",
                stage,
                "--silent",
            ],
            { encoding: "utf8" },
        ).trim();
        mkdirSync(into, { recursive: true });
        execFileSync("tar", ["-xzf", join(stage, tarball), "-C", into, "--strip-components=1"]);
        rmSync(join(stage, tarball));
    }
    // The same allow-list as `vsce package` in the repository, with this target's binaries.
    const allowList = readFileSync(".vscodeignore", "utf8")
        .split("\n")
        .filter((line) => !line.startsWith("!node_modules/@node-llama-cpp/"));
    writeFileSync(
        join(stage, ".vscodeignore"),
        [
            ...allowList,
            ...binaries.map((binary) => `!node_modules/@node-llama-cpp/${binary}/**`),
        ].join("\n"),
    );
    mkdirSync("dist-vsix", { recursive: true });
    const out = join(process.cwd(), "dist-vsix", `olmo-local-${target}.vsix`);
    execFileSync(
        process.execPath,
        [
            join(process.cwd(), "node_modules/@vscode/vsce/vsce"),
            "package",
            "--target",
            target,
            "--allow-missing-repository",
            "--out",
            out,
        ],
        {
            cwd: stage,
            stdio: ["ignore", "ignore", "inherit"],
        },
    );
    console.log(`packaged ${out}`);
}
