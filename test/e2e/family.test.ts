// An OLMo-3-shaped model (sliding-window layers, ChatML template, 65,536-token train context) in a
// real VS Code with the packaged VSIX: loaded with the default context ("auto"), two chat turns in
// the view, the second reusing the first's KV cache, and the token meter showing the context the
// sidecar actually allocated.
// Run: node --import tsx --test test/e2e/family.test.ts (after `node --import tsx test/prepare.ts`).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ensureTestModel } from "../support/models.js";
import { forEachVSCode } from "./versions.js";
import { EXTENSION_ID, requireVsix } from "./product.js";
import { answerFinished, send } from "./chatPage.js";

const OLMO_LOG = /OLMo Local/;

forEachVSCode((vs) =>
    describe(`e2e: an OLMo 3 model in the chat (VS Code ${vs.label})`, () => {
        test(
            "ChatML model, auto context, a follow-up reusing the cache",
            { timeout: 10 * 60_000 },
            async () => {
                await vs.withVSCode(
                    {
                        name: "family",
                        vsix: requireVsix(),
                        settings: {
                            "olmo.modelPath": await ensureTestModel("olmo3-tiny"),
                            "olmo.gpu": "cpu",
                            "olmo.threads": 1,
                            "olmo.maxTokens": 16,
                        },
                        timeoutMs: 120_000,
                    },
                    async (vscode) => {
                        await vscode.runCommand("OLMo: Focus Chat");
                        const chat = vscode.webview(EXTENSION_ID);
                        await chat.locator("textarea").waitFor();

                        // Longer than the test model's 128-token sliding window.
                        await send(chat, "Tell me about sliding windows. ".repeat(30));
                        await answerFinished(chat);
                        const loaded = await vscode.waitForExtensionLog(
                            OLMO_LOG,
                            /loaded .*olmo3 chat format.* context (\d+)/,
                        );
                        const contextSize = Number(
                            /loaded .*olmo3 chat format.* context (\d+)/.exec(loaded)![1],
                        );
                        assert.ok(
                            contextSize > 4096 && contextSize <= 65536,
                            `auto context ${contextSize}`,
                        );

                        await send(chat, "And then?");
                        await answerFinished(chat);
                        const log = await vscode.waitForExtensionLog(
                            OLMO_LOG,
                            /chat: answer ended[^]*chat: answer ended .*reused\)/,
                        );
                        const reused = [...log.matchAll(/chat: answer ended .*\((\d+) reused\)/g)];
                        assert.equal(reused.length, 2, "two answers");
                        assert.equal(Number(reused[0]![1]), 0, "the first turn starts cold");
                        assert.ok(Number(reused[1]![1]) > 100, `reused ${reused[1]![1]} tokens`);

                        const answers = await chat.locator("article.assistant").allTextContents();
                        assert.equal(answers.length, 2);
                        for (const answer of answers) {
                            assert.ok(answer.trim().length > 0, "an answer was shown");
                            assert.doesNotMatch(answer, /<\|im_(start|end)\|>/);
                        }
                        const meter = (await chat.locator(".meter-text").textContent()) ?? "";
                        assert.match(
                            meter.replace(/[^\d/]/g, ""),
                            new RegExp(`/${contextSize}$`),
                            `the meter counts against the allocated context: ${meter}`,
                        );
                    },
                );
            },
        );
    }),
);
