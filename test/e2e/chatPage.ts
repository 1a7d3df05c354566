// Driving the chat view in the E2E harness: sending, waiting for answers, and reading the store
// the extension writes, shared by the tests that use the view.
import { readdir, readFile } from "node:fs/promises";
import * as path from "node:path";
import type { FrameLocator } from "playwright-core";
import type { Conversation } from "../../media/protocol.js";
import type { VSCodeSession } from "./harness.js";
import { EXTENSION_ID } from "./product.js";

export function conversationsFolder(vscode: VSCodeSession): string {
    return path.join(vscode.dirs.userData, "User", "globalStorage", EXTENSION_ID, "conversations");
}

export async function storedConversations(vscode: VSCodeSession): Promise<Conversation[]> {
    const folder = conversationsFolder(vscode);
    const files = (await readdir(folder)).filter((f) => f.endsWith(".json"));
    return Promise.all(files.map(async (f) => JSON.parse(await readFile(path.join(folder, f), "utf8")) as Conversation));
}

/** Sends a message and waits until its answer is on screen (streaming or done). */
export async function send(chat: FrameLocator, text: string): Promise<void> {
    const answers = chat.locator("article.assistant");
    const before = await answers.count();
    const input = chat.locator("textarea");
    await input.fill(text);
    await input.press("Enter");
    await answers.nth(before).waitFor({ state: "attached" });
}

/** Waits until no answer is streaming. */
export async function answerFinished(chat: FrameLocator): Promise<void> {
    await chat.locator('article.assistant[aria-busy="true"]').waitFor({ state: "detached", timeout: 300_000 });
}

/**
 * Sends `text` and waits for the answer to finish; returns the milliseconds, on the webview's own
 * clock, from the Enter key to the answer's first text on screen.
 */
export async function sendAndTimeFirstToken(chat: FrameLocator, text: string): Promise<number> {
    await chat.locator(".messages").evaluate((list) => {
        const timing = { enterAt: undefined as number | undefined, shownAfterMs: undefined as number | undefined };
        const answersBefore = list.querySelectorAll("article.assistant").length;
        (window as unknown as { olmoFirstToken: typeof timing }).olmoFirstToken = timing;
        // No named inner functions: the test runner's transform would wrap them in a helper the page lacks.
        const listening = new AbortController();
        document.querySelector("textarea")!.addEventListener(
            "keydown",
            (e) => {
                if (e.key === "Enter" && !e.shiftKey) timing.enterAt ??= performance.now();
            },
            { capture: true, signal: listening.signal },
        );
        new MutationObserver((_records, observer) => {
            const shown = list.querySelectorAll("article.assistant")[answersBefore]?.querySelector(".markdown")?.textContent ?? "";
            if (timing.enterAt === undefined || shown === "") return;
            timing.shownAfterMs = performance.now() - timing.enterAt;
            observer.disconnect();
            listening.abort();
        }).observe(list, { subtree: true, childList: true, characterData: true });
    });
    await send(chat, text);
    await answerFinished(chat);
    const shownAfterMs = await chat.locator("body").evaluate(() => (window as unknown as { olmoFirstToken: { shownAfterMs?: number } }).olmoFirstToken.shownAfterMs);
    if (shownAfterMs === undefined) throw new Error(`the answer to ${JSON.stringify(text)} showed no text`);
    return shownAfterMs;
}
