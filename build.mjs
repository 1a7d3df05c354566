// Builds dist/: the extension (CommonJS, `vscode` external), the sidecar (ES module,
// node-llama-cpp external: native binaries must keep their package layout) and the webview script.
// Usage: node build.mjs [--watch] [--minify]
import * as esbuild from "esbuild";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";

const pkg = JSON.parse(readFileSync(new URL("./package.json", import.meta.url), "utf8"));
const llamaPkg = JSON.parse(readFileSync(new URL("./node_modules/node-llama-cpp/package.json", import.meta.url), "utf8"));
const watch = process.argv.includes("--watch");
const minify = process.argv.includes("--minify");

const common = { bundle: true, sourcemap: "linked", minify, logLevel: "warning", legalComments: "none" };

const builds = [
    {
        ...common,
        entryPoints: ["extension/extension.ts"],
        outfile: "dist/extension.cjs",
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
        banner: { js: "import { createRequire as __olmoCreateRequire } from 'node:module'; const require = __olmoCreateRequire(import.meta.url);" },
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
