// The composer's @-attachments in the webview: typing @ opens a suggestion list (an ARIA listbox
// driven from the textarea with aria-activedescendant: Up/Down, Enter or Tab, Escape, the mouse),
// chosen entries and dropped files become chips with their token count and a remove button, and
// sent messages show theirs. The extension reads, counts and keeps the attachments; this draws them.
import type { Attachment, AttachSuggestion, TokenMeter, WebviewToHost } from "./protocol.js";

type H = <K extends keyof HTMLElementTagNameMap>(
    tag: K,
    attributes?: Record<string, string>,
    ...children: Array<Node | string>
) => HTMLElementTagNameMap[K];

export interface AttachPickerParts {
    input: HTMLTextAreaElement;
    composer: HTMLElement;
    post(message: WebviewToHost): void;
    h: H;
    icon(name: string): HTMLElement;
}

/** The @ being typed at the caret: where it starts and what follows it, or undefined. */
export function mentionAt(
    text: string,
    caret: number,
): { start: number; query: string } | undefined {
    const match = /(?:^|\s)@([^\s@]*)$/.exec(text.slice(0, caret));
    if (!match) return undefined;
    return { start: caret - match[1].length - 1, query: match[1] };
}

const KIND_ICONS: Record<Attachment["kind"], string> = {
    file: "file",
    selection: "selection",
    problems: "warning",
};

export function tokenCount(tokens: number): string {
    return tokens === 1 ? "1 token" : `${tokens.toLocaleString("en-US")} tokens`;
}

export interface AttachPicker {
    showSuggestions(query: string, suggestions: AttachSuggestion[]): void;
    /** The chips of the next message. */
    showAttachments(attachments: Attachment[]): void;
    /** Why the last attachment was refused, until the next one is tried or the message sent. */
    showNotice(text: string | undefined): void;
    /** Warns when the attachments and the conversation would not fit the prompt's room. */
    showFit(tokens: TokenMeter | undefined): void;
    /** The chips of a sent message. */
    sentChips(attachments: Attachment[]): HTMLElement;
}

export function createAttachPicker(parts: AttachPickerParts): AttachPicker {
    const { input, composer, post, h, icon } = parts;
    const list = h("div", {
        class: "attach-list",
        id: "attach-list",
        role: "listbox",
        "aria-label": "Attach to the message",
        hidden: "",
    });
    const chips = h("div", {
        class: "attachments",
        role: "list",
        "aria-label": "Attached to the next message",
        hidden: "",
    });
    const notice = h("div", { class: "attach-notice", role: "alert", hidden: "" });
    const fit = h("div", { class: "attach-fit", role: "status", hidden: "" });
    composer.prepend(list, chips, notice, fit);
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-controls", list.id);

    let mention: { start: number; query: string } | undefined;
    let suggestions: AttachSuggestion[] = [];
    let active = 0;

    function close(): void {
        mention = undefined;
        suggestions = [];
        list.hidden = true;
        list.replaceChildren();
        input.removeAttribute("aria-activedescendant");
    }

    function setActive(index: number): void {
        active = (index + suggestions.length) % suggestions.length;
        list.querySelectorAll<HTMLElement>("[role=option]").forEach((option, i) => {
            option.setAttribute("aria-selected", String(i === active));
            if (i === active) {
                input.setAttribute("aria-activedescendant", option.id);
                option.scrollIntoView?.({ block: "nearest" });
            }
        });
    }

    function choose(index: number): void {
        const chosen = suggestions[index];
        if (!chosen || !mention) return;
        // The typed "@query" goes: the chip stands for it.
        const caret = mention.start + 1 + mention.query.length;
        input.value = input.value.slice(0, mention.start) + input.value.slice(caret);
        input.setSelectionRange(mention.start, mention.start);
        close();
        post({ type: "attach", suggestionId: chosen.id });
    }

    input.addEventListener("input", () => {
        const next = mentionAt(input.value, input.selectionStart ?? input.value.length);
        if (!next) return close();
        const changed = next.query !== mention?.query;
        mention = next;
        if (changed) post({ type: "attachQuery", query: next.query });
    });
    input.addEventListener("blur", close);

    // Capturing on the composer runs before the textarea's own keys (Enter sends, Escape stops).
    composer.addEventListener(
        "keydown",
        (event) => {
            if (event.target !== input || list.hidden || event.isComposing) return;
            const keys: Record<string, () => void> = {
                ArrowDown: () => setActive(active + 1),
                ArrowUp: () => setActive(active - 1),
                Enter: () => choose(active),
                Tab: () => choose(active),
                Escape: close,
            };
            const action = event.shiftKey ? undefined : keys[event.key];
            if (!action) return;
            event.preventDefault();
            event.stopPropagation();
            action();
        },
        true,
    );

    // Keeps the focus in the textarea, so that choosing does not close the list first.
    list.addEventListener("mousedown", (event) => event.preventDefault());
    list.addEventListener("click", (event) => {
        const option = (event.target as HTMLElement).closest<HTMLElement>("[role=option]");
        if (option) choose(Number(option.dataset.index));
    });

    // Files dragged from the explorer (VS Code lets a drop into a webview through with Shift held).
    composer.addEventListener("dragover", (event) => {
        if (event.dataTransfer?.types.includes("text/uri-list")) event.preventDefault();
    });
    composer.addEventListener("drop", (event) => {
        const uriList = event.dataTransfer?.getData("text/uri-list") ?? "";
        if (uriList.trim() === "") return;
        event.preventDefault();
        post({ type: "attachUris", uriList });
    });

    chips.addEventListener("click", (event) => {
        const remove = (event.target as HTMLElement).closest<HTMLElement>("button[data-id]");
        if (remove?.dataset.id) {
            post({ type: "removeAttachment", id: remove.dataset.id });
            input.focus();
        }
    });

    function chip(attachment: Attachment, removable: boolean): HTMLElement {
        const element = h(
            "span",
            { class: "chip attachment", role: "listitem", title: attachment.path ?? "" },
            icon(KIND_ICONS[attachment.kind] ?? "file"),
            h("span", { class: "attachment-label" }, attachment.label),
            h("span", { class: "attachment-tokens" }, tokenCount(attachment.tokens)),
        );
        if (removable) {
            const label = `Remove ${attachment.label}`;
            element.append(
                h(
                    "button",
                    {
                        type: "button",
                        class: "attachment-remove",
                        "aria-label": label,
                        title: label,
                        "data-id": attachment.id,
                    },
                    icon("close"),
                ),
            );
        }
        return element;
    }

    return {
        showSuggestions(query, offered) {
            if (!mention || mention.query !== query) return;
            suggestions = offered;
            list.replaceChildren(
                ...offered.map((suggestion, index) =>
                    h(
                        "div",
                        {
                            role: "option",
                            id: `attach-option-${index}`,
                            class: "attach-option",
                            "data-index": String(index),
                            "aria-selected": "false",
                        },
                        icon(KIND_ICONS[suggestion.kind] ?? "file"),
                        h("span", { class: "attach-option-label" }, suggestion.label),
                        h("span", { class: "attach-option-detail" }, suggestion.detail),
                    ),
                ),
            );
            if (offered.length === 0) {
                list.append(h("div", { class: "attach-empty" }, `Nothing matches "${query}".`));
                input.removeAttribute("aria-activedescendant");
            }
            list.hidden = false;
            if (offered.length > 0) setActive(0);
        },
        showAttachments(attachments) {
            chips.hidden = attachments.length === 0;
            chips.replaceChildren(...attachments.map((a) => chip(a, true)));
        },
        showNotice(text) {
            notice.hidden = !text;
            notice.textContent = text ?? "";
        },
        showFit(tokens) {
            const attached = tokens?.attachments ?? 0;
            const room = tokens?.promptRoom;
            const over =
                !!tokens && attached > 0 && room !== undefined && tokens.tokens + attached > room;
            fit.hidden = !over;
            if (tokens && over)
                fit.textContent =
                    `The attachments (${tokenCount(attached)}) and this conversation ` +
                    `(${tokenCount(tokens.tokens)}) exceed the ${tokenCount(room)} the prompt has room for: ` +
                    `older turns will be left out, and a message that alone is too long is refused.`;
        },
        sentChips(attachments) {
            return h(
                "div",
                { class: "attachments sent", role: "list", "aria-label": "Attached" },
                ...attachments.map((a) => chip(a, false)),
            );
        },
    };
}
