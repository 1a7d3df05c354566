// Everything the test suites need that takes long to make, made once before they run: the
// generated models, code-server and llama-server (both cached between runs), the packaged VSIX.
import { ensureTestModel } from "./support/models.js";
import { ensureCodeServer } from "./e2e/codeserver.js";
import { packageVsix } from "./e2e/product.js";
import { llamaServerDir, startLlamaServerBuild } from "./support/llamaServer.js";

const step = async <T>(label: string, run: () => Promise<T> | T): Promise<T> => {
    const started = performance.now();
    const result = await run();
    console.log(`prepare: ${label} (${((performance.now() - started) / 1000).toFixed(1)} s)`);
    return result;
};

// `npm test` only (--llama-server), and first, so that it overlaps everything after it: the server
// tests wait for it (llamaServer.ts). Elsewhere a server test or bench:server builds it when missing.
if (process.argv.includes("--llama-server") && startLlamaServerBuild())
    console.log(
        `prepare: llama-server is building in the background (${llamaServerDir()}/build.log)`,
    );
await step("tiny test model", () => ensureTestModel("tiny"));
await step("code-server 4.100.3", () => ensureCodeServer("4.100.3"));
await step("code-server 4.139.1", () => ensureCodeServer("4.139.1"));
await step("VSIX for linux-x64", () => packageVsix());
