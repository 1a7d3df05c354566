// The chat's per-message tools: Edit on a user message (edited in place: Enter sends, Escape
// cancels), and under an answer its usage, Copy, Show Prompt, Regenerate and the ‹ 1/2 › version
// switcher; plus the list of messages queued while an answer streams. Every control is a real
// button with an accessible name, so Tab reaches it and Enter/Space press it.
import { button, h, icon } from "./dom.js";
import type { AssistantMessage, QueuedMessage, UserMessage, WebviewToHost } from "./protocol.js";

type Post = (message: WebviewToHost) => void;

/** The row under a user message. */
export function userActions(): HTMLElement {
    return h(
        "div",
        { class: "message-actions" },
        button("Edit this message and send it again", "edit", { "data-command": "edit" }, "Edit"),
    );
}

/** Usage, tools and versions under a finished answer; `last` offers Regenerate. */
export function answerFooter(message: AssistantMessage, last: boolean): HTMLElement | undefined {
    if (message.state === "streaming") return undefined;
    const footer = h("div", { class: "answer-footer" });
    const versions = (message.otherVersions?.length ?? 0) + 1;
    if (message.greedy && versions > 1)
        footer.append(
            h(
                "div",
                { class: "answer-note greedy-note", role: "note" },
                icon("info"),
                h(
                    "span",
                    {},
                    "Greedy settings (temperature 0): regenerating gives the same answer.",
                ),
            ),
        );
    const actions = h("div", { class: "message-actions" });
    if (versions > 1) actions.append(versionSwitcher(message.versionIndex ?? 0, versions));
    if (message.text !== "")
        actions.append(
            button(
                "Copy the whole answer as Markdown",
                "copy",
                { "data-command": "copyAnswer" },
                "Copy",
            ),
        );
    if (message.state !== "failed")
        actions.append(
            button(
                "Show the exact prompt the model saw for this answer",
                "file-code",
                { "data-command": "showPrompt" },
                "Prompt",
            ),
        );
    if (last)
        actions.append(
            button(
                message.greedy
                    ? "Regenerate this answer (greedy settings: the same answer)"
                    : "Regenerate this answer with a fresh seed",
                "refresh",
                { "data-command": "regenerate" },
                "Regenerate",
            ),
        );
    footer.append(actions);
    if (message.usage) {
        const { promptTokens, reusedTokens, completionTokens } = message.usage;
        const text = `${promptTokens} prompt tokens (${reusedTokens} reused, ${promptTokens - reusedTokens} evaluated) · ${completionTokens} generated`;
        footer.append(h("div", { class: "usage", title: text }, text));
    }
    return footer;
}

function versionSwitcher(index: number, count: number): HTMLElement {
    const shown = Math.min(index, count - 1);
    const previous = button("Previous version of this answer", "chevron-left", {
        "data-command": "showVersion",
        "data-index": String(shown - 1),
        class: "version-previous",
    });
    const next = button("Next version of this answer", "chevron-right", {
        "data-command": "showVersion",
        "data-index": String(shown + 1),
        class: "version-next",
    });
    previous.disabled = shown === 0;
    next.disabled = shown === count - 1;
    return h(
        "span",
        { class: "versions", role: "group", "aria-label": "Answer versions" },
        previous,
        h("span", { class: "version-label", "aria-live": "polite" }, `${shown + 1}/${count}`),
        next,
    );
}

/** Shows an editor in place of the message's text; Enter (or Send) sends it, Escape cancels. */
export function startEditing(article: HTMLElement, message: UserMessage, post: Post): void {
    if (article.querySelector(".edit-box")) {
        article.querySelector<HTMLTextAreaElement>(".edit-box textarea")?.focus();
        return;
    }
    const shown = [...article.querySelectorAll<HTMLElement>(".markdown, .message-actions")];
    const editor = h("textarea", { class: "edit-input", "aria-label": "Edit your message" });
    editor.value = message.text;
    const send = button(
        "Send the edited message (the turns after it are replaced)",
        "send",
        { class: "primary" },
        "Send",
    );
    const cancel = button("Cancel the edit", "close", {}, "Cancel");
    const box = h(
        "div",
        { class: "edit-box" },
        editor,
        h("div", { class: "actions" }, send, cancel),
    );
    const finish = () => {
        box.remove();
        for (const element of shown) element.hidden = false;
    };
    const submit = () => {
        if (editor.value.trim() === "") return;
        post({ type: "editMessage", messageId: message.id, text: editor.value });
        finish();
    };
    const abandon = () => {
        finish();
        article.querySelector<HTMLElement>('[data-command="edit"]')?.focus();
    };
    editor.addEventListener("keydown", (event) => {
        if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
            event.preventDefault();
            submit();
        } else if (event.key === "Escape") {
            // Escape here cancels the edit, not the answer streaming meanwhile.
            event.stopPropagation();
            abandon();
        }
    });
    send.addEventListener("click", submit);
    cancel.addEventListener("click", abandon);
    for (const element of shown) element.hidden = true;
    article.append(box);
    editor.focus();
    editor.setSelectionRange(editor.value.length, editor.value.length);
}

/** Runs a message tool's button; false when the button is not one of them. */
export function handleMessageCommand(
    commandButton: HTMLElement,
    message: UserMessage | AssistantMessage,
    article: HTMLElement,
    post: Post,
): boolean {
    const messageId = message.id;
    switch (commandButton.dataset.command) {
        case "edit":
            if (message.role === "user") startEditing(article, message, post);
            return true;
        case "copyAnswer": {
            post({ type: "copyAnswer", messageId });
            const label = commandButton.querySelector("span:not(.codicon)");
            if (label) {
                label.textContent = "Copied";
                setTimeout(() => (label.textContent = "Copy"), 1500);
            }
            return true;
        }
        case "showPrompt":
            post({ type: "showPrompt", messageId });
            return true;
        case "regenerate":
            post({ type: "regenerate", messageId });
            return true;
        case "showVersion":
            post({ type: "showVersion", messageId, index: Number(commandButton.dataset.index) });
            return true;
        default:
            return false;
    }
}

/** The messages waiting for the current answer to end, each with a remove button. */
export function queuedMessagesList(queued: QueuedMessage[]): HTMLElement[] {
    return queued.map((message, i) =>
        h(
            "li",
            { class: "queued", "data-id": message.id },
            h("span", { class: "queued-badge" }, `Queued ${i + 1}`),
            h("span", { class: "queued-text" }, message.text),
            ...(message.attachments?.length
                ? [
                      h(
                          "span",
                          { class: "queued-attachments" },
                          `+ ${message.attachments.map((a) => a.label).join(", ")}`,
                      ),
                  ]
                : []),
            button(`Remove the queued message "${message.text}"`, "close", {
                "data-command": "unqueue",
                class: "queued-remove",
            }),
        ),
    );
}
