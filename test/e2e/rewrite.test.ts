// Explain and Rewrite Selection in a real VS Code (code-server) with the packaged VSIX and the
// generated tiny model: the diff editor with the streamed proposal, Accept as one undoable edit
// (checked on disk after saving), Reject, an edit during the rewrite that makes Accept refuse, the
// entry points (palette, context submenu, keybinding, code actions), and Explain in the chat view.
// Run: node --import tsx --test test/e2e/rewrite.test.ts (after `node --import tsx test/prepare.ts`).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import * as path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { fitReplacement } from "../../extension/rewriteEdit.js";
import type { VSCodeSession } from "./harness.js";
import { forEachVSCode } from "./versions.js";
import { EXTENSION_ID, requireVsix } from "./product.js";
import {
    baseSettings,
    diffTab,
    instructionPicker,
    loadModel,
    loggedProposal,
    pickInstruction,
    proposalShown,
    selectLines,
    titleAction,
} from "./editorPage.js";

const SAMPLE = "// sample\nfunction add(a, b) {\n    const sum = a + b;\n    return sum;\n}\n";
/** Lines 3-4 of SAMPLE, whole, with their newline: what selectLines(3, 2) selects. */
const BODY = "    const sum = a + b;\n    return sum;\n";
const BODY_START = SAMPLE.indexOf(BODY);

/**
 * Selects with `select` and opens the code action menu (Ctrl+.) until it lists `titles`. The menu
 * waits for every provider, and while the TypeScript server starts it comes back empty; closing it
 * with Escape also drops the selection, hence selecting again on each try.
 */
async function showCodeActions(
    vscode: VSCodeSession,
    select: () => Promise<void>,
    titles: string[],
): Promise<void> {
    const menu = vscode.page.locator(".action-widget:not(.action-list-submenu-panel)");
    const deadline = Date.now() + 120_000;
    for (;;) {
        await select();
        await vscode.page.keyboard.press("Control+.");
        try {
            for (const title of titles)
                await menu.getByText(title, { exact: true }).waitFor({ timeout: 5_000 });
            return;
        } catch (error) {
            if (Date.now() > deadline) throw error;
            if (await menu.isVisible()) await vscode.page.keyboard.press("Escape");
        }
    }
}

/**
 * Saves the active editor and waits until the file on disk holds `expected`. VS Code in a browser
 * also saves by itself after a delay (files.autoSave's default there), so an edit that lands after
 * Ctrl+S still reaches the file.
 */
async function saveAndExpect(vscode: VSCodeSession, file: string, expected: string): Promise<void> {
    await vscode.page.keyboard.press("Control+S");
    const deadline = Date.now() + vscode.timeout;
    let text = "";
    while ((text = await readFile(file, "utf8")) !== expected) {
        if (Date.now() > deadline) assert.equal(text, expected, `${file} after saving`);
        await delay(100);
    }
}

forEachVSCode((vs) =>
    describe(`e2e: explain and rewrite (VS Code ${vs.label})`, () => {
        test(
            "rewrite: the proposal streams into a diff; Accept is one undoable edit; Reject leaves the file alone",
            { timeout: 10 * 60_000 },
            async () => {
                // No olmo.maxTokens: the sidecar sizes a rewrite to the code (2 x its tokens + 128).
                const settings = {
                    ...(await baseSettings()),
                    "olmo.contextSize": 1024,
                    "olmo.rewrite.presentation": "diff",
                };
                await vs.withVSCode(
                    {
                        name: "rewrite",
                        vsix: requireVsix(),
                        logLevel: "debug",
                        settings,
                        workspaceFiles: { "sample.js": SAMPLE },
                    },
                    async (vscode) => {
                        const { page } = vscode;
                        const file = path.join(vscode.dirs.workspace, "sample.js");
                        await loadModel(vscode);
                        await vscode.openFile("sample.js");

                        // The code actions on a selection: both are offered.
                        await showCodeActions(vscode, () => selectLines(vscode, 3, 2), [
                            "OLMo: Explain",
                            "OLMo: Rewrite…",
                        ]);
                        await vscode.screenshot(`rewrite-code-actions-${vs.label}`);
                        await page.keyboard.press("Escape");
                        await page
                            .locator(".action-widget:not(.action-list-submenu-panel)")
                            .waitFor({ state: "hidden" });
                        await selectLines(vscode, 3, 2);

                        // From the palette, with a preset.
                        await vscode.runCommand("OLMo: Rewrite Selection", {
                            opensQuickPick: true,
                        });
                        await pickInstruction(vscode, "Simplify");
                        await diffTab(vscode).waitFor();
                        const first = await loggedProposal(vscode, 1);
                        assert.equal(first.fileName, "sample.js");
                        assert.equal(first.lines, "3-4");
                        assert.ok(first.code.length > 0, "the sidecar returned code");
                        // What the diff shows, and Accept writes: the sidecar's code fitted to the selection.
                        assert.equal(
                            first.replacement,
                            fitReplacement(first.code, { text: BODY, linePrefix: "", eol: "\n" }),
                        );
                        await proposalShown(vscode, first.replacement);
                        await vscode
                            .notification(/rewrite of sample\.js \(lines 3-4\) is ready/)
                            .waitFor();
                        await vscode.screenshot(`rewrite-diff-${vs.label}`);

                        await titleAction(vscode, "Accept Rewrite").click();
                        await diffTab(vscode).waitFor({ state: "detached" });
                        await page
                            .locator(".tabs-container .tab.active", { hasText: "sample.js" })
                            .waitFor();
                        const accepted =
                            SAMPLE.slice(0, BODY_START) +
                            first.replacement +
                            SAMPLE.slice(BODY_START + BODY.length);
                        await saveAndExpect(vscode, file, accepted);
                        await vscode.screenshot(`rewrite-accepted-${vs.label}`);

                        // One Undo takes the whole rewrite back.
                        await page.keyboard.press("Control+Z");
                        await saveAndExpect(vscode, file, SAMPLE);

                        // From the editor's context menu (the OLMo submenu), with an instruction of one's own; then Reject.
                        await selectLines(vscode, 3, 2);
                        await page
                            .locator(".monaco-editor .view-line", { hasText: "const sum" })
                            .click({ button: "right" });
                        await page
                            .locator(".monaco-menu .action-label", { hasText: /^OLMo$/ })
                            .hover();
                        await vscode.screenshot(`rewrite-context-menu-${vs.label}`);
                        // Hover and Enter: the menu ignores a click that comes too soon after it opened.
                        await page
                            .locator(".monaco-menu .action-label", { hasText: "Rewrite Selection" })
                            .hover();
                        await page.keyboard.press("Enter");
                        await pickInstruction(vscode, "Use early returns");
                        await diffTab(vscode).waitFor();
                        const second = await loggedProposal(vscode, 2);
                        await proposalShown(vscode, second.replacement);
                        await titleAction(vscode, "Reject Rewrite").click();
                        await diffTab(vscode).waitFor({ state: "detached" });
                        await page
                            .locator(".tabs-container .tab.active:not(.dirty)", {
                                hasText: "sample.js",
                            })
                            .waitFor();
                        assert.equal(await readFile(file, "utf8"), SAMPLE);

                        // The keybinding opens the instruction list, the recent custom instruction first.
                        await selectLines(vscode, 3, 2);
                        await page.keyboard.press("Control+Alt+R");
                        await instructionPicker(vscode).waitFor();
                        const firstRow = page
                            .locator(".quick-input-widget .monaco-list-row")
                            .first();
                        assert.match(
                            (await firstRow.textContent()) ?? "",
                            /Use early returns.*recent/,
                        );
                        await vscode.screenshot(`rewrite-instructions-${vs.label}`);
                        await page.keyboard.press("Escape");
                    },
                );
            },
        );

        test(
            "rewrite: an edit to the file while the proposal streams makes Accept refuse, saying why; Cancel stops it",
            { timeout: 10 * 60_000 },
            async () => {
                // A long answer, so that it is still streaming when the file is edited.
                const settings = {
                    ...(await baseSettings()),
                    "olmo.contextSize": 4096,
                    "olmo.maxTokens": 3500,
                    "olmo.rewrite.presentation": "diff",
                };
                await vs.withVSCode(
                    {
                        name: "rewrite-changed",
                        vsix: requireVsix(),
                        logLevel: "debug",
                        settings,
                        workspaceFiles: { "sample.js": SAMPLE },
                    },
                    async (vscode) => {
                        const { page } = vscode;
                        await loadModel(vscode);
                        await vscode.openFile("sample.js");
                        await selectLines(vscode, 3, 2);
                        await page.keyboard.press("Control+Alt+R");
                        await pickInstruction(vscode, "Fix bugs");
                        await diffTab(vscode).waitFor();

                        const running = vscode.notification(/OLMo: rewriting sample\.js/);
                        await running.waitFor();
                        await page
                            .locator(".tabs-container .tab", { hasText: "sample.js" })
                            .filter({ hasNotText: "OLMo's rewrite" })
                            .click();
                        await page
                            .locator(
                                ".part.editor .monaco-editor.focused:not(.monaco-diff-editor .monaco-editor)",
                            )
                            .waitFor();
                        await page.keyboard.press("Control+End");
                        await page.keyboard.type("// edited\n");
                        await page
                            .locator(".part.editor .monaco-editor .view-line", {
                                hasText: "// edited",
                            })
                            .waitFor();
                        assert.ok(
                            await running.isVisible(),
                            "the file was edited while the proposal was still streaming",
                        );

                        // A second rewrite of the same file while this one runs is refused.
                        await selectLines(vscode, 3, 2);
                        await page.keyboard.press("Control+Alt+R");
                        await vscode
                            .notification(/A rewrite of sample\.js is still running/)
                            .waitFor();

                        await loggedProposal(vscode, 1);
                        await vscode
                            .notification(/rewrite of sample\.js \(lines 3-4\) is ready/)
                            .getByRole("button", { name: "Accept" })
                            .click();
                        await vscode
                            .notification(/sample\.js changed after the rewrite started/)
                            .waitFor();
                        const editorText =
                            (
                                await page
                                    .locator(".monaco-editor .view-lines")
                                    .first()
                                    .textContent()
                            )?.replace(/\u00a0/g, " ") ?? "";
                        assert.match(
                            editorText,
                            /const sum = a \+ b;/,
                            "the original code is still there",
                        );
                        await vscode.screenshot(`rewrite-refused-${vs.label}`);

                        // Cancel in the progress notification stops the answer in the sidecar (it returns early, marked cancelled).
                        await selectLines(vscode, 3, 2);
                        await page.keyboard.press("Control+Alt+R");
                        await pickInstruction(vscode, "Make it faster");
                        // The refused rewrite's diff is still open until this one starts: wait for the new one's progress.
                        await vscode.notification(/OLMo: rewriting sample\.js/).waitFor();
                        // Newer releases leave a hover over the notifications after the refusal: move it away first.
                        await page.mouse.move(0, 0);
                        await page
                            .locator(".context-view .hover-contents")
                            .waitFor({ state: "hidden" });
                        await vscode
                            .notification(/OLMo: rewriting sample\.js/)
                            .getByRole("button", { name: "Cancel" })
                            .click();
                        await diffTab(vscode).waitFor({ state: "detached" });
                        const log = await vscode.waitForExtensionLog(
                            /OLMo Local/,
                            /rewrite of sample\.js cancelled after \d+ tokens/,
                        );
                        const tokens = Number(
                            /rewrite of sample\.js cancelled after (\d+) tokens/.exec(log)?.[1],
                        );
                        assert.ok(tokens < 3500, `stopped after ${tokens} of 3500 tokens`);
                    },
                );
            },
        );

        test(
            "explain: the chat view opens with the code, its file and lines, and streams the explanation",
            { timeout: 10 * 60_000 },
            async () => {
                const settings = {
                    ...(await baseSettings()),
                    "olmo.contextSize": 1024,
                    "olmo.maxTokens": 64,
                };
                await vs.withVSCode(
                    {
                        name: "explain",
                        vsix: requireVsix(),
                        settings,
                        workspaceFiles: { "sample.js": SAMPLE },
                    },
                    async (vscode) => {
                        await vscode.openFile("sample.js");
                        await selectLines(vscode, 3, 2);
                        await vscode.runCommand("OLMo: Explain Selection");
                        const chat = vscode.webview(EXTENSION_ID);
                        const request = chat.locator("article.user").last();
                        await request.waitFor({ timeout: 60_000 });
                        const requestText = (await request.textContent()) ?? "";
                        assert.match(requestText, /sample\.js/);
                        assert.match(requestText, /3-4/);
                        assert.match(
                            (await request.locator(".code-block code").textContent()) ?? "",
                            /const sum = a \+ b;\s*return sum;/,
                        );
                        const answer = chat.locator("article.assistant").last();
                        await answer
                            .locator(".markdown")
                            .filter({ hasText: /\S/ })
                            .waitFor({ timeout: 120_000 });
                        await chat
                            .locator('article.assistant[aria-busy="true"]')
                            .waitFor({ state: "detached", timeout: 120_000 });
                        await vscode.screenshot(`explain-chat-${vs.label}`);
                    },
                );
            },
        );
    }),
);
