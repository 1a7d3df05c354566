// Everything the test suites need that takes long to make, made once before they run:
// the generated models, code-server (cached between runs) and the packaged VSIX.
import { ensureTestModel } from "./support/models.js";
import { ensureCodeServer } from "./e2e/codeserver.js";
import { packageVsix } from "./e2e/product.js";

const step = async <T>(label: string, run: () => Promise<T> | T): Promise<T> => {
    const started = performance.now();
    const result = await run();
    console.log(`prepare: ${label} (${((performance.now() - started) / 1000).toFixed(1)} s)`);
    return result;
};

await step("tiny test model", () => ensureTestModel("tiny"));
await step("code-server 4.100.3", () => ensureCodeServer("4.100.3"));
await step("code-server 4.139.1", () => ensureCodeServer("4.139.1"));
await step("VSIX for linux-x64", () => packageVsix());
