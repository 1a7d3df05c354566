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
