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
    return Promise.all(
        files.map(
            async (f) => JSON.parse(await readFile(path.join(folder, f), "utf8")) as Conversation,
        ),
    );
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
    await chat
        .locator('article.assistant[aria-busy="true"]')
        .waitFor({ state: "detached", timeout: 300_000 });
}

/** How an answer appeared in the webview, on the webview's own clock. */
export interface AnswerOnScreen {
    /** From the Enter key to the answer's first text. */
    firstShownMs: number;
    /** From the answer's first text to its last growth. */
    streamingMs: number;
    /** The distinct lengths its text passed through. */
    steps: number;
}

/** Sends `text`, waits for the answer to finish, and returns how it appeared on screen. */
export async function sendAndWatch(chat: FrameLocator, text: string): Promise<AnswerOnScreen> {
    await chat.locator(".messages").evaluate((list) => {
        const watch = {
            enterAt: undefined as number | undefined,
            steps: [] as Array<{ length: number; at: number }>,
            done: new AbortController(),
        };
        (window as unknown as { olmoWatch: typeof watch }).olmoWatch = watch;
        const answersBefore = list.querySelectorAll("article.assistant").length;
        // No named inner functions: the test runner's transform would wrap them in a helper the page lacks.
        document.querySelector("textarea")!.addEventListener(
            "keydown",
            (e) => {
                if (e.key === "Enter" && !e.shiftKey) watch.enterAt ??= performance.now();
            },
            { capture: true, signal: watch.done.signal },
        );
        const observer = new MutationObserver(() => {
            const answer = list.querySelectorAll("article.assistant").item(answersBefore);
            const length = answer?.querySelector(".markdown")?.textContent?.length ?? 0;
            if (watch.enterAt !== undefined && length > 0 && length !== watch.steps.at(-1)?.length)
                watch.steps.push({ length, at: performance.now() });
        });
        observer.observe(list, { subtree: true, childList: true, characterData: true });
        watch.done.signal.addEventListener("abort", () => observer.disconnect());
    });
    await send(chat, text);
    await answerFinished(chat);
    const { enterAt, steps } = await chat.locator("body").evaluate(() => {
        const watch = (
            window as unknown as {
                olmoWatch: {
                    enterAt?: number;
                    steps: Array<{ length: number; at: number }>;
                    done: AbortController;
                };
            }
        ).olmoWatch;
        watch.done.abort();
        return { enterAt: watch.enterAt, steps: watch.steps };
    });
    if (enterAt === undefined || steps.length === 0)
        throw new Error(`the answer to ${JSON.stringify(text)} showed no text`);
    return {
        firstShownMs: steps[0].at - enterAt,
        streamingMs: steps.at(-1)!.at - steps[0].at,
        steps: steps.length,
    };
}
