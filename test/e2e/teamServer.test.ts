// A team server in a real VS Code: llama.cpp's llama-server (built into the test cache by
// test/prepare.ts) on 127.0.0.1 with the tiny generated model. With olmo.server.url in the
// machine's settings, a chat turn in the view is answered by the server and the status bar says
// "OLMo on 127.0.0.1:<port>"; when the server goes away, the failed answer names it and opens the
// server's settings; clearing the setting goes back to the local file. On first use, "Use a team server…" checks the URL as typed, asks the
// API key (hidden), and a refused key says so with Set API Key, which fixes it.
// Run: node --import tsx --test test/e2e/teamServer.test.ts (after `node --import tsx test/prepare.ts`).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { ensureTestModel } from "../support/models.js";
import { startLlamaServer, type RunningLlamaServer } from "../support/llamaServer.js";
import { forEachVSCode } from "./versions.js";
import { EXTENSION_ID, requireVsix } from "./product.js";
import { answerFinished, send, storedConversations } from "./chatPage.js";
import type { VSCodeSession } from "./harness.js";
import { stepsOf } from "./steps.js";

const OLMO_LOG = /OLMo Local/;
const API_KEY = "team-e2e-key-7f3a9c";

/** The status bar item once a model is ready (its accessible label starts so). */
function readyItem(vscode: VSCodeSession) {
    return vscode.page.locator('.part.statusbar .statusbar-item[aria-label^="OLMo Local: ready"]');
}

/**
 * Sends one message in the chat view (opened first unless it is already shown) and checks that a
 * finished, non-empty answer arrived.
 */
async function chatOneTurn(
    vscode: VSCodeSession,
    text: string,
    opts: { viewShown?: boolean } = {},
): Promise<string> {
    if (!opts.viewShown) await vscode.runCommand("OLMo: Focus Chat");
    const chat = vscode.webview(EXTENSION_ID);
    await send(chat, text);
    await answerFinished(chat);
    const answer = chat.locator("article.assistant").last();
    assert.equal(
        await answer.locator(".error-box").count(),
        0,
        `the answer did not fail: ${await answer.textContent()}`,
    );
    const shown = (await answer.locator(".markdown").textContent()) ?? "";
    assert.ok(shown.trim().length > 0, "an answer was shown");
    const stored = (await storedConversations(vscode)).find((c) =>
        c.messages.some((m) => m.role === "user" && m.text === text),
    );
    const reply = stored?.messages.at(-1);
    assert.ok(
        reply?.role === "assistant" && ["done", "truncated"].includes(reply.state),
        `the answer was stored as finished: ${JSON.stringify(reply)}`,
    );
    return shown;
}

/** Generations the server has run so far (one slot task each; tokenizing takes none). */
function completionsServed(server: RunningLlamaServer): number {
    return server.output().match(/launch_slot_: .*processing task/g)?.length ?? 0;
}

forEachVSCode((vs) =>
    describe(`e2e: a team server (VS Code ${vs.label})`, () => {
        let open: RunningLlamaServer;
        let keyed: RunningLlamaServer;
        before(async () => {
            const model = await ensureTestModel("tiny");
            open = await startLlamaServer({ model, contextSize: 2048 });
            keyed = await startLlamaServer({ model, contextSize: 2048, apiKey: API_KEY });
        });
        after(async () => {
            await open?.stop();
            await keyed?.stop();
        });

        test("olmo.server.url set: a chat turn answered by llama-server, the status bar names it", async (t) => {
            const step = stepsOf(t);
            const host = new URL(open.url).host;
            await vs.withVSCode(
                {
                    name: "team-server",
                    vsix: requireVsix(),
                    settings: { "olmo.server.url": open.url, "olmo.maxTokens": 16 },
                },
                async (vscode) => {
                    const servedBefore = completionsServed(open);
                    await step("a chat turn in the view is answered", async () => {
                        await chatOneTurn(vscode, "Hello, team server");
                    });
                    await step(`the status bar says "OLMo on ${host}"`, async () => {
                        const item = readyItem(vscode);
                        await item.waitFor({ state: "visible" });
                        assert.match(
                            (await item.textContent()) ?? "",
                            new RegExp(`OLMo on ${host}`),
                        );
                        assert.match(
                            (await item.getAttribute("aria-label")) ?? "",
                            new RegExp(host),
                        );
                        await vscode.screenshot(`team-server-chat-${vs.label}`);
                    });
                    await step("the server, not this machine, ran the model", async () => {
                        assert.ok(
                            completionsServed(open) > servedBefore,
                            `llama-server logged the completion:\n${open.output().slice(-2000)}`,
                        );
                        const log = await vscode.extensionLog(OLMO_LOG);
                        assert.doesNotMatch(log, /loaded .* on (cpu|cuda|vulkan|metal)/);
                    });
                    await step(
                        "the server gone: the answer names it and offers its settings",
                        async () => {
                            await open.stop();
                            const chat = vscode.webview(EXTENSION_ID);
                            await send(chat, "Are you still there?");
                            await answerFinished(chat);
                            const failed = chat
                                .locator("article.assistant")
                                .last()
                                .locator(".error-box");
                            await failed.waitFor();
                            assert.match(
                                (await failed.textContent()) ?? "",
                                new RegExp(`OLMo server at ${host.replace(/\./g, "\\.")}`),
                            );
                            await vscode.screenshot(`team-server-unreachable-${vs.label}`);
                            await failed
                                .locator('button[data-command="openServerSettings"]')
                                .click();
                            await vscode.page
                                .locator(".settings-editor .setting-item-contents", {
                                    hasText:
                                        "A team server to run the model instead of this machine",
                                })
                                .first()
                                .waitFor();
                        },
                    );
                    await step("clearing olmo.server.url reloads the local file", async () => {
                        await vscode.updateSettings({
                            "olmo.server.url": "",
                            "olmo.modelPath": await ensureTestModel("tiny"),
                            "olmo.gpu": "cpu",
                            "olmo.threads": 1,
                        });
                        const local = vscode.page.locator(".part.statusbar .statusbar-item", {
                            hasText: "OLMo CPU",
                        });
                        await local.waitFor({ timeout: 120_000 });
                        assert.doesNotMatch(
                            (await local.getAttribute("aria-label")) ?? "",
                            /127\.0\.0\.1/,
                        );
                        // The view is still shown beside the settings editor, which keeps the focus.
                        await chatOneTurn(vscode, "Hello, this machine", { viewShown: true });
                    });
                },
            );
        });

        test("first use: Use a team server…, the URL checked, a refused key fixed with Set API Key", async (t) => {
            const step = stepsOf(t);
            const host = new URL(keyed.url).host;
            await vs.withVSCode(
                {
                    name: "team-server-first-use",
                    vsix: requireVsix(),
                    // No hub here: the machine cannot be measured, so nothing is recommended.
                    // The JSON-RPC traffic is traced with parameters: the key must stay out of it.
                    settings: {
                        "olmo.hubEndpoint": "http://127.0.0.1:9",
                        "olmo.maxTokens": 16,
                        "olmo.trace.server": "verbose",
                    },
                    logLevel: "trace",
                },
                async (vscode) => {
                    const page = vscode.page;
                    const input = page.locator(".quick-input-widget .quick-input-box input");
                    await step("offered beside the downloads and choosing a file", async () => {
                        await vscode.runCommand("OLMo: Load Model", { opensQuickPick: true });
                        const rows = page.locator(".quick-input-widget .monaco-list-row");
                        await rows.filter({ hasText: "Use a team server…" }).waitFor();
                        await rows.filter({ hasText: "Choose a .gguf file" }).waitFor();
                        await rows.filter({ hasText: "Download OLMo-2 13B Instruct" }).waitFor();
                        await rows.filter({ hasText: "Use a team server…" }).click();
                    });
                    await step("plain http to another machine is refused as typed", async () => {
                        await input.fill("http://gpu-box.lan:8080");
                        await page
                            .locator(".quick-input-widget .quick-input-message", {
                                hasText: "gpu-box.lan:8080 is another machine: use https://",
                            })
                            .waitFor();
                        await input.fill(keyed.url);
                        await page
                            .locator(".quick-input-widget .quick-input-message", {
                                hasText: "is another machine",
                            })
                            .waitFor({ state: "hidden" });
                        await input.press("Enter");
                    });
                    await step(
                        "the API key is asked, hidden; a wrong one is refused naming the server",
                        async () => {
                            await page
                                .locator(".quick-input-widget .quick-input-title", {
                                    hasText: "its API key",
                                })
                                .waitFor();
                            assert.equal(await input.getAttribute("type"), "password");
                            await input.fill("not-the-key");
                            await input.press("Enter");
                            const refused = vscode.notification(
                                new RegExp(host.replace(/\./g, "\\.")),
                            );
                            await refused.waitFor({ timeout: 60_000 });
                            assert.match(
                                (await refused.textContent()) ?? "",
                                /API key|401|unauthori[sz]ed/i,
                            );
                            await vscode.screenshot(`team-server-refused-key-${vs.label}`);
                            await refused.getByRole("button", { name: "Set API Key" }).click();
                        },
                    );
                    await step(
                        "Set API Key: the right key loads the model from the server",
                        async () => {
                            await page
                                .locator(".quick-input-widget .quick-input-title", {
                                    hasText: `API key for ${host}`,
                                })
                                .waitFor();
                            await input.fill(API_KEY);
                            await input.press("Enter");
                            const item = readyItem(vscode);
                            await item.waitFor({ state: "visible", timeout: 60_000 });
                            assert.match(
                                (await item.textContent()) ?? "",
                                new RegExp(`OLMo on ${host}`),
                            );
                        },
                    );
                    await step("the chat answers through the server", async () => {
                        const servedBefore = completionsServed(keyed);
                        await chatOneTurn(vscode, "Hello with a key");
                        assert.ok(completionsServed(keyed) > servedBefore, "the server answered");
                        await vscode.screenshot(`team-server-first-use-chat-${vs.label}`);
                    });
                    await step(
                        "the URL is in the machine's settings; the key in no settings file, nor in the traced log",
                        async () => {
                            const saved = await Promise.all(
                                ["User", "Machine"].map((scope) =>
                                    readFile(
                                        join(vscode.dirs.userData, scope, "settings.json"),
                                        "utf8",
                                    ).catch(() => "{}"),
                                ),
                            );
                            const urls = saved.map(
                                (text) =>
                                    (JSON.parse(text) as Record<string, unknown>)[
                                        "olmo.server.url"
                                    ],
                            );
                            assert.ok(urls.includes(keyed.url), `saved: ${JSON.stringify(urls)}`);
                            for (const text of saved)
                                assert.doesNotMatch(text, new RegExp(API_KEY));
                            const log = await vscode.extensionLog(OLMO_LOG);
                            assert.match(log, /Sending request 'olmo\/load/, "the load was traced");
                            assert.match(
                                log,
                                /Sending request 'olmo\/chat[^]*Params: /,
                                "requests are traced with their parameters",
                            );
                            for (const key of [API_KEY, "not-the-key"])
                                assert.doesNotMatch(log, new RegExp(key), "no key in the log");
                        },
                    );
                    await step(
                        "Clear Team Server API Key: refused again, the view offers Set API Key",
                        async () => {
                            await vscode.runCommand("OLMo: Clear Team Server API Key");
                            await vscode
                                .notification(`The API key for ${host} is deleted.`)
                                .waitFor();
                            await page
                                .locator(
                                    `.part.statusbar .statusbar-item[aria-label^="OLMo Local: error: The OLMo server at ${host} refused"]`,
                                )
                                .waitFor({ timeout: 60_000 });
                            const chat = vscode.webview(EXTENSION_ID);
                            const banner = chat.locator(".banner.error");
                            await banner.waitFor();
                            assert.match((await banner.textContent()) ?? "", /without an API key/);
                            await banner
                                .locator('button[data-command="setServerApiKey"]')
                                .waitFor();
                            await vscode.screenshot(`team-server-key-cleared-${vs.label}`);
                        },
                    );
                },
            );
        });
    }),
);
