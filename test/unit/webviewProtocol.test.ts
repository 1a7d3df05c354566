import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { isOpenableLink, isWebviewToHost, type WebviewToHost } from "../../media/protocol.js";

describe("unit: webview protocol", () => {
    test("accepts every well-formed webview message", () => {
        const messages: WebviewToHost[] = [
            { type: "ready" },
            { type: "send", text: "hi" },
            { type: "stop" },
            { type: "retry", messageId: "m1" },
            { type: "newChat" },
            { type: "openChat", id: "c1" },
            { type: "deleteChat", id: "c1" },
            { type: "setContextEnabled", enabled: true },
            { type: "copyCode", code: "x" },
            { type: "insertCode", code: "x" },
            { type: "applyCode", code: "x" },
            { type: "openLink", href: "https://example.org" },
            { type: "openModelSettings" },
            { type: "setUpModel" },
            { type: "restartModel" },
            { type: "showLog" },
            { type: "unqueue", id: "q1" },
            { type: "editMessage", messageId: "m1", text: "edited" },
            { type: "regenerate", messageId: "m1" },
            { type: "showVersion", messageId: "m1", index: 0 },
            { type: "copyAnswer", messageId: "m1" },
            { type: "showPrompt", messageId: "m1" },
            { type: "renameChat", id: "c1" },
            { type: "exportChat", id: "c1" },
            { type: "searchHistory", query: "" },
            { type: "setServerApiKey" },
            { type: "openServerSettings" },
        ];
        for (const message of messages)
            assert.ok(isWebviewToHost(message), JSON.stringify(message));
    });

    test("refuses unknown types and missing or mistyped fields", () => {
        for (const value of [
            null,
            "ready",
            42,
            {},
            { type: "runCommand", command: "workbench.action.terminal.new" },
            { type: "toString" },
            { type: "__proto__" },
            { type: "send" },
            { type: "send", text: 5 },
            { type: "showVersion", messageId: "m1", index: "1" },
            { type: "editMessage", messageId: "m1" },
            { type: "setContextEnabled", enabled: "yes" },
            { type: "openLink", href: ["https://example.org"] },
        ]) {
            assert.equal(isWebviewToHost(value), false, JSON.stringify(value));
        }
    });

    test("only http(s) links can be opened", () => {
        for (const href of [
            "https://example.org",
            "http://localhost:8080/x",
            " HTTPS://EXAMPLE.ORG ",
        ])
            assert.ok(isOpenableLink(href), href);
        for (const href of [
            "command:workbench.action.terminal.new",
            "javascript:alert(1)",
            "file:///etc/passwd",
            "data:text/html,x",
            "vscode://settings",
            "//example.org",
            "https:",
            "https:// x",
            "mailto:a@b.c",
            "",
        ]) {
            assert.equal(isOpenableLink(href), false, href);
        }
    });
});
