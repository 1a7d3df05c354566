// @-attachments in the chat view, in a real VS Code (code-server) with the packaged VSIX and the
// generated tiny model: `@` offers a workspace file by name (not those search.exclude or .gitignore
// leave out), the keyboard chooses it, a chip with its token count appears and the meter counts
// it, the message is sent and the stored message carries the file's text as the prompt got it;
// then a binary file, a file over the size limit and one larger than the context are refused with
// their reasons, and a chip's remove button works from the keyboard. In Restricted Mode, a drop
// on the composer: a file inside the workspace is attached, one outside refused. The drag from
// the explorer itself is not driven: VS Code lets a drop into a webview through only with Shift
// held, which Playwright's drag cannot do across the workbench and the webview's frame; the test
// dispatches the drop event the composer gets, with the file: URIs a uri-list carries.
// Run: node --import tsx --test test/e2e/attach.test.ts (after `node --import tsx test/prepare.ts`).
import { describe, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { writeFile } from "node:fs/promises";
import * as path from "node:path";
import { pathToFileURL } from "node:url";
import type { FrameLocator } from "playwright-core";
import { ensureTestModel } from "../support/models.js";
import { answerFinished, storedConversations } from "./chatPage.js";
import type { VSCodeSession } from "./harness.js";
import { EXTENSION_ID, requireVsix } from "./product.js";
import { stepsOf } from "./steps.js";
import { forEachVSCode } from "./versions.js";

const MARKER = "zebra-4711";
const ATTACHED_SOURCE = `export const attachMarker = "${MARKER}";\n`;
/** A PNG header: NUL bytes after the signature. */
const BINARY = "\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
/** Over the 1 MB limit. */
const OVERSIZE = "log line\n".repeat(130_000);
/** Under 1 MB but about 8,000 tokens: more than a 4,096-token context has room for. */
const NEVER_FITS = "word ".repeat(8_000);

forEachVSCode((vs) =>
    describe(`e2e: @-attach in the chat (VS Code ${vs.label})`, () => {
        test(
            "@ offers a workspace file, the chip counts its tokens, its text reaches the stored message; refusals say why",
            { timeout: 10 * 60_000 },
            async (t) => {
                const modelPath = await ensureTestModel("tiny");
                await vs.withVSCode(
                    {
                        name: "attach",
                        vsix: requireVsix(),
                        settings: {
                            "olmo.modelPath": modelPath,
                            "olmo.gpu": "cpu",
                            "olmo.contextSize": 4096,
                            "olmo.maxTokens": 64,
                            "search.exclude": { "**/generated": true },
                        },
                        workspaceFiles: {
                            "src/attachMe.ts": ATTACHED_SOURCE,
                            "generated/attachGenerated.ts": "// left out by search.exclude\n",
                            "attachIgnored.txt": "left out by .gitignore\n",
                            ".gitignore": "attachIgnored.txt\n",
                            "logo.png": BINARY,
                            "big.log": OVERSIZE,
                            "words.txt": NEVER_FITS,
                            "broken.json": '{"a": }\n',
                        },
                        timeoutMs: 90_000,
                    },
                    (vscode) => attachScenario(t, vscode, vs.label),
                );
            },
        );

        test(
            "in Restricted Mode a file dropped from inside the workspace is attached, one from outside refused, and git does not run",
            { timeout: 5 * 60_000 },
            async () => {
                const modelPath = await ensureTestModel("tiny");
                await vs.withVSCode(
                    {
                        name: "attach-restricted",
                        vsix: requireVsix(),
                        workspaceTrust: true, // the workspace opens in restricted mode
                        settings: {
                            "olmo.modelPath": modelPath,
                            "olmo.gpu": "cpu",
                            "olmo.contextSize": 4096,
                        },
                        workspaceFiles: {
                            "src/inside.ts": "export const inside = 1;\n",
                            "attachIgnored.txt": "left out by .gitignore where git may run\n",
                            ".gitignore": "attachIgnored.txt\n",
                        },
                        timeoutMs: 90_000,
                    },
                    (vscode) => restrictedScenario(vscode, vs.label),
                );
            },
        );
    }),
);

async function attachScenario(t: TestContext, vscode: VSCodeSession, label: string): Promise<void> {
    // A repository, so that .gitignore applies (git check-ignore); before the first @ searches.
    execFileSync("git", ["init", "-q"], { cwd: vscode.dirs.workspace });
    const step = stepsOf(t);
    let chat: FrameLocator = vscode.webview(EXTENSION_ID);
    const input = () => chat.locator("textarea");
    const list = () => chat.locator('[role="listbox"]');
    const optionLabels = () => list().locator('[role="option"] .attach-option-label');

    await step("the model is loaded and the chat is open", async () => {
        await vscode.runCommand("OLMo: Load Model");
        await vscode.page
            .locator('.part.statusbar .statusbar-item[aria-label^="OLMo Local: ready"]')
            .waitFor({ state: "visible", timeout: 120_000 });
        await vscode.runCommand("OLMo: Focus Chat");
        chat = vscode.webview(EXTENSION_ID);
        await input().waitFor();
        await chat.locator(".meter-text", { hasText: /^0 \/ 4,096$/ }).waitFor();
    });

    await step(
        "@ and part of a name offer the workspace file, not those search.exclude and .gitignore leave out",
        async () => {
            await input().click();
            await input().pressSequentially("Explain @attach");
            await list().waitFor({ state: "visible" });
            await optionLabels().first().waitFor();
            assert.deepEqual(await optionLabels().allTextContents(), ["attachMe.ts"]);
            assert.equal(
                await list().locator('[role="option"] .attach-option-detail').first().textContent(),
                "src/attachMe.ts",
            );
            const active = await input().getAttribute("aria-activedescendant");
            assert.equal(
                await list().locator('[role="option"][aria-selected="true"]').getAttribute("id"),
                active,
            );
            await vscode.screenshot(`chat-tools-attach-list-${label}`);
        },
    );

    let chipTokens = 0;
    await step("Enter chooses it: a chip with its token count, counted by the meter", async () => {
        await input().press("Enter");
        await list().waitFor({ state: "hidden" });
        assert.equal(
            await input().inputValue(),
            "Explain ",
            "the typed @attach gave way to the chip",
        );
        const chip = chat.locator(".attachments:not(.sent) [role=listitem]", {
            hasText: "attachMe.ts",
        });
        await chip.waitFor();
        const tokens = (await chip.locator(".attachment-tokens").textContent()) ?? "";
        const match = /^(\d+) tokens$/.exec(tokens);
        assert.ok(match, `the chip says "${tokens}"`);
        chipTokens = Number(match[1]);
        assert.ok(chipTokens > 10, `${chipTokens} tokens for the file's block`);
        await chat
            .locator(".meter-text", { hasText: new RegExp(`^${chipTokens} / 4,096$`) })
            .waitFor();
        assert.equal(await chip.locator("button").getAttribute("aria-label"), "Remove attachMe.ts");
        await vscode.screenshot(`chat-tools-attach-chip-${label}`);
    });

    await step("sent: the answer arrives and the stored message has the file's text", async () => {
        await input().pressSequentially("this file");
        await input().press("Enter");
        await chat.locator("article.user .attachments.sent", { hasText: "attachMe.ts" }).waitFor();
        await chat.locator("article.assistant").first().waitFor();
        await answerFinished(chat);
        assert.equal(await chat.locator(".attachments:not(.sent) [role=listitem]").count(), 0);
        const stored = (await storedConversations(vscode)).find(
            (c) => c.messages[0]?.text === "Explain this file",
        );
        assert.ok(stored, "the conversation is stored");
        const [question, answer] = stored.messages;
        assert.ok(question.role === "user", "the first message is the question");
        assert.equal(question.attachments?.length, 1);
        const attached = question.attachments[0];
        assert.equal(attached.kind, "file");
        assert.equal(attached.path, "src/attachMe.ts");
        assert.equal(attached.tokens, chipTokens);
        assert.equal(attached.text, "From `src/attachMe.ts`:\n\n```ts\n" + ATTACHED_SOURCE + "```");
        assert.ok(
            answer.role === "assistant" &&
                answer.text.length > 0 &&
                (answer.state === "done" || answer.state === "truncated"),
            JSON.stringify(answer).slice(0, 200),
        );
    });

    const refused = async (query: string, name: string, reason: RegExp) => {
        await input().pressSequentially(`@${query}`);
        await list().locator('[role="option"]', { hasText: name }).first().waitFor();
        assert.equal(await optionLabels().first().textContent(), name);
        await input().press("Enter");
        const notice = chat.locator('.attach-notice[role="alert"]');
        await notice.filter({ hasText: name }).waitFor();
        assert.match((await notice.textContent()) ?? "", reason);
        assert.equal(await chat.locator(".attachments:not(.sent) [role=listitem]").count(), 0);
    };

    await step("a binary file is refused with the reason", async () => {
        await refused(
            "logo",
            "logo.png",
            /^logo\.png looks like a binary file \(it contains NUL bytes\): only text files can be attached\.$/,
        );
        await vscode.screenshot(`chat-tools-attach-refused-${label}`);
    });

    await step("a file over the size limit is refused with its size", () =>
        refused("big", "big.log", /^big\.log is 1\.2 MB: files over 1\.0 MB are not attached\.$/),
    );

    await step("a file larger than the context's room is refused with its tokens", () =>
        refused(
            "words",
            "words.txt",
            /^words\.txt is [\d,]+ tokens: more than the 4,032 the context has room for/,
        ),
    );

    await step("a chip's remove button works from the keyboard", async () => {
        await input().pressSequentially("@attachMe");
        await optionLabels().first().waitFor();
        await input().press("Enter");
        const remove = chat.getByRole("button", { name: "Remove attachMe.ts" });
        await remove.waitFor();
        await remove.focus();
        await remove.press("Enter");
        await remove.waitFor({ state: "detached" });
        await chat.locator(".meter-text", { hasText: /^[1-9][\d,]* \/ 4,096$/ }).waitFor();
    });

    await step(
        "the open file's selection and problems are offered; its problems reach the stored message",
        async () => {
            await vscode.openFile("broken.json");
            // The JSON language server's error, counted in the status bar.
            await vscode.page
                .locator('[id="status.problems"]')
                .filter({ hasText: /[1-9]/ })
                .waitFor();
            await vscode.page.locator(".monaco-editor .view-lines").first().click();
            await vscode.page.keyboard.press("Control+A");
            // The extension host has the selection once the context chip names it.
            await chat.locator(".context-chip", { hasText: "broken.json:1" }).waitFor();
            await input().click();
            await input().pressSequentially("@");
            await optionLabels().first().waitFor();
            assert.deepEqual((await optionLabels().allTextContents()).slice(0, 3), [
                "Selection",
                "Problems in broken.json",
                "broken.json",
            ]);
            assert.equal(
                await list().locator('[role="option"] .attach-option-detail').first().textContent(),
                "line 1 of broken.json",
            );
            await input().press("ArrowDown");
            await input().press("Enter");
            await chat
                .locator(".attachments:not(.sent) [role=listitem]", {
                    hasText: "Problems in broken.json",
                })
                .waitFor();
            await input().pressSequentially("Fix these");
            await input().press("Enter");
            await chat
                .locator("article.user .attachments.sent", { hasText: "Problems in broken.json" })
                .waitFor();
            await answerFinished(chat);
            const question = (await storedConversations(vscode))
                .flatMap((c) => c.messages)
                .find((m) => m.role === "user" && m.text === "Fix these");
            assert.ok(question?.role === "user", "the message is stored");
            assert.equal(question.attachments?.[0].kind, "problems");
            assert.match(
                question.attachments[0].text,
                /^Problems VS Code reports in `broken\.json`:\n\n- line 1, error: \S/,
            );
        },
    );

    await step("after a window reload the sent messages show their attachments again", async () => {
        const before = await storedConversations(vscode);
        await vscode.reload();
        await vscode.runCommand("OLMo: Focus Chat");
        chat = vscode.webview(EXTENSION_ID);
        await chat.locator("article.user .attachments.sent", { hasText: "attachMe.ts" }).waitFor();
        await chat
            .locator("article.user .attachments.sent", { hasText: "Problems in broken.json" })
            .waitFor();
        assert.deepEqual(
            (await storedConversations(vscode)).map((c) => c.messages),
            before.map((c) => c.messages),
            "the stored text as sent is what the next turns use",
        );
    });
}

async function restrictedScenario(vscode: VSCodeSession, label: string): Promise<void> {
    execFileSync("git", ["init", "-q"], { cwd: vscode.dirs.workspace });
    const outside = path.join(vscode.dirs.root, "outside.txt");
    await writeFile(outside, "not in the workspace\n");
    // 1.100 asks at startup; newer releases open untrusted folders in restricted mode directly.
    if (label === "1.100")
        await vscode.page.getByRole("button", { name: "No, I don't trust the authors" }).click();
    await vscode.page
        .locator(".statusbar-item", { hasText: "Restricted Mode" })
        .waitFor({ state: "visible" });
    await vscode.runCommand("OLMo: Load Model");
    await vscode.page
        .locator('.part.statusbar .statusbar-item[aria-label^="OLMo Local: ready"]')
        .waitFor({ state: "visible", timeout: 120_000 });
    await vscode.runCommand("OLMo: Focus Chat");
    const chat = vscode.webview(EXTENSION_ID);
    await chat.locator("textarea").waitFor();

    // The drop event the composer gets when files are dropped on it, with the explorer's uri-list.
    const uriList = [path.join(vscode.dirs.workspace, "src", "inside.ts"), outside]
        .map((file) => pathToFileURL(file).href)
        .join("\r\n");
    await chat.locator("form.composer").evaluate((composer, list) => {
        const data = new DataTransfer();
        data.setData("text/uri-list", list);
        composer.dispatchEvent(
            new DragEvent("drop", { dataTransfer: data, bubbles: true, cancelable: true }),
        );
    }, uriList);
    await chat.locator(".attachments [role=listitem]", { hasText: "inside.ts" }).waitFor();
    const notice = chat.locator('.attach-notice[role="alert"]');
    await notice.filter({ hasText: "outside.txt" }).waitFor();
    assert.equal(
        await notice.textContent(),
        `${outside} is outside this workspace's folders, and the workspace is in Restricted Mode: ` +
            "only its own files and untitled editors can be attached until you trust it.",
    );
    assert.equal(await chat.locator(".attachments [role=listitem]").count(), 1);

    // git runs what a repository's config names, so it does not run here: .gitignore is not applied.
    await chat.locator("textarea").pressSequentially("@attachI");
    await chat
        .locator('[role="option"] .attach-option-label', { hasText: "attachIgnored.txt" })
        .waitFor();
    await vscode.waitForExtensionLog(/OLMo Local/, "git does not run in Restricted Mode");
    await vscode.screenshot(`chat-tools-attach-restricted-${label}`);
}
