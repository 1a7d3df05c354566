// @-attachments: the pure rules (filtering, binary detection, limits, the prompt blocks, the exclude
// glob, drops), the prompt a message with attachments gives, their storage, and the composer's
// list and chips bundled as for the webview and run in jsdom.
import { before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import * as esbuild from "esbuild";
import { JSDOM } from "jsdom";
import {
    binaryMessage,
    decodeText,
    excludeGlob,
    fenceLanguage,
    fileBlock,
    filterSuggestions,
    MAX_ATTACHMENT_BYTES,
    neverFitsMessage,
    parseUriList,
    problemsBlock,
    tooLargeMessage,
} from "../../extension/attachmentRules.js";
import { ConversationStore, toModelMessages } from "../../extension/conversationStore.js";
import { mentionAt } from "../../media/attachPicker.js";
import type {
    Attachment,
    AttachSuggestion,
    ChatSnapshot,
    HostToWebview,
    Message,
    WebviewToHost,
} from "../../media/protocol.js";
import { isWebviewToHost } from "../../media/protocol.js";

const file = (label: string, detail: string): AttachSuggestion => ({
    id: `file:${detail}`,
    kind: "file",
    label,
    detail,
});

const suggestions: AttachSuggestion[] = [
    { id: "selection", kind: "selection", label: "Selection", detail: "lines 3-9 of src/a.ts" },
    { id: "problems", kind: "problems", label: "Problems in a.ts", detail: "2 problems" },
    file("chatView.ts", "extension/chatView.ts"),
    file("chat.ts", "media/chat.ts"),
    file("view.css", "media/view.css"),
    file("README.md", "README.md"),
];

describe("unit: attachment rules", () => {
    test("an empty query keeps every entry in order, up to the limit", () => {
        assert.deepEqual(filterSuggestions(suggestions, ""), suggestions);
        assert.equal(filterSuggestions(suggestions, "", 2).length, 2);
    });

    test("the name starting with the query first, then containing it, then the path, then its letters in order", () => {
        const labels = (query: string) => filterSuggestions(suggestions, query).map((s) => s.label);
        assert.deepEqual(labels("chat"), ["chatView.ts", "chat.ts"]);
        assert.deepEqual(labels("VIEW"), ["view.css", "chatView.ts"]);
        assert.deepEqual(labels("media/"), ["chat.ts", "view.css"]);
        assert.deepEqual(labels("cvw"), ["chatView.ts"]);
        assert.deepEqual(labels("problems"), ["Problems in a.ts"]);
        assert.deepEqual(labels("zzz"), []);
    });

    test("text is UTF-8 without NUL bytes; anything else is binary, with the reason", () => {
        assert.deepEqual(decodeText(new TextEncoder().encode("héllo\n")), { text: "héllo\n" });
        assert.deepEqual(decodeText(new Uint8Array([0xef, 0xbb, 0xbf, 0x61])), { text: "a" });
        assert.deepEqual(decodeText(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x00])), {
            binary: "it contains NUL bytes",
        });
        assert.deepEqual(decodeText(new Uint8Array([0x61, 0xff, 0xfe, 0x62])), {
            binary: "it is not UTF-8 text",
        });
        assert.equal(
            binaryMessage("logo.png", "it contains NUL bytes"),
            "logo.png looks like a binary file (it contains NUL bytes): only text files can be attached.",
        );
    });

    test("the size limit and the context's room are refused with the sizes", () => {
        assert.equal(MAX_ATTACHMENT_BYTES, 1_000_000);
        assert.equal(
            tooLargeMessage("big.log", 2_345_678),
            "big.log is 2.3 MB: files over 1.0 MB are not attached.",
        );
        assert.equal(neverFitsMessage("a.ts", 3072, 3072), undefined);
        assert.equal(
            neverFitsMessage("a.ts", 3073, 3072),
            "a.ts is 3,073 tokens: more than the 3,072 the context has room for (after reserving " +
                "room for the answer). Attach a selection of it instead, or raise olmo.contextSize.",
        );
    });

    test("the prompt blocks: a file, a selection, problems", () => {
        assert.equal(
            fileBlock("src/a.ts", "let a;\n", "ts"),
            "From `src/a.ts`:\n\n```ts\nlet a;\n```",
        );
        assert.equal(
            fileBlock("src/a.ts", "x ``` y", "typescript", "3-4"),
            "From `src/a.ts` (lines 3-4):\n\n````typescript\nx ``` y\n````",
        );
        assert.equal(
            problemsBlock("src/a.ts", [
                { line: 3, severity: "error", message: "Cannot find\n  name 'x'.", source: "ts" },
                { line: 9, severity: "warning", message: "Unused." },
            ]),
            "Problems VS Code reports in `src/a.ts`:\n\n" +
                "- line 3, error: Cannot find name 'x'. (ts)\n- line 9, warning: Unused.",
        );
        assert.equal(fenceLanguage("src/App.TSX"), "tsx");
        assert.equal(fenceLanguage("Makefile"), "");
        assert.equal(fenceLanguage(".gitignore"), "");
    });

    test("one exclude glob of files.exclude and search.exclude, switched-on patterns only", () => {
        assert.equal(
            excludeGlob(
                { "**/.git": true, "**/*.log": false, "**/*.js": { when: "$(basename).ts" } },
                { "**/node_modules": true, "**/.git": true },
            ),
            "{**/.git,**/node_modules}",
        );
        assert.equal(excludeGlob(undefined, {}), undefined);
    });

    test("a drop's uri-list: one address a line, comments and blanks skipped", () => {
        assert.deepEqual(
            parseUriList("# from the explorer\r\nfile:///w/a.ts\r\n\r\nfile:///w/b%20c.md\n"),
            ["file:///w/a.ts", "file:///w/b%20c.md"],
        );
    });

    test("the @ at the caret: after a space or at the start, up to the caret", () => {
        assert.deepEqual(mentionAt("@", 1), { start: 0, query: "" });
        assert.deepEqual(mentionAt("look at @chat", 13), { start: 8, query: "chat" });
        assert.deepEqual(mentionAt("look at @chat and", 11), { start: 8, query: "ch" });
        assert.equal(mentionAt("mail me@example.com", 19), undefined);
        assert.equal(mentionAt("@chat done", 10), undefined);
    });

    test("the webview's attach messages are checked like every other", () => {
        for (const message of [
            { type: "attachQuery", query: "ch" },
            { type: "attach", suggestionId: "file:x" },
            { type: "attachUris", uriList: "file:///a" },
            { type: "removeAttachment", id: "a1" },
        ])
            assert.ok(isWebviewToHost(message), JSON.stringify(message));
        assert.equal(isWebviewToHost({ type: "attach", suggestionId: 3 }), false);
        assert.equal(isWebviewToHost({ type: "attachUris", uriList: ["file:///a"] }), false);
    });
});

const attachment: Attachment = {
    id: "att1",
    kind: "file",
    label: "a.ts",
    path: "src/a.ts",
    text: "From `src/a.ts`:\n\n```ts\nexport const a = 1;\n```",
    tokens: 17,
};
const problems: Attachment = {
    id: "att2",
    kind: "problems",
    label: "Problems in a.ts",
    path: "src/a.ts",
    text: "Problems VS Code reports in `src/a.ts`:\n\n- line 1, error: Nope.",
    tokens: 15,
};

describe("unit: a message with attachments in the prompt and the store", () => {
    test("the attachments as stored, in order, then the context chip's code, then the text", () => {
        const messages: Message[] = [
            {
                id: "u1",
                role: "user",
                text: "Fix it.",
                attachments: [attachment, problems],
                context: {
                    fileName: "b.ts",
                    path: "src/b.ts",
                    language: "typescript",
                    startLine: 2,
                    endLine: 2,
                    wholeFile: false,
                    text: "b();",
                },
            },
            { id: "a1", role: "assistant", text: "Done.", state: "done" },
            { id: "u2", role: "user", text: "Thanks" },
        ];
        assert.deepEqual(toModelMessages(messages, ""), [
            {
                role: "user",
                content:
                    `${attachment.text}\n\n${problems.text}\n\n` +
                    "From `src/b.ts` (line 2):\n\n```typescript\nb();\n```\n\nFix it.",
            },
            { role: "assistant", content: "Done." },
            { role: "user", content: "Thanks" },
        ]);
        assert.deepEqual(
            toModelMessages([{ id: "u", role: "user", text: "Hi", attachments: [] }], ""),
            [{ role: "user", content: "Hi" }],
        );
    });

    test("stored and read back with the text as sent; a file with malformed attachments is moved aside", async () => {
        const folder = await mkdtemp(path.join(tmpdir(), "olmo-attach-"));
        try {
            const reports: string[] = [];
            const store = new ConversationStore(folder, (m) => reports.push(m));
            const conversation = {
                id: "c1",
                title: "t",
                createdAt: 1,
                updatedAt: 1,
                messages: [
                    { id: "u1", role: "user" as const, text: "Fix", attachments: [attachment] },
                ],
            };
            await store.save(conversation);
            const onDisk = JSON.parse(await readFile(path.join(folder, "c1.json"), "utf8")) as {
                messages: Message[];
            };
            assert.deepEqual(onDisk.messages[0], conversation.messages[0]);
            assert.deepEqual(
                (await new ConversationStore(folder).get("c1"))?.messages,
                conversation.messages,
            );
            await writeFile(
                path.join(folder, "bad.json"),
                JSON.stringify({
                    ...conversation,
                    id: "bad",
                    messages: [{ ...conversation.messages[0], attachments: [{ label: "x" }] }],
                }),
            );
            assert.deepEqual(
                (await store.list()).map((c) => c.id),
                ["c1"],
            );
            assert.match(reports.join("\n"), /bad\.json \(not a conversation\)/);
        } finally {
            await rm(folder, { recursive: true, force: true });
        }
    });
});

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

function openView() {
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
    const receive = (message: HostToWebview) =>
        dom.window.dispatchEvent(
            new dom.window.MessageEvent("message", { data: structuredClone(message) }),
        );
    const snapshot: ChatSnapshot = {
        conversation: { id: "c1", title: "t", createdAt: 1, updatedAt: 1, messages: [] },
        history: [],
        model: { kind: "ready", name: "tiny", contextSize: 4096 },
        context: { enabled: false },
        tokens: { tokens: 120, contextSize: 4096 },
        queued: [],
        historyQuery: "",
    };
    receive({ type: "snapshot", snapshot });
    const input = document.querySelector("textarea")!;
    const $ = (selector: string) => {
        const element = document.querySelector<HTMLElement>(selector);
        assert.ok(element, `no element matches ${selector}`);
        return element;
    };
    const type = (text: string) => {
        input.value = text;
        input.setSelectionRange(text.length, text.length);
        input.dispatchEvent(new dom.window.Event("input", { bubbles: true }));
    };
    const key = (name: string) =>
        input.dispatchEvent(
            new dom.window.KeyboardEvent("keydown", { key: name, bubbles: true, cancelable: true }),
        );
    return { dom, document, posted, receive, input, $, type, key, snapshot };
}

describe("unit: the composer's @ list and chips (webview in jsdom)", () => {
    test("@ asks for suggestions; the listbox follows Up/Down with aria-activedescendant; Enter attaches instead of sending", () => {
        const view = openView();
        view.type("Look at @ch");
        assert.deepEqual(view.posted.at(-1), { type: "attachQuery", query: "ch" });
        const list = view.$("[role=listbox]");
        assert.equal(list.hidden, true, "nothing is shown before the suggestions arrive");
        const offered = filterSuggestions(suggestions, "ch");
        view.receive({ type: "attachSuggestions", query: "ch", suggestions: offered });
        assert.equal(list.hidden, false);
        const options = [...list.querySelectorAll("[role=option]")];
        assert.deepEqual(
            options.map((o) => o.querySelector(".attach-option-label")?.textContent),
            ["chatView.ts", "chat.ts"],
        );
        assert.equal(view.input.getAttribute("aria-controls"), list.id);
        assert.equal(view.input.getAttribute("aria-activedescendant"), options[0].id);
        view.key("ArrowDown");
        assert.equal(view.input.getAttribute("aria-activedescendant"), options[1].id);
        assert.equal(options[1].getAttribute("aria-selected"), "true");
        view.key("ArrowDown");
        assert.equal(view.input.getAttribute("aria-activedescendant"), options[0].id, "it wraps");
        view.key("ArrowUp");
        view.key("Enter");
        assert.deepEqual(view.posted.at(-1), {
            type: "attach",
            suggestionId: "file:media/chat.ts",
        });
        assert.ok(!view.posted.some((m) => m.type === "send"), "Enter chose; it did not send");
        assert.equal(view.input.value, "Look at ", "the typed @ch is replaced by the chip");
        assert.equal(list.hidden, true);
        assert.equal(view.input.hasAttribute("aria-activedescendant"), false);
    });

    test("a stale answer is ignored; Escape closes the list without stopping anything; a click chooses", () => {
        const view = openView();
        view.type("@c");
        view.type("@ch");
        view.receive({ type: "attachSuggestions", query: "c", suggestions });
        assert.equal(view.$("[role=listbox]").hidden, true, "the answer for @c came after @ch");
        view.receive({ type: "attachSuggestions", query: "ch", suggestions });
        // An answer is streaming: Escape would stop it, but with the list open it only closes the list.
        const streaming: Message[] = [
            { id: "u0", role: "user", text: "Hi" },
            { id: "a0", role: "assistant", text: "", state: "streaming" },
        ];
        view.receive({
            type: "snapshot",
            snapshot: {
                ...view.snapshot,
                conversation: { ...view.snapshot.conversation, messages: streaming },
            },
        });
        assert.equal(view.$("[role=listbox]").hidden, false);
        view.key("Escape");
        assert.equal(view.$("[role=listbox]").hidden, true);
        assert.ok(!view.posted.some((m) => m.type === "stop"));
        view.key("Escape");
        assert.deepEqual(view.posted.at(-1), { type: "stop" }, "with the list closed it stops");
        view.type("@re");
        view.receive({ type: "attachSuggestions", query: "re", suggestions: [suggestions[5]] });
        view.$("[role=option]").dispatchEvent(
            new view.dom.window.MouseEvent("click", { bubbles: true }),
        );
        assert.deepEqual(view.posted.at(-1), { type: "attach", suggestionId: "file:README.md" });
        view.type("@zz");
        view.receive({ type: "attachSuggestions", query: "zz", suggestions: [] });
        assert.equal(view.$(".attach-empty").textContent, 'Nothing matches "zz".');
    });

    test("chips with name, token count and a labelled remove button; refusals shown; the meter counts them", () => {
        const view = openView();
        view.receive({ type: "attachments", attachments: [attachment] });
        const chip = view.$(".attachments [role=listitem]");
        assert.match(chip.textContent ?? "", /a\.ts17 tokens/);
        const remove = view.$(".attachments button");
        assert.equal(remove.getAttribute("aria-label"), "Remove a.ts");
        remove.dispatchEvent(new view.dom.window.MouseEvent("click", { bubbles: true }));
        assert.deepEqual(view.posted.at(-1), { type: "removeAttachment", id: "att1" });
        view.receive({
            type: "attachments",
            attachments: [],
            notice: "logo.png looks like a binary file",
        });
        assert.equal(view.$(".attachments").hidden, true);
        assert.equal(
            view.$("[role=alert].attach-notice").textContent,
            "logo.png looks like a binary file",
        );
        // A snapshot (another window saved, an answer ended) redraws the chips, not the refusal.
        view.receive({ type: "snapshot", snapshot: view.snapshot });
        assert.equal(view.$(".attach-notice").hidden, false, "the refusal stays after a snapshot");
        view.receive({ type: "attachments", attachments: [] });
        assert.equal(view.$(".attach-notice").hidden, true, "the next attachment result clears it");
        view.receive({
            type: "tokens",
            tokens: { tokens: 120, contextSize: 4096, attachments: 17, promptRoom: 3072 },
        });
        assert.equal(view.$(".meter-text").textContent, "137 / 4,096");
        assert.equal(view.$(".attach-fit").hidden, true);
        view.receive({
            type: "tokens",
            tokens: { tokens: 3000, contextSize: 4096, attachments: 100, promptRoom: 3072 },
        });
        assert.equal(view.$(".attach-fit").hidden, false);
        assert.match(
            view.$(".attach-fit").textContent ?? "",
            /exceed the 3,072 tokens the prompt has room for/,
        );
    });

    test("a drop of files posts their uri-list; a sent message shows its chips as text", () => {
        const view = openView();
        const drop = new view.dom.window.Event("drop", { bubbles: true, cancelable: true });
        Object.assign(drop, {
            dataTransfer: { types: ["text/uri-list"], getData: () => "file:///w/a.ts\r\n" },
        });
        view.input.dispatchEvent(drop);
        assert.deepEqual(view.posted.at(-1), { type: "attachUris", uriList: "file:///w/a.ts\r\n" });
        assert.equal(drop.defaultPrevented, true);
        const hostile = { ...attachment, label: '<img src=x onerror="alert(1)">' };
        view.receive({
            type: "snapshot",
            snapshot: {
                ...view.snapshot,
                conversation: {
                    ...view.snapshot.conversation,
                    messages: [{ id: "u1", role: "user", text: "Fix", attachments: [hostile] }],
                },
            },
        });
        const sent = view.$("article.user .attachments.sent");
        assert.equal(sent.querySelector("img"), null);
        assert.match(sent.textContent ?? "", /<img src=x onerror="alert\(1\)">17 tokens/);
        assert.equal(sent.querySelector("button"), null, "a sent chip cannot be removed");
    });
});
