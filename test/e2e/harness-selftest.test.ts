// Proves the E2E harness against a throwaway extension, independently of the product: a VSIX is
// built here, installed into a real VS Code (code-server), and driven from the browser.
// Run: node --import tsx --test test/e2e/harness-selftest.test.ts
// It runs on each VS Code of versions.ts (OLMO_E2E_VSCODE=4.139.1 picks one).

import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { describe, test } from "node:test";
import { packageThrowawayExtension } from "./throwaway.js";
import { forEachVSCode } from "./versions.js";

const EXTENSION_ID = "olmo-test.harness-selftest";

const manifest = {
    name: "harness-selftest",
    displayName: "Harness Selftest",
    description: "Throwaway extension that exercises the E2E harness",
    publisher: "olmo-test",
    version: "0.0.1",
    engines: { vscode: "^1.100.0" },
    main: "./extension.js",
    // Activate at startup so the status bar item is there before any command runs.
    activationEvents: ["onStartupFinished"],
    contributes: {
        commands: [
            { command: "harnessSelftest.hello", title: "Hello", category: "Harness Selftest" },
        ],
        viewsContainers: {
            activitybar: [{ id: "harnessSelftest", title: "Harness Selftest", icon: "icon.svg" }],
        },
        views: {
            harnessSelftest: [
                { type: "webview", id: "harnessSelftest.view", name: "Selftest View" },
            ],
        },
    },
};

// Plain CommonJS, so the throwaway extension needs no build step.
const extensionJs = String.raw`
const vscode = require("vscode");

exports.activate = function (context) {
  const log = vscode.window.createOutputChannel("Harness Selftest", { log: true });
  const item = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Left, 100);
  item.text = "Selftest: idle";
  item.show();
  context.subscriptions.push(log, item);

  context.subscriptions.push(vscode.commands.registerCommand("harnessSelftest.hello", () => {
    item.text = "Selftest: hello from the extension host";
    log.info("hello command ran");
    vscode.window.showInformationMessage("Selftest says hello");
  }));

  context.subscriptions.push(vscode.window.registerWebviewViewProvider("harnessSelftest.view", {
    resolveWebviewView(view) {
      view.webview.options = { enableScripts: true };
      view.webview.onDidReceiveMessage((msg) => {
        if (msg && msg.type === "ping") {
          log.info("webview pinged");
          view.webview.postMessage({ type: "pong", text: "pong from VS Code " + vscode.version });
        }
      });
      view.webview.html = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'\">",
        "</head><body><h3>Selftest webview</h3><p id='reply'>waiting</p>",
        "<script>",
        "const vscode = acquireVsCodeApi();",
        "window.addEventListener('message', (e) => {",
        "  if (e.data.type === 'pong') document.getElementById('reply').textContent = e.data.text;",
        "});",
        "vscode.postMessage({ type: 'ping' });",
        "</script></body></html>",
      ].join("\n");
    },
  }));
};

exports.deactivate = function () {};
`;

const iconSvg = `<svg xmlns="http://www.w3.org/2000/svg" width="24" height="24" viewBox="0 0 24 24"><circle cx="12" cy="12" r="9" fill="none" stroke="currentColor" stroke-width="2"/></svg>\n`;

/** Writes the extension into `dir` and packages it with the repo's vsce; returns the VSIX path. */
function buildSelftestVsix(dir: string): Promise<string> {
    return packageThrowawayExtension(dir, {
        "package.json": JSON.stringify(manifest, null, 2),
        "extension.js": extensionJs,
        "icon.svg": iconSvg,
        "README.md": "# Harness Selftest\n\nThrowaway extension for the E2E harness.\n",
    });
}

forEachVSCode((vs) =>
    describe(`e2e: harness (VS Code ${vs.label})`, () => {
        test(
            "installs a VSIX, runs a command, talks to a webview, reads logs",
            { timeout: 15 * 60_000 },
            async () => {
                const tmp = await fs.mkdtemp(path.join(os.tmpdir(), "harness-selftest-"));
                try {
                    const vsix = await buildSelftestVsix(tmp);
                    await vs.withVSCode(
                        {
                            vsix,
                            name: "harness-selftest",
                            workspaceFiles: { "src/hello.txt": "hello from the workspace\n" },
                            workspaceSettings: { "editor.fontSize": 15 },
                        },
                        async (vscode) => {
                            await vscode.waitForActivation(EXTENSION_ID);
                            await vscode.statusBarItem("Selftest: idle").waitFor();
                            await vscode.runCommand("Harness Selftest: Hello");
                            await vscode
                                .statusBarItem("Selftest: hello from the extension host")
                                .waitFor();
                            await vscode.notification("Selftest says hello").waitFor();

                            await vscode.activityBarItem("Harness Selftest").click();
                            const reply = vscode.webview(EXTENSION_ID).locator("#reply");
                            await reply.filter({ hasText: /^pong from VS Code 1\.\d+/ }).waitFor();
                            assert.equal(
                                await reply.textContent(),
                                `pong from VS Code ${vs.vscode}`,
                            );

                            await vscode.openFile("src/hello.txt");
                            await vscode.page
                                .locator(".monaco-editor .view-lines", {
                                    hasText: "hello from the workspace",
                                })
                                .waitFor();
                            const shot = await vscode.screenshot(
                                `harness-selftest-${vscode.install.version}`,
                            );
                            assert.ok(
                                (await fs.stat(shot)).size > 10_000,
                                "screenshot looks empty",
                            );

                            // The extension's LogOutputChannel reaches a file under the user-data-dir logs.
                            const log = await vscode.waitForExtensionLog(
                                /Harness Selftest/,
                                /webview pinged/,
                            );
                            assert.match(log, /hello command ran/);

                            // After a reload the extension comes back (status bar item again) with state reset.
                            await vscode.reload();
                            await vscode.statusBarItem("Selftest: idle").waitFor();
                        },
                    );
                } finally {
                    await fs.rm(tmp, { recursive: true, force: true });
                }
            },
        );
    }),
);
