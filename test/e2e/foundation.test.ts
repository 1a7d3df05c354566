// The packaged VSIX in a real VS Code (code-server) in Chromium: installed as a user installs it,
// pointed at the generated model, the status bar reaches ready.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { requireVsix } from "./product.js";
import { forEachVSCode } from "./versions.js";
import { ensureTestModel } from "../support/models.js";

forEachVSCode((vs) =>
    describe(`e2e: foundation in code-server (VS Code ${vs.label})`, () => {
        test("activation does no model work; Load Model brings the status bar to ready on the generated model", async () => {
            const modelPath = await ensureTestModel("tiny");
            await vs.withVSCode(
                {
                    name: "foundation",
                    vsix: requireVsix(),
                    settings: {
                        "olmo.modelPath": modelPath,
                        "olmo.gpu": "cpu",
                        "olmo.contextSize": 1024,
                        "olmo.threads": 1,
                    },
                },
                async (vscode) => {
                    // Running a command activates the extension; until then no model process exists.
                    await vscode.runCommand("OLMo: Show Log");
                    await vscode.outputShown();
                    const idle = vscode.statusBarItem(/OLMo/);
                    await idle.waitFor({ state: "visible" });
                    assert.doesNotMatch(
                        (await idle.textContent()) ?? "",
                        /CPU/,
                        "no model loaded at activation",
                    );

                    await vscode.runCommand("OLMo: Load Model");
                    const ready = vscode.page.locator(
                        '.part.statusbar .statusbar-item[aria-label^="OLMo Local: ready"]',
                    );
                    await ready.waitFor({ state: "visible", timeout: 120_000 });
                    const text = (await vscode.statusBarItem(/OLMo/).first().textContent()) ?? "";
                    assert.match(text, /OLMo CPU/);
                    await vscode.screenshot(`foundation-ready-${vs.label}`);

                    // The sidecar's log reaches the output channel.
                    const log = await vscode.waitForExtensionLog(/OLMo Local/, /loaded .* on cpu/);
                    assert.match(log, /context 1024/);
                },
            );
        });
    }),
);
