// Two VS Code windows (two tabs of one code-server, each with its own extension host and model
// process) take turns on one chat: each sees the other's turns before continuing, and after a
// reload of both every turn is there, on screen and on disk. The workspace sets olmo.systemPrompt,
// so the chat shows its note.
// Run: node --import tsx --test test/e2e/windows.test.ts (after `node --import tsx test/prepare.ts`).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { FrameLocator } from "playwright-core";
import { ensureTestModel } from "../support/models.js";
import type { VSCodeSession } from "./harness.js";
import { forEachVSCode } from "./versions.js";
import { EXTENSION_ID, requireVsix } from "./product.js";
import { answerFinished, send, storedConversations } from "./chatPage.js";

const SYSTEM_PROMPT = "Answer in one short paragraph.";
const TURNS = ["turn one, from window A", "turn two, from window B", "turn three, from window A"];

async function openChat(window: VSCodeSession): Promise<FrameLocator> {
    await window.runCommand("OLMo: Focus Chat");
    const chat = window.webview(EXTENSION_ID);
    await chat.locator("textarea").waitFor();
    return chat;
}

/** The user messages on screen, in order. */
async function questions(chat: FrameLocator): Promise<string[]> {
    const texts = await chat.locator("article.user .markdown").allTextContents();
    return texts.map((text) => text.trim());
}

/** Waits until the chat shows `text` as a user message. */
async function shows(chat: FrameLocator, text: string): Promise<void> {
    await chat.locator("article.user .markdown", { hasText: text }).waitFor();
}

forEachVSCode((vs) =>
    describe(`e2e: one chat in two windows (VS Code ${vs.label})`, () => {
        test(
            "two windows take turns on one chat; after a reload of both all turns are there",
            { timeout: 15 * 60_000 },
            async () => {
                const modelPath = await ensureTestModel("tiny");
                await vs.withVSCode(
                    {
                        name: "windows",
                        vsix: requireVsix(),
                        settings: {
                            "olmo.modelPath": modelPath,
                            "olmo.gpu": "cpu",
                            "olmo.contextSize": 2048,
                            "olmo.maxTokens": 16,
                        },
                        workspaceSettings: { "olmo.systemPrompt": SYSTEM_PROMPT },
                        timeoutMs: 90_000,
                    },
                    async (a) => {
                        let chatA = await openChat(a);
                        const note = chatA.locator(".system-prompt-note");
                        await note.waitFor();
                        assert.match(
                            (await note.getAttribute("aria-label")) ?? "",
                            /This workspace's settings give OLMo a system prompt: "Answer in one short paragraph\."/,
                        );

                        // Window B opens before the chat exists.
                        const b = await a.openAnotherWindow();
                        let chatB = await openChat(b);

                        await send(chatA, TURNS[0]);
                        await answerFinished(chatA);

                        // B's history shows the chat A started; B opens it and continues it.
                        await b.runCommand("OLMo: Show Chat History");
                        await chatB.locator(".history-open", { hasText: TURNS[0] }).click();
                        await shows(chatB, TURNS[0]);
                        await send(chatB, TURNS[1]);
                        await answerFinished(chatB);

                        // A, open all along, gets B's turn and continues after it.
                        await shows(chatA, TURNS[1]);
                        await send(chatA, TURNS[2]);
                        await answerFinished(chatA);
                        await shows(chatB, TURNS[2]);

                        const stored = await storedConversations(a);
                        assert.equal(stored.length, 1, "one chat");
                        assert.deepEqual(
                            stored[0].messages.map((m) => (m.role === "user" ? m.text : m.role)),
                            [TURNS[0], "assistant", TURNS[1], "assistant", TURNS[2], "assistant"],
                        );
                        assert.ok(
                            stored[0].messages.every(
                                (m) => m.role === "user" || m.state !== "streaming",
                            ),
                            "every answer ended",
                        );

                        await a.reload();
                        await b.reload();
                        chatA = await openChat(a);
                        chatB = await openChat(b);
                        for (const chat of [chatA, chatB]) {
                            await shows(chat, TURNS[2]);
                            assert.deepEqual(await questions(chat), TURNS);
                            assert.equal(await chat.locator("article.assistant").count(), 3);
                        }
                    },
                );
            },
        );
    }),
);
