// The chat's tools in a real VS Code (code-server) with the packaged VSIX and the generated tiny
// model: edit and resend (the old turn gone on screen and on disk, the prefix reused from the KV
// cache), regenerate and switch versions, a message queued while an answer streams, copy, rename,
// search, export through the save dialog, Show Prompt, and the greedy note. A screenshot of each
// feature.
// Run: node --import tsx --test test/e2e/chatTools.test.ts (after `node --import tsx test/prepare.ts`).
import { describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import * as path from "node:path";
import type { FrameLocator } from "playwright-core";
import type { AssistantMessage, Conversation } from "../../media/protocol.js";
import { ensureTestModel } from "../support/models.js";
import type { VSCodeSession } from "./harness.js";
import { stepsOf } from "./steps.js";
import { forEachVSCode } from "./versions.js";
import { EXTENSION_ID, requireVsix } from "./product.js";
import { answerFinished, send, storedConversations } from "./chatPage.js";

const FIRST = "Plan a small garden";
const SECOND = "Which herbs grow in pots";
const EDITED = "Which vegetables need little water";
const QUEUED = "A queued question about tomatoes";
const REMOVED = "A queued question removed again";
const RENAMED = "Garden plans";

forEachVSCode((vs) =>
    describe(`e2e: chat tools (VS Code ${vs.label})`, () => {
        test(
            "edit and resend, regenerate with versions, queue, copy, show prompt, rename, search, export, greedy note",
            { timeout: 15 * 60_000 },
            async (t) => {
                const modelPath = await ensureTestModel("tiny");
                await vs.withVSCode(
                    {
                        name: "chat-tools",
                        vsix: requireVsix(),
                        settings: {
                            "olmo.modelPath": modelPath,
                            "olmo.gpu": "cpu",
                            "olmo.contextSize": 4096,
                            // Every answer here streams until the test stops it (stopAnswer),
                            // so a message can be queued while one streams, at any speed.
                            "olmo.maxTokens": 2000,
                        },
                        workspaceFiles: { "sample.js": "// sample\n" },
                        theme: "dark",
                        timeoutMs: 90_000,
                    },
                    (vscode) => chatToolsScenario(t, vscode, vs.label),
                );
            },
        );
    }),
);

/** The one stored chat whose first message is `first`. */
async function storedChat(vscode: VSCodeSession, first: string): Promise<Conversation> {
    const found = (await storedConversations(vscode)).filter(
        (c) => c.messages[0]?.role === "user" && c.messages[0].text === first,
    );
    assert.equal(found.length, 1, `one stored chat starts with ${JSON.stringify(first)}`);
    return found[0];
}

/** Waits for the streaming answer's first text, then stops it: the answer is kept, marked stopped. */
async function stopAnswer(chat: FrameLocator): Promise<void> {
    await chat
        .locator('article.assistant[aria-busy="true"] .markdown')
        .filter({ hasText: /\S/ })
        .waitFor();
    await chat.locator(".stop").click();
    await answerFinished(chat);
}

async function userTexts(chat: FrameLocator): Promise<string[]> {
    return (await chat.locator("article.user .markdown").allTextContents()).map((s) => s.trim());
}

/** The usage line under an answer: prompt tokens and how many of them were reused. */
async function usageOf(
    chat: FrameLocator,
    nth: number,
): Promise<{ prompt: number; reused: number }> {
    const text =
        (await chat.locator("article.assistant").nth(nth).locator(".usage").textContent()) ?? "";
    const match = /^(\d+) prompt tokens \((\d+) reused, (\d+) evaluated\)/.exec(text);
    assert.ok(match, `usage shown: ${JSON.stringify(text)}`);
    return { prompt: Number(match[1]), reused: Number(match[2]) };
}

async function chatToolsScenario(
    t: TestContext,
    vscode: VSCodeSession,
    label: string,
): Promise<void> {
    const step = stepsOf(t);
    const shot = (name: string) => vscode.screenshot(`${name}-${label}`);
    let chat = vscode.webview(EXTENSION_ID);

    await step(
        "two turns, then Edit on the second: resent, the old turn gone, the prefix reused",
        async () => {
            await vscode.runCommand("OLMo: Focus Chat");
            chat = vscode.webview(EXTENSION_ID);
            await chat.locator("textarea").waitFor();
            await send(chat, FIRST);
            await stopAnswer(chat);
            await send(chat, SECOND);
            await stopAnswer(chat);
            const second = chat.locator("article.user", { hasText: SECOND });
            await second
                .getByRole("button", { name: "Edit this message and send it again" })
                .click();
            const editor = second.locator(".edit-box textarea");
            await editor.fill(EDITED);
            await editor.press("Enter");
            await chat.locator("article.user", { hasText: EDITED }).waitFor();
            await stopAnswer(chat);
            assert.deepEqual(await userTexts(chat), [FIRST, EDITED]);
            assert.equal(await chat.locator("article.assistant").count(), 2);
            const usage = await usageOf(chat, 1);
            assert.ok(usage.reused > 0, `the edited turn reused ${usage.reused} tokens`);
            t.diagnostic(
                `edited second turn: ${usage.prompt} prompt tokens, ${usage.reused} reused, ${usage.prompt - usage.reused} evaluated`,
            );
            const stored = await storedChat(vscode, FIRST);
            assert.deepEqual(
                stored.messages.map((m) => (m.role === "user" ? m.text : m.role)),
                [FIRST, "assistant", EDITED, "assistant"],
                "the old turn is gone from the stored chat",
            );
            assert.ok(
                stored.removedMessageIds?.length === 2,
                "the dropped question and answer are remembered as removed",
            );
            await shot("chat-tools-edit");
        },
    );

    await step("Up in the empty composer edits the last message; Escape cancels", async () => {
        const input = chat.locator(".composer textarea");
        await input.focus();
        await input.press("ArrowUp");
        const editor = chat
            .locator("article.user", { hasText: EDITED })
            .locator(".edit-box textarea");
        await editor.waitFor();
        assert.equal(await editor.inputValue(), EDITED);
        await editor.press("Escape");
        await editor.waitFor({ state: "detached" });
    });

    await step("Regenerate keeps the first version; ‹ › switch between them", async () => {
        const last = chat.locator("article.assistant").last();
        const firstVersion = ((await last.locator(".markdown").textContent()) ?? "").trim();
        await last
            .getByRole("button", { name: "Regenerate this answer with a fresh seed" })
            .click();
        await stopAnswer(chat);
        await last.locator(".version-label", { hasText: "2/2" }).waitFor();
        await last.getByRole("button", { name: "Previous version of this answer" }).click();
        await last.locator(".version-label", { hasText: "1/2" }).waitFor();
        assert.equal(((await last.locator(".markdown").textContent()) ?? "").trim(), firstVersion);
        await shot("chat-tools-regenerate");
        // The version on screen is the stored answer (saved before the view was told), the one
        // the next turn continues from.
        const answer = (await storedChat(vscode, FIRST)).messages[3] as AssistantMessage;
        assert.equal(answer.versionIndex, 0);
        assert.equal(answer.otherVersions?.length, 1);
        assert.notEqual(answer.otherVersions[0].text, "");
        await last.getByRole("button", { name: "Next version of this answer" }).click();
        await last.locator(".version-label", { hasText: "2/2" }).waitFor();
    });

    await step(
        "Show Prompt opens the exact prompt of the last answer in a read-only editor",
        async () => {
            const last = chat.locator("article.assistant").last();
            await last
                .getByRole("button", {
                    name: "Show the exact prompt the model saw for this answer",
                })
                .click();
            const editor = vscode.page.locator(".editor-group-container.active .monaco-editor");
            await vscode.page.locator(".tab.active", { hasText: "Prompt:" }).waitFor();
            await editor.locator(".view-lines", { hasText: `<|user|>${FIRST}` }).waitFor();
            // The prompt ends with the edited question, then the answer's start.
            await editor.locator(".view-lines").click();
            await vscode.page.keyboard.press("Control+End");
            await editor.locator(".view-line", { hasText: EDITED }).waitFor();
            await shot("chat-tools-show-prompt");
            // Typing into it is refused, as in any read-only editor.
            await vscode.page.keyboard.type("x");
            await vscode.page
                .locator(".monaco-editor-overlaymessage", { hasText: "read-only" })
                .waitFor();
        },
    );

    await step("Copy puts the whole answer on the clipboard as Markdown", async () => {
        await vscode.page.context().grantPermissions(["clipboard-read", "clipboard-write"], {
            origin: new URL(vscode.url).origin,
        });
        await vscode.runCommand("OLMo: Focus Chat");
        const answer = (await storedChat(vscode, FIRST)).messages[1] as AssistantMessage;
        await chat
            .locator("article.assistant")
            .first()
            .getByRole("button", { name: "Copy the whole answer as Markdown" })
            .click();
        await vscode.page.waitForFunction(
            async (expected) => (await navigator.clipboard.readText()) === expected,
            answer.text,
        );
    });

    await step(
        "a message sent while an answer streams is queued and answered after it",
        async () => {
            await vscode.runCommand("OLMo: New Chat");
            await chat.locator(".empty-state").waitFor();
            await send(chat, "Tell me about soil");
            await chat.locator("article.assistant .markdown").filter({ hasText: /\S/ }).waitFor();
            const input = chat.locator(".composer textarea");
            await input.fill(QUEUED);
            await input.press("Enter");
            await input.fill(REMOVED);
            await input.press("Enter");
            await chat.locator(".queue .queued", { hasText: REMOVED }).waitFor();
            assert.deepEqual(await chat.locator(".queue .queued-text").allTextContents(), [
                QUEUED,
                REMOVED,
            ]);
            await shot("chat-tools-queue");
            await chat
                .getByRole("button", { name: `Remove the queued message "${REMOVED}"` })
                .click();
            await chat
                .locator(".queue .queued", { hasText: REMOVED })
                .waitFor({ state: "detached" });
            // Stop ends only the current answer: the queued message is sent next.
            await chat.locator(".stop").click();
            await chat.locator("article.user", { hasText: QUEUED }).waitFor();
            await chat.locator(".queue").waitFor({ state: "hidden" });
            await stopAnswer(chat);
            assert.deepEqual(await userTexts(chat), ["Tell me about soil", QUEUED]);
            const stored = await storedChat(vscode, "Tell me about soil");
            assert.deepEqual(
                stored.messages.map((m) => (m.role === "user" ? m.text : m.state)),
                ["Tell me about soil", "stopped", QUEUED, "stopped"],
            );
        },
    );

    await step("rename a chat and search the history by title and by text", async () => {
        await vscode.runCommand("OLMo: Show Chat History");
        const gardens = chat.locator(".history-list li", { hasText: FIRST });
        await gardens.getByRole("button", { name: `Rename chat "${FIRST}"` }).click();
        const box = vscode.page.locator(".quick-input-widget .quick-input-box input");
        await box.waitFor();
        await box.fill(RENAMED);
        await box.press("Enter");
        await chat.locator(".history-title", { hasText: RENAMED }).waitFor();
        const search = chat.getByRole("searchbox", { name: "Search chats by title and text" });
        await search.fill("tomatoes");
        await chat.locator(".history-title", { hasText: RENAMED }).waitFor({ state: "detached" });
        assert.deepEqual(await chat.locator(".history-title").allTextContents(), [
            "Tell me about soil",
        ]);
        await search.fill("garden plans");
        await chat.locator(".history-title", { hasText: RENAMED }).waitFor();
        assert.equal(await chat.locator(".history-title").count(), 1);
        await shot("chat-tools-copy-rename-search");
        assert.equal((await storedChat(vscode, FIRST)).title, RENAMED);
    });

    await step("export a chat as Markdown through the save dialog", async () => {
        await chat
            .locator(".history-list li", { hasText: RENAMED })
            .getByRole("button", { name: `Export chat "${RENAMED}" as Markdown` })
            .click();
        // code-server's save dialog is VS Code's simple dialog: a quick input holding the path.
        const file = path.join(vscode.dirs.workspace, `${RENAMED}.md`);
        const box = vscode.page.locator(".quick-input-widget .quick-input-box input");
        await box.waitFor();
        await vscode.page.waitForFunction(
            (expected) =>
                document
                    .querySelector<HTMLInputElement>(".quick-input-widget .quick-input-box input")
                    ?.value.endsWith(expected),
            `${RENAMED}.md`,
        );
        await shot("chat-tools-export");
        await box.press("Enter");
        await vscode.page
            .locator(".notifications-toasts", { hasText: "was exported to" })
            .waitFor();
        const markdown = await readFile(file, "utf8");
        assert.ok(markdown.startsWith(`# ${RENAMED}\n\n## You\n\n${FIRST}\n\n## OLMo\n\n`));
        assert.ok(markdown.includes(`## You\n\n${EDITED}\n`));
        assert.ok(!markdown.includes(SECOND), "the dropped turn is not exported");
    });

    await step(
        "with greedy settings, a regenerated answer says it gives the same text",
        async () => {
            // The workspace's settings change both at once; the system prompt's note showing up is
            // the sign that the extension has read the new temperature too.
            await mkdir(path.join(vscode.dirs.workspace, ".vscode"), { recursive: true });
            await writeFile(
                path.join(vscode.dirs.workspace, ".vscode", "settings.json"),
                JSON.stringify({ "olmo.systemPrompt": "Be brief.", "olmo.temperature": 0 }),
            );
            await chat.locator(".history-open", { hasText: RENAMED }).click();
            await chat.locator(".system-prompt-note").waitFor();
            const last = chat.locator("article.assistant").last();
            // The version on screen was sampled (temperature 0.7), and its button says so.
            await last
                .getByRole("button", { name: "Regenerate this answer with a fresh seed" })
                .click();
            await stopAnswer(chat);
            await last.locator(".version-label", { hasText: "3/3" }).waitFor();
            await last
                .locator(".greedy-note", {
                    hasText: "Greedy settings (temperature 0): regenerating gives the same answer.",
                })
                .waitFor();
            await last
                .getByRole("button", {
                    name: "Regenerate this answer (greedy settings: the same answer)",
                })
                .waitFor();
        },
    );
}
