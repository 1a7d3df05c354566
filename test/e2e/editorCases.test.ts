// Explain and Rewrite on the editors that are not a plain saved file, in a real VS Code
// (code-server) with the packaged VSIX and the generated tiny model: an untitled document (rewritten
// and accepted), read-only files (files.readonlyInclude, and file permissions with
// files.readonlyFromPermissions: explained, rewrite refused), two selections, a file over 1 MB and
// one with a NUL character (both refused). One VS Code session per release walks through them all.
// Run: node --import tsx --test test/e2e/editorCases.test.ts (after `node --import tsx test/prepare.ts`).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { chmod } from "node:fs/promises";
import * as path from "node:path";
import type { FrameLocator } from "playwright-core";
import { fitReplacement } from "../../extension/rewriteEdit.js";
import type { VSCodeSession } from "./harness.js";
import { forEachVSCode } from "./versions.js";
import { EXTENSION_ID, requireVsix } from "./product.js";
import { answerFinished } from "./chatPage.js";
import {
    baseSettings,
    diffTab,
    editorShows,
    goToLine,
    instructionPicker,
    loadModel,
    loggedProposal,
    pickInstruction,
    proposalShown,
    selectLines,
    titleAction,
} from "./editorPage.js";

/** Each file names itself on its first line, which tells when its editor shows it (see openShown). */
const sample = (name: string) =>
    `// ${name}\nfunction add(a, b) {\n    const sum = a + b;\n    return sum;\n}\n`;
/** Typed into the untitled document: no brackets or quotes, which the editor would close on its own. */
const UNTITLED = "const a = 1;\nconst b = 2;\nconst sum = a + b;\nexport default sum;\n";
/** Lines 2-3 of UNTITLED, whole, with their newline: what selectLines(2, 2) selects. */
const UNTITLED_BODY = "const b = 2;\nconst sum = a + b;\n";
const HUGE =
    "// huge.js\n" +
    Array.from({ length: 40_000 }, (_, i) => `const value${i} = ${i} * 2;\n`).join("");
// VS Code takes a file for binary only when a NUL is in its first 512 bytes: this one opens as text.
const WITH_NUL = "// nul.js\n" + "// plain text first\n".repeat(30) + 'const nul = "\0";\n';

/** Waits for the chat's `nth` (1-based) request and the end of its streamed answer; returns the request. */
async function explained(chat: FrameLocator, nth: number): Promise<{ text: string; code: string }> {
    const request = chat.locator("article.user").nth(nth - 1);
    await request.waitFor({ timeout: 60_000 });
    await chat
        .locator("article.assistant")
        .nth(nth - 1)
        .locator(".markdown")
        .filter({ hasText: /\S/ })
        .waitFor({ timeout: 120_000 });
    await answerFinished(chat);
    return {
        text: (await request.textContent()) ?? "",
        code: (await request.locator(".code-block code").textContent()) ?? "",
    };
}

/**
 * Opens a workspace file and waits until its editor shows it: the tab turns active before the
 * editor has the file, and keys pressed in between go to the file before.
 */
async function openShown(vscode: VSCodeSession, name: string): Promise<void> {
    await vscode.openFile(name);
    await vscode.page
        .locator(".part.editor .monaco-editor .view-line", { hasText: `// ${name}` })
        .waitFor();
}

/** Types into the active editor and waits for VS Code's answer that it is read-only (which says why). */
async function refusesTyping(vscode: VSCodeSession): Promise<void> {
    await vscode.page.keyboard.press("x");
    await vscode.page
        .locator(".monaco-editor-overlaymessage")
        .filter({ hasText: /read-only/ })
        .waitFor();
}

/** A screenshot once the toast that says `text` has faded in, so that it shows. */
async function screenshotWithToast(
    vscode: VSCodeSession,
    name: string,
    text: string,
): Promise<void> {
    await vscode.page.locator(".notification-fade-in-done").filter({ hasText: text }).waitFor();
    await vscode.screenshot(name);
}

forEachVSCode((vs) =>
    describe(`e2e: explain and rewrite on untitled, read-only, multi-cursor, huge and NUL documents (VS Code ${vs.label})`, () => {
        test(
            "untitled: rewrite and Accept; read-only: explain, rewrite refused; first of 2 selections; over 1 MB and NUL refused",
            { timeout: 10 * 60_000 },
            async () => {
                assert.ok(HUGE.length > 1_000_000, `huge.js has ${HUGE.length} characters`);
                const settings = {
                    ...(await baseSettings()),
                    "olmo.contextSize": 1024,
                    "olmo.maxTokens": 64,
                    // This test's untitled rewrite is the diff's; test/e2e/inlineRewrite.test.ts covers inline.
                    "olmo.rewrite.presentation": "diff",
                    // Accept selects the new code: whitespace drawn as dots in a selection would hide the spaces read back.
                    "editor.renderWhitespace": "none",
                };
                const workspaceSettings = {
                    "files.readonlyInclude": { "**/readonly.js": true },
                    "files.readonlyFromPermissions": true,
                };
                const workspaceFiles = {
                    "readonly.js": sample("readonly.js"),
                    "locked.js": sample("locked.js"),
                    "multi.js": sample("multi.js"),
                    "huge.js": HUGE,
                    "nul.js": WITH_NUL,
                };
                await vs.withVSCode(
                    {
                        name: "editor-cases",
                        vsix: requireVsix(),
                        logLevel: "debug",
                        settings,
                        workspaceSettings,
                        workspaceFiles,
                    },
                    async (vscode) => {
                        const { page } = vscode;
                        const chat = vscode.webview(EXTENSION_ID);
                        await chmod(path.join(vscode.dirs.workspace, "locked.js"), 0o444);
                        await loadModel(vscode);

                        // An untitled document, never saved: the rewrite replaces the selected lines in it.
                        await vscode.runCommand("File: New Untitled Text File");
                        await page
                            .locator(".tabs-container .tab.active", { hasText: "Untitled-1" })
                            .waitFor();
                        await page.locator(".part.editor .monaco-editor.focused").waitFor();
                        await page.keyboard.type(UNTITLED);
                        await editorShows(vscode, ".part.editor .monaco-editor", UNTITLED);
                        await selectLines(vscode, 2, 2);
                        await vscode.runCommand("OLMo: Rewrite Selection", {
                            opensQuickPick: true,
                        });
                        await pickInstruction(vscode, "Simplify");
                        await diffTab(vscode).waitFor();
                        const proposal = await loggedProposal(vscode, 1);
                        assert.equal(proposal.fileName, "Untitled-1");
                        assert.equal(proposal.lines, "2-3");
                        assert.equal(
                            proposal.replacement,
                            fitReplacement(proposal.code, {
                                text: UNTITLED_BODY,
                                linePrefix: "",
                                eol: "\n",
                            }),
                        );
                        await proposalShown(vscode, proposal.replacement);
                        await vscode
                            .notification(/rewrite of Untitled-1 \(lines 2-3\) is ready/)
                            .waitFor();
                        await titleAction(vscode, "Accept Rewrite").click();
                        await diffTab(vscode).waitFor({ state: "detached" });
                        await page
                            .locator(".tabs-container .tab.active.dirty", { hasText: "Untitled-1" })
                            .waitFor();
                        const accepted = UNTITLED.replace(UNTITLED_BODY, proposal.replacement);
                        assert.notEqual(accepted, UNTITLED);
                        await editorShows(vscode, ".part.editor .monaco-editor", accepted);
                        await vscode.screenshot(`editor-cases-untitled-${vs.label}`);

                        // Read-only through files.readonlyInclude: VS Code refuses typing, and so does Rewrite.
                        await openShown(vscode, "readonly.js");
                        await refusesTyping(vscode);
                        // The palette leaves Rewrite out here (it offered it for the untitled document above) and
                        // lists "similar commands" instead, Explain among them.
                        await page.keyboard.press("Control+Shift+P");
                        await page
                            .locator(".quick-input-widget .quick-input-box input")
                            .fill(">OLMo: Rewrite Selection");
                        const paletteLabels = page.locator(
                            ".quick-input-widget .monaco-list-row .label-name",
                        );
                        await paletteLabels
                            .filter({ hasText: /^OLMo: (Explain|Rewrite) Selection$/ })
                            .first()
                            .waitFor();
                        assert.equal(
                            await paletteLabels
                                .filter({ hasText: /^OLMo: Rewrite Selection$/ })
                                .count(),
                            0,
                        );
                        await page.keyboard.press("Escape");
                        await page.locator(".quick-input-widget").waitFor({ state: "hidden" });
                        // Explain works on it.
                        await selectLines(vscode, 3, 2);
                        await vscode.runCommand("OLMo: Explain Selection");
                        const readonlyRequest = await explained(chat, 1);
                        assert.match(readonlyRequest.text, /readonly\.js, lines 3-4:/);
                        assert.match(
                            readonlyRequest.code,
                            /^\s*const sum = a \+ b;\s*return sum;\s*$/,
                        );
                        // The Rewrite keybinding says why not, and opens nothing.
                        await page
                            .locator(".tabs-container .tab.active", { hasText: "readonly.js" })
                            .click();
                        await page.locator(".part.editor .monaco-editor.focused").waitFor();
                        await page.keyboard.press("Control+Alt+R");
                        await vscode
                            .notification(
                                "readonly.js is read-only, so OLMo cannot rewrite it. OLMo: Explain Selection works on it.",
                            )
                            .waitFor();
                        assert.equal(await instructionPicker(vscode).isVisible(), false);
                        assert.equal(await diffTab(vscode).count(), 0);
                        await screenshotWithToast(
                            vscode,
                            `editor-cases-readonly-${vs.label}`,
                            "readonly.js is read-only",
                        );

                        // Read-only through its permissions (chmod 444; files.readonlyFromPermissions): the same refusal.
                        await openShown(vscode, "locked.js");
                        await refusesTyping(vscode);
                        await selectLines(vscode, 3, 2);
                        await page.keyboard.press("Control+Alt+R");
                        await vscode
                            .notification("locked.js is read-only, so OLMo cannot rewrite it.")
                            .waitFor();
                        assert.equal(await diffTab(vscode).count(), 0);

                        // Two selections (a cursor added below, both extended to the line end): the first one is explained.
                        await openShown(vscode, "multi.js");
                        await goToLine(vscode, 3, 5);
                        await vscode.runCommand("Add Cursor Below");
                        await page.keyboard.press("Shift+End");
                        await vscode
                            .statusBarItem("2 selections (29 characters selected)")
                            .waitFor();
                        await vscode.runCommand("OLMo: Explain Selection");
                        await vscode.notification("Using the first of 2 selections.").waitFor();
                        const multiRequest = await explained(chat, 2);
                        assert.match(multiRequest.text, /multi\.js, lines 3:/);
                        assert.equal(multiRequest.code.trim(), "const sum = a + b;");
                        await vscode.screenshot(`editor-cases-multicursor-${vs.label}`);

                        // Over 1,000,000 characters, or a NUL character: refused with the reason, nothing reaches the chat.
                        const refusals = [
                            {
                                file: "huge.js",
                                shot: "huge",
                                reason: "huge.js is larger than 1 MB: OLMo works on source files, not on files this large.",
                            },
                            {
                                file: "nul.js",
                                shot: "nul",
                                reason: "nul.js looks like a binary file (it contains NUL characters): OLMo works on text.",
                            },
                        ];
                        for (const { file, shot, reason } of refusals) {
                            await openShown(vscode, file);
                            await selectLines(vscode, 1, 2);
                            await vscode.runCommand("OLMo: Explain Selection");
                            await vscode.notification(reason).waitFor();
                            assert.equal(await chat.locator("article.user").count(), 2);
                            await screenshotWithToast(
                                vscode,
                                `editor-cases-${shot}-${vs.label}`,
                                reason,
                            );
                        }
                    },
                );
            },
        );
    }),
);
