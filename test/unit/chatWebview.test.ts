// The chat view's script, bundled as for the webview and run in jsdom against a fake extension.
import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import * as esbuild from "esbuild";
import { JSDOM } from "jsdom";
import type { ChatSnapshot, HostToWebview, Message, WebviewToHost } from "../../media/protocol.js";

let bundle: string;

before(async () => {
    const result = await esbuild.build({
        entryPoints: ["media/chat.ts"],
        bundle: true,
        write: false,
        format: "iife",
        platform: "browser",
        target: "chrome120",
        logLevel: "silent",
    });
    bundle = result.outputFiles[0].text;
});

interface View {
    window: JSDOM["window"];
    document: Document;
    posted: WebviewToHost[];
    /** Delivers a message from the extension, as `webview.postMessage` does. */
    receive(message: HostToWebview): void;
    nextFrame(): Promise<void>;
    $(selector: string): HTMLElement;
}

function openView(): View {
    const dom = new JSDOM("<!DOCTYPE html><html><head></head><body></body></html>", {
        runScripts: "outside-only",
        pretendToBeVisual: true,
    });
    const posted: WebviewToHost[] = [];
    Object.assign(dom.window, {
        acquireVsCodeApi: () => ({
            postMessage: (message: WebviewToHost) => posted.push(structuredClone(message)),
        }),
    });
    dom.window.eval(bundle);
    const document = dom.window.document;
    return {
        window: dom.window,
        document,
        posted,
        receive: (message) =>
            dom.window.dispatchEvent(
                new dom.window.MessageEvent("message", { data: structuredClone(message) }),
            ),
        nextFrame: () =>
            new Promise((resolve) =>
                dom.window.requestAnimationFrame(() => setTimeout(resolve, 0)),
            ),
        $: (selector) => {
            const element = document.querySelector<HTMLElement>(selector);
            assert.ok(element, `no element matches ${selector}`);
            return element;
        },
    };
}

function snapshotWith(messages: Message[], overrides: Partial<ChatSnapshot> = {}): ChatSnapshot {
    return {
        conversation: { id: "c1", title: "Sorting", createdAt: 1, updatedAt: 2, messages },
        history: [
            { id: "c1", title: "Sorting", updatedAt: 2, messageCount: messages.length },
            { id: "c0", title: "Older chat", updatedAt: 1, messageCount: 4 },
        ],
        model: { kind: "ready", name: "tiny", contextSize: 4096 },
        context: { enabled: false },
        tokens: { tokens: 120, contextSize: 4096 },
        queued: [],
        historyQuery: "",
        ...overrides,
    };
}

const question: Message = { id: "u1", role: "user", text: "How do I sort?" };
const answer: Message = {
    id: "a1",
    role: "assistant",
    text: "Use `sorted()`:\n\n```python\nsorted([3, 1])\n```\n\nSee [docs](https://docs.python.org) or [this](command:workbench.action.terminal.new).",
    state: "done",
};

function key(view: View, target: Element, init: KeyboardEventInit): void {
    target.dispatchEvent(
        new view.window.KeyboardEvent("keydown", { bubbles: true, cancelable: true, ...init }),
    );
}

describe("unit: chat webview", () => {
    test("says ready first, then draws the snapshot it gets", () => {
        const view = openView();
        assert.deepEqual(view.posted, [{ type: "ready" }]);
        assert.equal(
            view.$(".messages").textContent,
            "",
            "nothing is drawn before the extension says what to draw",
        );
        view.receive({ type: "snapshot", snapshot: snapshotWith([]) });
        assert.match(view.$(".messages").textContent ?? "", /Ask OLMo about your code/);
        view.receive({ type: "snapshot", snapshot: snapshotWith([question, answer]) });
        const articles = view.document.querySelectorAll(".messages article");
        assert.equal(articles.length, 2);
        assert.equal(
            view.$(".message.assistant .markdown code.language-python").textContent,
            "sorted([3, 1])\n",
        );
        assert.equal(view.$(".meter-text").textContent, "120 / 4,096");
        assert.equal(
            view.$("meter").getAttribute("aria-label"),
            "Context used: 120 / 4,096 tokens",
        );
    });

    test("the message list is a polite live region and every button has a label", () => {
        const view = openView();
        view.receive({
            type: "snapshot",
            snapshot: snapshotWith(
                [
                    question,
                    answer,
                    {
                        id: "a2",
                        role: "assistant",
                        text: "",
                        state: "failed",
                        error: { code: "noModel", message: "No model is set." },
                    },
                ],
                { model: { kind: "noModel" } },
            ),
        });
        view.receive({ type: "showHistory" });
        assert.equal(view.$(".messages").getAttribute("aria-live"), "polite");
        const buttons = [...view.document.querySelectorAll("button")];
        assert.ok(buttons.length >= 10);
        for (const b of buttons)
            assert.ok(b.getAttribute("aria-label"), `no aria-label: ${b.outerHTML}`);
    });

    test("a workspace's system prompt in effect is shown as a note that opens the setting", () => {
        const view = openView();
        view.receive({ type: "snapshot", snapshot: snapshotWith([question, answer]) });
        const note = view.$(".system-prompt-note") as HTMLButtonElement;
        assert.equal(note.hidden, true, "no note without a workspace value");
        view.receive({
            type: "snapshot",
            snapshot: snapshotWith([question, answer], {
                systemPrompt: { text: "Always answer in pirate speak." },
            }),
        });
        assert.equal(note.hidden, false);
        assert.equal(
            note.getAttribute("aria-label"),
            `This workspace's settings give OLMo a system prompt: "Always answer in pirate speak.". Press to open the setting.`,
        );
        assert.equal(note.title, note.getAttribute("aria-label"));
        note.click();
        assert.deepEqual(view.posted.at(-1), { type: "openSystemPromptSetting" });
        view.receive({ type: "systemPrompt" });
        assert.equal(note.hidden, true, "gone when the workspace value is removed");
    });

    test("streamed deltas are drawn once per animation frame; finished messages are kept", async () => {
        const view = openView();
        const streaming: Message = { id: "a2", role: "assistant", text: "", state: "streaming" };
        view.receive({
            type: "snapshot",
            snapshot: snapshotWith([
                question,
                answer,
                { id: "u2", role: "user", text: "More?" },
                streaming,
            ]),
        });
        const firstAnswer = view.$('article[data-id="a1"]');
        const growing = view.$('article[data-id="a2"]');
        assert.equal(growing.getAttribute("aria-busy"), "true");
        assert.ok(growing.querySelector(".generating"));

        for (const piece of ["Sure", ", here ", "is **more**"])
            view.receive({ type: "delta", messageId: "a2", text: piece });
        assert.equal(
            growing.querySelector(".markdown")!.textContent,
            "",
            "nothing is drawn before the frame",
        );
        await view.nextFrame();
        assert.equal(
            growing.querySelector(".markdown")!.innerHTML,
            "<p>Sure, here is <strong>more</strong></p>\n",
        );
        assert.equal(growing.querySelector(".generating"), null);

        view.receive({
            type: "snapshot",
            snapshot: snapshotWith([
                question,
                answer,
                { id: "u2", role: "user", text: "More?" },
                { ...streaming, text: "Sure, here is **more**", state: "done" },
            ]),
        });
        assert.equal(
            view.$('article[data-id="a1"]'),
            firstAnswer,
            "an unchanged message keeps its element",
        );
        assert.equal(view.$('article[data-id="a2"]').getAttribute("aria-busy"), null);
    });

    test("Enter sends, Shift+Enter does not, Escape and the Stop button stop an answer", () => {
        const view = openView();
        view.receive({ type: "snapshot", snapshot: snapshotWith([]) });
        const input = view.$("textarea") as HTMLTextAreaElement;
        input.value = "line one";
        key(view, input, { key: "Enter", shiftKey: true });
        assert.equal(view.posted.length, 1, "Shift+Enter only adds a line");
        key(view, input, { key: "Enter" });
        assert.deepEqual(view.posted.at(-1), { type: "send", text: "line one" });
        assert.equal(input.value, "");
        key(view, input, { key: "Enter" });
        assert.equal(view.posted.length, 2, "an empty message is not sent");

        view.receive({
            type: "snapshot",
            snapshot: snapshotWith([
                question,
                { id: "a2", role: "assistant", text: "", state: "streaming" },
            ]),
        });
        assert.equal(view.$(".stop").hidden, false);
        assert.equal(
            view.$(".send").getAttribute("aria-label"),
            "Queue the message (sent when the answer ends)",
        );
        input.value = "while answering";
        key(view, input, { key: "Enter" });
        assert.deepEqual(
            view.posted.at(-1),
            { type: "send", text: "while answering" },
            "the extension queues it",
        );
        assert.equal(input.value, "");
        key(view, input, { key: "Escape" });
        assert.deepEqual(view.posted.at(-1), { type: "stop" });
        view.posted.length = 0;
        view.$(".stop").click();
        assert.deepEqual(view.posted, [{ type: "stop" }]);
    });

    test("code block buttons post the block's code; only http(s) links are opened, through the extension", () => {
        const view = openView();
        view.receive({ type: "snapshot", snapshot: snapshotWith([question, answer]) });
        view.posted.length = 0;
        for (const action of ["copy", "insert", "apply"])
            view.$(`.code-action[data-action="${action}"]`).click();
        assert.deepEqual(view.posted, [
            { type: "copyCode", code: "sorted([3, 1])\n" },
            { type: "insertCode", code: "sorted([3, 1])\n" },
            { type: "applyCode", code: "sorted([3, 1])\n" },
        ]);
        view.posted.length = 0;
        const links = view.document.querySelectorAll(".markdown a");
        assert.equal(links.length, 1, "the command: link is plain text");
        // VS Code's webview host opens any clicked link itself, without its trusted-domain prompt,
        // from a click listener on the window: the click must not get there.
        let reachedWindow = false;
        view.window.addEventListener("click", () => (reachedWindow = true));
        const click = new view.window.MouseEvent("click", { bubbles: true, cancelable: true });
        links[0].dispatchEvent(click);
        assert.equal(click.defaultPrevented, true, "the webview itself never navigates");
        assert.equal(reachedWindow, false, "VS Code's own link handler never sees the click");
        assert.deepEqual(view.posted, [{ type: "openLink", href: "https://docs.python.org" }]);
    });

    test("failed answers offer Retry; a missing model explains the setting and offers set-up; errors offer Restart", () => {
        const view = openView();
        const failed: Message = {
            id: "a2",
            role: "assistant",
            text: "",
            state: "failed",
            error: { code: "noModel", message: "No model is set." },
        };
        view.receive({
            type: "snapshot",
            snapshot: snapshotWith([question, failed], { model: { kind: "noModel" } }),
        });
        assert.match(view.$(".banner").textContent ?? "", /olmo\.modelPath/);
        view.posted.length = 0;
        view.$('article[data-id="a2"] button[data-command="retry"]').click();
        view.$('article[data-id="a2"] button[data-command="setUpModel"]').click();
        view.$('.banner button[data-command="openModelSettings"]').click();
        view.$('.banner button[data-command="setUpModel"]').click();
        assert.deepEqual(view.posted, [
            { type: "retry", messageId: "a2" },
            { type: "setUpModel" },
            { type: "openModelSettings" },
            { type: "setUpModel" },
        ]);

        view.receive({ type: "model", model: { kind: "loading", progress: 0.42 } });
        assert.match(view.$(".banner").textContent ?? "", /42%/);
        view.receive({ type: "model", model: { kind: "error", message: "CUDA out of memory" } });
        assert.match(view.$(".banner").textContent ?? "", /CUDA out of memory/);
        view.posted.length = 0;
        view.$('.banner button[data-command="restartModel"]').click();
        assert.deepEqual(view.posted, [{ type: "restartModel" }]);
        view.receive({ type: "model", model: { kind: "ready", name: "tiny", contextSize: 4096 } });
        assert.equal(view.$(".banner").hidden, true);
    });

    test("a team server's failures offer their way out: Set API Key, Open Settings", () => {
        const view = openView();
        const refused: Message = {
            id: "a2",
            role: "assistant",
            text: "",
            state: "failed",
            error: {
                code: "serverUnauthorized",
                message: "The OLMo server at gpu-box:8080 refused the API key (401).",
            },
        };
        view.receive({
            type: "snapshot",
            snapshot: snapshotWith([question, refused], {
                model: {
                    kind: "error",
                    code: "serverUnreachable",
                    message: "Cannot reach the OLMo server at gpu-box:8080.",
                },
            }),
        });
        const restart = view.$('.banner button[data-command="restartModel"]');
        assert.equal(restart.classList.contains("primary"), false, "the server's way out leads");
        view.posted.length = 0;
        view.$('article[data-id="a2"] button[data-command="setServerApiKey"]').click();
        view.$('.banner button[data-command="openServerSettings"]').click();
        assert.deepEqual(view.posted, [
            { type: "setServerApiKey" },
            { type: "openServerSettings" },
        ]);
        // Other failures offer neither.
        view.receive({ type: "model", model: { kind: "error", message: "CUDA out of memory" } });
        assert.equal(
            view.document.querySelectorAll(".banner button[data-command*='Server']").length,
            0,
        );
        assert.equal(
            view.$('.banner button[data-command="restartModel"]').classList.contains("primary"),
            true,
        );
    });

    test("stopped, cut-off and shortened answers say so", () => {
        const view = openView();
        view.receive({
            type: "snapshot",
            snapshot: snapshotWith([
                question,
                { id: "a1", role: "assistant", text: "partial", state: "stopped" },
                { id: "u2", role: "user", text: "again" },
                {
                    id: "a2",
                    role: "assistant",
                    text: "long",
                    state: "truncated",
                    droppedMessages: 3,
                },
            ]),
        });
        assert.match(view.$('article[data-id="a1"] .answer-note').textContent ?? "", /Stopped/);
        assert.match(
            view.$('article[data-id="a2"] .answer-note').textContent ?? "",
            /length limit/,
        );
        assert.equal(
            view.$('article[data-id="a2"] .notice').textContent,
            "3 earlier messages were left out to fit the context.",
        );
    });

    test("the context chip shows what would be added and toggles through the extension", () => {
        const view = openView();
        view.receive({ type: "snapshot", snapshot: snapshotWith([]) });
        assert.equal(view.$(".context-chip").hidden, true, "no editor, no chip");
        view.receive({
            type: "context",
            context: {
                enabled: false,
                available: {
                    fileName: "main.ts",
                    path: "src/main.ts",
                    startLine: 3,
                    endLine: 9,
                    wholeFile: false,
                },
            },
        });
        const chip = view.$(".context-chip");
        assert.equal(chip.textContent, "main.ts:3-9");
        assert.equal(chip.getAttribute("aria-pressed"), "false");
        view.posted.length = 0;
        chip.click();
        assert.deepEqual(view.posted, [{ type: "setContextEnabled", enabled: true }]);
        view.receive({
            type: "context",
            context: {
                enabled: true,
                available: {
                    fileName: "main.ts",
                    path: "src/main.ts",
                    startLine: 1,
                    endLine: 40,
                    wholeFile: true,
                },
            },
        });
        assert.equal(chip.getAttribute("aria-pressed"), "true");
        assert.equal(chip.textContent, "main.ts (whole file)");
        view.receive({
            type: "context",
            context: {
                enabled: true,
                available: {
                    fileName: "main.ts",
                    path: "src/main.ts",
                    startLine: 4,
                    endLine: 4,
                    wholeFile: false,
                },
            },
        });
        assert.equal(chip.textContent, "main.ts:4");
        view.receive({
            type: "context",
            context: {
                enabled: false,
                unavailableReason: "big.ts is larger than 8 KB: select the code to add.",
            },
        });
        assert.equal((chip as HTMLButtonElement).disabled, true);
    });

    test("the history lists past chats to open or delete, and Escape goes back", () => {
        const view = openView();
        view.receive({ type: "snapshot", snapshot: snapshotWith([question, answer]) });
        view.receive({ type: "showHistory" });
        assert.equal(view.$(".history").hidden, false);
        assert.equal(view.$(".chat").hidden, true);
        const items = view.document.querySelectorAll(".history-list li");
        assert.deepEqual(
            [...items].map((li) => li.querySelector(".history-title")?.textContent),
            ["Sorting", "Older chat"],
        );
        assert.equal(items[0].querySelector(".history-open")?.getAttribute("aria-current"), "true");
        view.posted.length = 0;
        (items[1].querySelector(".history-delete") as HTMLElement).click();
        (items[1].querySelector(".history-open") as HTMLElement).click();
        assert.deepEqual(view.posted, [
            { type: "deleteChat", id: "c0" },
            { type: "openChat", id: "c0" },
        ]);
        assert.equal(
            view.$(".history").hidden,
            true,
            "opening a chat goes back to the conversation",
        );
        view.receive({ type: "showHistory" });
        key(view, view.document.body, { key: "Escape" });
        assert.equal(view.$(".history").hidden, true);
        assert.equal(view.document.activeElement, view.$("textarea"));
    });

    test("Edit turns a sent message into an editor in place: Enter resends it, Escape cancels", () => {
        const view = openView();
        view.receive({ type: "snapshot", snapshot: snapshotWith([question, answer]) });
        view.posted.length = 0;
        const edit = view.$('article[data-id="u1"] [data-command="edit"]');
        assert.equal(edit.getAttribute("aria-label"), "Edit this message and send it again");
        edit.click();
        const editor = view.$('article[data-id="u1"] .edit-box textarea') as HTMLTextAreaElement;
        assert.equal(editor.value, "How do I sort?");
        assert.equal(view.document.activeElement, editor);
        assert.equal(view.$('article[data-id="u1"] .markdown').hidden, true);
        key(view, editor, { key: "Escape" });
        assert.equal(view.document.querySelector(".edit-box"), null, "Escape cancels");
        assert.equal(view.$('article[data-id="u1"] .markdown').hidden, false);
        assert.deepEqual(view.posted, [], "nothing is sent and the answer is not stopped");
        assert.equal(view.document.activeElement, edit, "focus goes back to Edit");

        edit.click();
        const again = view.$(".edit-box textarea") as HTMLTextAreaElement;
        again.value = "How do I sort in reverse?";
        key(view, again, { key: "Enter" });
        assert.deepEqual(view.posted, [
            { type: "editMessage", messageId: "u1", text: "How do I sort in reverse?" },
        ]);
    });

    test("Up in an empty composer edits the last message sent; with text it moves the caret", () => {
        const later: Message = { id: "u2", role: "user", text: "And in reverse?" };
        const view = openView();
        view.receive({
            type: "snapshot",
            snapshot: snapshotWith([question, answer, later, { ...answer, id: "a2" }]),
        });
        const input = view.$("textarea") as HTMLTextAreaElement;
        input.value = "draft";
        key(view, input, { key: "ArrowUp" });
        assert.equal(view.document.querySelector(".edit-box"), null);
        input.value = "";
        key(view, input, { key: "ArrowUp" });
        const editor = view.$('article[data-id="u2"] .edit-box textarea') as HTMLTextAreaElement;
        assert.equal(editor.value, "And in reverse?");
        assert.equal(view.document.activeElement, editor);
    });

    test("only the last answer offers Regenerate; copy, prompt and the version switcher post their requests", () => {
        const first: Message = { ...answer, id: "a0" };
        const versioned: Message = {
            id: "a1",
            role: "assistant",
            text: "second version",
            state: "done",
            otherVersions: [{ text: "first version", state: "done" }],
            versionIndex: 1,
            usage: { promptTokens: 40, reusedTokens: 30, completionTokens: 5 },
        };
        const view = openView();
        view.receive({
            type: "snapshot",
            snapshot: snapshotWith([{ ...question, id: "u0" }, first, question, versioned]),
        });
        assert.equal(
            view.document.querySelector('[data-id="a0"] [data-command="regenerate"]'),
            null,
        );
        assert.equal(view.$('[data-id="a1"] .version-label').textContent, "2/2");
        assert.equal((view.$('[data-id="a1"] .version-next') as HTMLButtonElement).disabled, true);
        assert.equal(
            view.$('[data-id="a1"] .usage').textContent,
            "40 prompt tokens (30 reused, 10 evaluated) · 5 generated",
        );
        assert.equal(view.document.querySelector(".greedy-note"), null);
        view.posted.length = 0;
        view.$('[data-id="a1"] .version-previous').click();
        view.$('[data-id="a1"] [data-command="regenerate"]').click();
        view.$('[data-id="a1"] [data-command="copyAnswer"]').click();
        view.$('[data-id="a1"] [data-command="showPrompt"]').click();
        assert.deepEqual(view.posted, [
            { type: "showVersion", messageId: "a1", index: 0 },
            { type: "regenerate", messageId: "a1" },
            { type: "copyAnswer", messageId: "a1" },
            { type: "showPrompt", messageId: "a1" },
        ]);

        view.receive({
            type: "snapshot",
            snapshot: snapshotWith([question, { ...versioned, greedy: true }]),
        });
        assert.match(view.$(".greedy-note").textContent ?? "", /Greedy settings.*the same answer/);
    });

    test("queued messages are listed with a labelled remove button", () => {
        const view = openView();
        view.receive({
            type: "snapshot",
            snapshot: snapshotWith(
                [question, { id: "a2", role: "assistant", text: "", state: "streaming" }],
                {
                    queued: [
                        { id: "q1", text: "first queued" },
                        { id: "q2", text: "second queued" },
                    ],
                },
            ),
        });
        const items = view.document.querySelectorAll(".queue .queued");
        assert.deepEqual(
            [...items].map((li) => li.querySelector(".queued-text")?.textContent),
            ["first queued", "second queued"],
        );
        const remove = items[1].querySelector(".queued-remove") as HTMLElement;
        assert.equal(
            remove.getAttribute("aria-label"),
            'Remove the queued message "second queued"',
        );
        view.posted.length = 0;
        remove.click();
        assert.deepEqual(view.posted, [{ type: "unqueue", id: "q2" }]);
        view.receive({ type: "snapshot", snapshot: snapshotWith([question, answer]) });
        assert.equal(view.$(".queue").hidden, true);
    });

    test("the history has a search box, and Rename and Export on each chat", () => {
        const view = openView();
        view.receive({ type: "snapshot", snapshot: snapshotWith([question, answer]) });
        view.receive({ type: "showHistory" });
        view.posted.length = 0;
        const search = view.$(".history-search") as HTMLInputElement;
        assert.equal(search.getAttribute("aria-label"), "Search chats by title and text");
        search.value = "sort";
        search.dispatchEvent(new view.window.Event("input", { bubbles: true }));
        const item = view.document.querySelectorAll(".history-list li")[1];
        (item.querySelector(".history-rename") as HTMLElement).click();
        (item.querySelector(".history-export") as HTMLElement).click();
        assert.deepEqual(view.posted, [
            { type: "searchHistory", query: "sort" },
            { type: "renameChat", id: "c0" },
            { type: "exportChat", id: "c0" },
        ]);
        view.receive({
            type: "snapshot",
            snapshot: snapshotWith([question, answer], { history: [], historyQuery: "zzz" }),
        });
        assert.equal(view.$(".history .hint").textContent, "No chat matches the search.");
    });
});
