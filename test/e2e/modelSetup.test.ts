// First use in a real VS Code: no model set, the user is offered the OLMo-2 download, sees whether
// it fits, downloads it (from a local stand-in for the hub) with a progress notification, and the
// model answers in the chat.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { createServer, type AddressInfo, type Socket } from "node:net";
import { join } from "node:path";
import { ensureTestModel } from "../support/models.js";
import { ModelServer } from "../support/modelServer.js";
import { forEachVSCode } from "./versions.js";
import { EXTENSION_ID, requireVsix } from "./product.js";
import { answerFinished, send, storedConversations } from "./chatPage.js";

const repo = "allenai/OLMo-2-1124-13B-Instruct-GGUF";
const file = "olmo-2-1124-13B-instruct-Q4_K_M.gguf";

forEachVSCode((vs) =>
    describe(`e2e: first use downloads the model (VS Code ${vs.label})`, () => {
        let server: ModelServer;
        let modelsDir: string;
        before(async () => {
            // The tiny generated model stands in for the 8 GB file, under the official name.
            server = await ModelServer.start({ repo, file, path: await ensureTestModel("tiny") });
            modelsDir = await mkdtemp(join(tmpdir(), "olmo-models-"));
        });
        after(async () => {
            await server?.stop();
            await rm(modelsDir, { recursive: true, force: true });
        });

        test("offer, fit check, download with progress, then a chat answer", async () => {
            await vs.withVSCode(
                {
                    name: "model-setup",
                    vsix: requireVsix(),
                    settings: {
                        "olmo.hubEndpoint": server.endpoint,
                        "olmo.modelsDirectory": modelsDir,
                        "olmo.gpu": "cpu",
                        "olmo.threads": 1,
                        "olmo.contextSize": 1024,
                        "olmo.maxTokens": 16,
                    },
                },
                async (vscode) => {
                    const page = vscode.page;
                    await vscode.runCommand("OLMo: Load Model", { opensQuickPick: true });
                    const offer = page.locator(".quick-input-widget .monaco-list-row", {
                        hasText: "Download OLMo-2 13B Instruct",
                    });
                    await offer.waitFor({ state: "visible" });
                    assert.match((await offer.textContent()) ?? "", /Q4_K_M, 8\.35 GB/);
                    await vscode.screenshot(`model-setup-offer-${vs.label}`);
                    await offer.click();

                    // The tiny model fits any machine: on the GPU where there is one.
                    const verdict = vscode.notification(
                        /No GPU found: it runs on the CPU|Fits in VRAM: all \d+ layers on the GPU/,
                    );
                    await verdict.waitFor({ state: "visible", timeout: 60_000 });
                    assert.match((await verdict.textContent()) ?? "", /to download, .* free in /);
                    await vscode.screenshot(`model-setup-fit-${vs.label}`);
                    await verdict.getByRole("button", { name: /^Download \(/ }).click();

                    await page
                        .locator('.part.statusbar .statusbar-item[aria-label^="OLMo Local: ready"]')
                        .waitFor({ state: "visible", timeout: 120_000 });
                    const downloaded = await readFile(join(modelsDir, file));
                    assert.equal(
                        createHash("sha256").update(downloaded).digest("hex"),
                        server.sha256,
                    );
                    // Machine-scoped settings of a remote window (code-server) live in the machine's settings file.
                    const saved = await Promise.all(
                        ["User", "Machine"].map((scope) =>
                            readFile(
                                join(vscode.dirs.userData, scope, "settings.json"),
                                "utf8",
                            ).catch(() => "{}"),
                        ),
                    );
                    const values = saved.map(
                        (text) => (JSON.parse(text) as Record<string, unknown>)["olmo.modelPath"],
                    );
                    assert.ok(
                        values.includes(join(modelsDir, file)),
                        `the model path was saved in the user's settings: ${JSON.stringify(values)}`,
                    );
                    const log = await vscode.waitForExtensionLog(
                        /OLMo Local/,
                        /downloaded .* SHA-256/,
                    );
                    assert.match(log, new RegExp(server.sha256));

                    // The downloaded model answers in the chat view.
                    await vscode.runCommand("OLMo: Focus Chat");
                    const chat = vscode.webview(EXTENSION_ID);
                    // Waits for the answer to appear before waiting for it to end: right after Enter there is no busy answer yet.
                    await send(chat, "Hello after setup");
                    await answerFinished(chat);
                    const answer = chat.locator("article.assistant").last();
                    assert.equal(
                        await answer.locator(".error-box").count(),
                        0,
                        `the answer did not fail: ${await answer.textContent()}`,
                    );
                    const shown = (await answer.locator(".markdown").textContent()) ?? "";
                    assert.ok(shown.trim().length > 0, "an answer was shown");
                    const [stored] = await storedConversations(vscode);
                    const reply = stored.messages.at(-1);
                    assert.ok(
                        reply?.role === "assistant" && ["done", "truncated"].includes(reply.state),
                        `the answer was stored as finished: ${JSON.stringify(reply)}`,
                    );
                    await vscode.screenshot(`model-setup-answer-${vs.label}`);
                },
            );
        });

        test("without a network: the view says it checks the download, then a message names the host", async () => {
            // A hub that accepts the connection and never answers (a proxy swallowing the request).
            const sockets: Socket[] = [];
            const silent = createServer((socket) => void sockets.push(socket));
            await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
            const hub = `127.0.0.1:${(silent.address() as AddressInfo).port}`;
            try {
                await vs.withVSCode(
                    {
                        name: "model-setup-offline",
                        vsix: requireVsix(),
                        settings: {
                            "olmo.hubEndpoint": `http://${hub}`,
                            "olmo.modelsDirectory": modelsDir,
                        },
                    },
                    async (vscode) => {
                        await vscode.runCommand("OLMo: Focus Chat");
                        const chat = vscode.webview(EXTENSION_ID);
                        await vscode.runCommand("OLMo: Load Model", { opensQuickPick: true });
                        const offer = vscode.page.locator(".quick-input-widget .monaco-list-row", {
                            hasText: "Download OLMo-2 13B Instruct",
                        });
                        await offer.click();
                        const banner = chat.locator(".banner.settingUp");
                        await banner.waitFor({ state: "visible" });
                        assert.match(
                            (await banner.textContent()) ?? "",
                            /Checking the download of olmo-2-1124-13B-instruct-Q4_K_M\.gguf/,
                        );
                        await vscode.screenshot(`model-setup-offline-checking-${vs.label}`);
                        const failure = vscode.notification(
                            new RegExp(`${hub.replace(/\./g, "\\.")} did not answer within 10 s`),
                        );
                        await failure.waitFor({ state: "visible", timeout: 60_000 });
                        assert.match(
                            (await failure.textContent()) ?? "",
                            /olmo\.hubEndpoint .*a \.gguf file already on this computer/,
                        );
                        await failure
                            .getByRole("button", { name: "Choose a .gguf File…" })
                            .waitFor({ state: "visible" });
                        await chat.locator(".banner.noModel").waitFor({ state: "visible" });
                        await vscode.screenshot(`model-setup-offline-message-${vs.label}`);
                    },
                );
            } finally {
                for (const socket of sockets) socket.destroy();
                silent.close();
            }
        });
    }),
);
