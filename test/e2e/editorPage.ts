// Driving the editor, Explain and Rewrite in the E2E harness: selecting lines, the instruction
// picker, the diff with the proposal and what the extension logged of it, shared by the tests that
// use them.
import { setTimeout as delay } from "node:timers/promises";
import { ensureTestModel } from "../support/models.js";
import type { VSCodeSession } from "./harness.js";

/** The proposal as the extension logged it when it was complete. */
export interface LoggedProposal {
    fileName: string;
    lines: string;
    stopReason: string;
    code: string;
    replacement: string;
}

export const baseSettings = async () => ({
    "olmo.modelPath": await ensureTestModel("tiny"),
    "olmo.gpu": "cpu",
    "olmo.threads": 1,
});

export async function loadModel(vscode: VSCodeSession): Promise<void> {
    await vscode.runCommand("OLMo: Load Model");
    await vscode.page
        .locator('.part.statusbar .statusbar-item[aria-label^="OLMo Local: ready"]')
        .waitFor({ timeout: 120_000 });
}

/** Moves the cursor to `line`, `column` (1-based) in the active editor, through Go to Line (":" in Quick Open). */
export async function goToLine(
    vscode: VSCodeSession,
    line: number,
    column?: number,
): Promise<void> {
    const { page } = vscode;
    await page.keyboard.press("Control+P");
    const input = page.locator(".quick-input-widget .quick-input-box input");
    await input.fill(column === undefined ? `:${line}` : `:${line}:${column}`);
    await page
        .locator(".quick-input-widget .monaco-list-row", { hasText: `Go to line ${line}` })
        .waitFor();
    await input.press("Enter");
    await page.locator(".quick-input-widget").waitFor({ state: "hidden" });
    await vscode.statusBarItem(new RegExp(`^\\s*Ln ${line}, Col ${column ?? 1}\\s*$`)).waitFor();
}

/** Selects `count` whole lines from line `first` (1-based) in the active editor. */
export async function selectLines(
    vscode: VSCodeSession,
    first: number,
    count: number,
): Promise<void> {
    await goToLine(vscode, first);
    for (let i = 0; i < count; i++) await vscode.page.keyboard.press("Shift+ArrowDown");
    await vscode.statusBarItem(`Ln ${first + count}, Col 1 (`).waitFor();
}

export function instructionPicker(vscode: VSCodeSession) {
    return vscode.page.locator(
        '.quick-input-widget .quick-input-box input[placeholder^="Pick an instruction"]',
    );
}

/** Picks a preset by its label, or types an instruction of one's own. */
export async function pickInstruction(vscode: VSCodeSession, text: string): Promise<void> {
    const input = instructionPicker(vscode);
    await input.fill(text);
    await vscode.page
        .locator(".quick-input-widget .monaco-list-row .label-name", { hasText: text })
        .first()
        .waitFor();
    await input.press("Enter");
}

/** Waits for the `nth` (1-based) complete proposal in the extension's log. */
export async function loggedProposal(vscode: VSCodeSession, nth: number): Promise<LoggedProposal> {
    const deadline = Date.now() + 120_000;
    for (;;) {
        const log = await vscode.extensionLog(/OLMo Local/);
        const found = [...log.matchAll(/rewrite ready: (\{.*\})$/gm)];
        if (found.length >= nth) return JSON.parse(found[nth - 1][1]) as LoggedProposal;
        if (Date.now() > deadline)
            throw new Error(`no rewrite #${nth} in the log:\n${log.slice(-2000)}`);
        await delay(250);
    }
}

/** Monaco's full-width characters (strings.isFullWidthCharacter): two columns each. */
function isFullWidth(character: string): boolean {
    const code = character.charCodeAt(0);
    return (
        (code >= 0x2e80 && code <= 0xd7af) ||
        (code >= 0xf900 && code <= 0xfaff) ||
        (code >= 0xff01 && code <= 0xff5e)
    );
}

/** A line as Monaco draws it: each tab as the spaces up to the next tab stop. */
function expandTabs(line: string, tabSize = 4): string {
    let drawn = "";
    let column = 0;
    for (const character of line) {
        const spaces = tabSize - (column % tabSize);
        drawn += character === "\t" ? " ".repeat(spaces) : character;
        column += character === "\t" ? spaces : isFullWidth(character) ? 2 : 1;
    }
    return drawn;
}

/**
 * Waits until the first editor that `editorSelector` finds shows `expected` (Monaco draws spaces
 * as no-break spaces, and no line breaks). Monaco reuses line elements and places each by its
 * `top`, so after lines come and go their DOM order is not the line order: sorted here.
 */
export async function editorShows(
    vscode: VSCodeSession,
    editorSelector: string,
    expected: string,
): Promise<void> {
    const flat = expected
        .split(/\r?\n/)
        .map((line) => expandTabs(line))
        .join("");
    await vscode.page.waitForFunction(
        ([selector, text]) => {
            const view = document.querySelector(`${selector} .view-lines`);
            const lines = [...(view?.querySelectorAll<HTMLElement>(":scope > .view-line") ?? [])];
            lines.sort((a, b) => parseFloat(a.style.top) - parseFloat(b.style.top));
            const shown = lines.map((line) => line.textContent ?? "").join("");
            return shown.replace(/\u00a0/g, " ") === text;
        },
        [editorSelector, flat] as const,
    );
}

/** Waits until the diff's right side shows `expected`. */
export async function proposalShown(vscode: VSCodeSession, expected: string): Promise<void> {
    await editorShows(vscode, ".monaco-diff-editor .editor.modified", expected);
}

export function diffTab(vscode: VSCodeSession) {
    return vscode.page.locator(".tabs-container .tab", { hasText: "OLMo's rewrite" });
}

export function titleAction(vscode: VSCodeSession, title: string) {
    return vscode.page.locator(`.editor-actions a.action-label[aria-label^="${title}"]`).first();
}
