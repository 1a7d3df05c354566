// The chat view's script (runs in the webview). It keeps no truth of its own: it draws the
// extension's snapshots, appends streamed deltas, and posts the user's actions back. A growing
// answer is re-rendered at most once per animation frame; finished messages are rendered once.
import {
    isOpenableLink,
    serverErrorAction,
    SERVER_ACTION_LABELS,
    type AssistantMessage,
    type ChatSnapshot,
    type ConversationSummary,
    type EditorContext,
    type HostToWebview,
    type Message,
    type ModelStatus,
    type ServerErrorAction,
    type TokenMeter,
    type WebviewToHost,
    type WorkspaceSystemPrompt,
} from "./protocol.js";
import { createAttachPicker } from "./attachPicker.js";
import { button, h, icon } from "./dom.js";
import {
    answerFooter,
    handleMessageCommand,
    queuedMessagesList,
    startEditing,
    userActions,
} from "./messageActions.js";
import { createRenderer, type CodeAction } from "./render.js";

declare function acquireVsCodeApi(): { postMessage(message: WebviewToHost): void };

const vscode = acquireVsCodeApi();
const renderer = createRenderer(window);
const post = (message: WebviewToHost) => vscode.postMessage(message);

// ---- The page -------------------------------------------------------------------------------

const banner = h("div", { class: "banner", role: "status", hidden: "" });
const messageList = h("div", {
    class: "messages",
    role: "log",
    "aria-live": "polite",
    "aria-label": "Conversation",
    tabindex: "0",
});
const emptyState = h(
    "div",
    { class: "empty-state" },
    h("p", {}, "Ask OLMo about your code. The model runs on this machine; nothing leaves it."),
    h(
        "p",
        { class: "hint" },
        "Enter sends, Shift+Enter adds a line, Escape stops an answer, @ attaches a file.",
    ),
);

const historyList = h("ul", { class: "history-list", "aria-label": "Past chats" });
const historyEmpty = h("p", { class: "hint" }, "No saved chats yet.");
const historyBack = button("Back to the chat", "arrow-left");
const historySearch = h("input", {
    type: "search",
    class: "history-search",
    "aria-label": "Search chats by title and text",
    placeholder: "Search chats",
});
const historyPanel = h(
    "section",
    { class: "history", "aria-label": "Chat history", hidden: "" },
    h("header", { class: "history-header" }, historyBack, h("h2", {}, "Chat history")),
    historySearch,
    historyList,
    historyEmpty,
);

const contextChip = h("button", {
    type: "button",
    class: "chip context-chip",
    "aria-pressed": "false",
});
const systemPromptNote = h(
    "button",
    {
        type: "button",
        class: "chip system-prompt-note",
        hidden: "",
        "aria-label":
            "This workspace's settings give OLMo a system prompt. Press to open the setting.",
    },
    icon("info"),
    h("span", {}, "Workspace system prompt"),
);
const meter = h("meter", { min: "0", max: "1", value: "0", "aria-label": "Context used" });
const meterText = h("span", { class: "meter-text" });
const tokenMeter = h("div", { class: "token-meter", hidden: "" }, meter, meterText);
const input = h("textarea", {
    class: "input",
    rows: "1",
    "aria-label": "Message to OLMo",
    placeholder: "Ask OLMo… (Enter to send, Shift+Enter for a new line)",
});
const sendButton = button("Send message", "send", { class: "primary send" });
const stopButton = button("Stop the answer", "debug-stop", { class: "stop", hidden: "" }, "Stop");
const composer = h(
    "form",
    { class: "composer", "aria-label": "New message" },
    h("div", { class: "composer-meta" }, contextChip, systemPromptNote, tokenMeter),
    h("div", { class: "composer-row" }, input, sendButton, stopButton),
);

const attachPicker = createAttachPicker({ input, composer, post, h, icon });

const queueList = h("ul", { class: "queue", "aria-label": "Queued messages", hidden: "" });
const chatPanel = h("div", { class: "chat" }, banner, messageList, queueList, composer);
document.body.append(chatPanel, historyPanel);

// ---- State drawn from the extension -----------------------------------------------------------

let snapshot: ChatSnapshot | undefined;
/** Rendered messages by id, with the JSON they were rendered from: unchanged messages are reused. */
const renderedMessages = new Map<string, { source: string; last: boolean; element: HTMLElement }>();
/** Streaming messages that got text since the last frame. */
const grownMessages = new Set<string>();
let frameRequested = false;

function answering(): boolean {
    const last = snapshot?.conversation.messages.at(-1);
    return last?.role === "assistant" && last.state === "streaming";
}

function applySnapshot(next: ChatSnapshot): void {
    snapshot = next;
    grownMessages.clear();
    renderModel(next.model);
    renderContext(next.context);
    renderTokens(next.tokens);
    renderSystemPrompt(next.systemPrompt);
    attachPicker.showAttachments(next.attachments ?? []);
    renderMessages();
    renderQueue();
    renderHistory(next.history, next.historyQuery);
}

function applyDelta(messageId: string, text: string): void {
    const message = snapshot?.conversation.messages.find((m) => m.id === messageId);
    if (message?.role !== "assistant") return;
    message.text += text;
    grownMessages.add(messageId);
    if (!frameRequested) {
        frameRequested = true;
        requestAnimationFrame(drawGrownMessages);
    }
}

function drawGrownMessages(): void {
    frameRequested = false;
    const follow = isScrolledToBottom();
    for (const id of grownMessages) {
        const message = snapshot?.conversation.messages.find((m) => m.id === id);
        const rendered = renderedMessages.get(id);
        if (!message || !rendered) continue;
        rendered.element.querySelector(".markdown")!.replaceChildren(renderer.render(message.text));
        rendered.element.querySelector(".generating")?.remove();
        rendered.source = sourceOf(message, rendered.last);
    }
    grownMessages.clear();
    if (follow) scrollToBottom();
}

function isScrolledToBottom(): boolean {
    return messageList.scrollHeight - messageList.scrollTop - messageList.clientHeight < 40;
}

function scrollToBottom(): void {
    messageList.scrollTop = messageList.scrollHeight;
}

// ---- Messages ----------------------------------------------------------------------------------

function renderMessages(): void {
    const messages = snapshot?.conversation.messages ?? [];
    const follow = isScrolledToBottom();
    const elements = messages.map((message, i) => {
        const last = i === messages.length - 1;
        const source = sourceOf(message, last);
        const cached = renderedMessages.get(message.id);
        if (cached?.source === source) return cached.element;
        const element = messageElement(message, last);
        renderedMessages.set(message.id, { source, last, element });
        return element;
    });
    const shown = new Set(messages.map((m) => m.id));
    for (const id of renderedMessages.keys()) if (!shown.has(id)) renderedMessages.delete(id);
    placeChildren(messageList, elements.length > 0 ? elements : [emptyState]);
    const busy = answering();
    // While an answer streams, Send queues the message.
    const sendLabel = busy ? "Queue the message (sent when the answer ends)" : "Send message";
    sendButton.setAttribute("aria-label", sendLabel);
    sendButton.title = sendLabel;
    stopButton.hidden = !busy;
    if (follow) scrollToBottom();
}

/** What a message was rendered from: its content and whether it was the last one (Regenerate). */
function sourceOf(message: Message, last: boolean): string {
    return `${last}:${JSON.stringify(message)}`;
}

function renderQueue(): void {
    const queued = snapshot?.queued ?? [];
    queueList.hidden = queued.length === 0;
    const focused = (document.activeElement as HTMLElement | null)?.closest<HTMLElement>(".queued");
    queueList.replaceChildren(...queuedMessagesList(queued));
    // The × just pressed is gone: focus moves to the next one, else back to the composer.
    if (focused) (queueList.querySelector<HTMLElement>(".queued-remove") ?? input).focus();
}

queueList.addEventListener("click", (event) => {
    const remove = (event.target as HTMLElement).closest<HTMLElement>(".queued-remove");
    const id = remove?.closest<HTMLElement>(".queued")?.dataset.id;
    if (id) post({ type: "unqueue", id });
});

/** Puts `children` in `parent` in order, moving only what is out of place (keeps focus where it is). */
function placeChildren(parent: HTMLElement, children: HTMLElement[]): void {
    let cursor = parent.firstElementChild;
    for (const child of children) {
        if (child === cursor) cursor = cursor.nextElementSibling;
        else parent.insertBefore(child, cursor);
    }
    while (cursor) {
        const next = cursor.nextElementSibling;
        cursor.remove();
        cursor = next;
    }
}

function messageElement(message: Message, last: boolean): HTMLElement {
    const author = message.role === "user" ? "You" : "OLMo";
    const article = h("article", {
        class: `message ${message.role}`,
        "data-id": message.id,
        "aria-label": author,
    });
    article.append(h("div", { class: "author" }, author));
    if (message.role === "user" && message.context) {
        const c = message.context;
        const where = c.wholeFile
            ? c.fileName
            : `${c.fileName}:${lineRange(c.startLine, c.endLine)}`;
        article.append(
            h(
                "div",
                { class: "chip attached", title: c.path },
                icon("file-code"),
                h("span", {}, where),
            ),
        );
    }
    if (message.role === "user" && message.attachments?.length)
        article.append(attachPicker.sentChips(message.attachments));
    if (message.role === "assistant" && message.droppedMessages) {
        const n = message.droppedMessages;
        const text =
            n === 1
                ? "1 earlier message was left out to fit the context."
                : `${n} earlier messages were left out to fit the context.`;
        article.append(
            h("div", { class: "notice", role: "note" }, icon("info"), h("span", {}, text)),
        );
    }
    article.append(h("div", { class: "markdown" }, renderer.render(message.text)));
    if (message.role === "user") article.append(userActions());
    if (message.role === "assistant") {
        appendAnswerStatus(article, message);
        const footer = answerFooter(message, last);
        if (footer) article.append(footer);
    }
    return article;
}

/** "12" or "12-30". */
function lineRange(start: number, end: number): string {
    return start === end ? String(start) : `${start}-${end}`;
}

function appendAnswerStatus(article: HTMLElement, message: AssistantMessage): void {
    switch (message.state) {
        case "streaming":
            article.setAttribute("aria-busy", "true");
            if (message.text === "")
                article.append(
                    h(
                        "div",
                        { class: "generating" },
                        icon("loading codicon-modifier-spin"),
                        h("span", {}, "Generating…"),
                    ),
                );
            return;
        case "done":
            return;
        case "stopped":
            article.append(
                h("div", { class: "answer-note" }, icon("debug-stop"), h("span", {}, "Stopped")),
            );
            return;
        case "truncated":
            article.append(
                h(
                    "div",
                    { class: "answer-note" },
                    icon("warning"),
                    h(
                        "span",
                        {},
                        "The answer reached its length limit (olmo.maxTokens) or the end of the context.",
                    ),
                ),
            );
            return;
        case "failed": {
            const actions = h(
                "div",
                { class: "actions" },
                button("Retry this answer", "refresh", { "data-command": "retry" }, "Retry"),
            );
            if (message.error?.code === "noModel") actions.append(...modelSetupButtons());
            const serverAction = serverErrorAction(message.error?.code);
            if (serverAction) actions.append(serverActionButton(serverAction));
            article.append(
                h(
                    "div",
                    { class: "error-box", role: "alert" },
                    icon("error"),
                    h("span", {}, message.error?.message ?? "The answer failed."),
                    actions,
                ),
            );
            return;
        }
    }
}

messageList.addEventListener("click", (event) => {
    const target = event.target as HTMLElement;
    const link = target.closest("a");
    if (link) {
        // Links never navigate the webview; http(s) ones open in the browser through the extension.
        event.preventDefault();
        event.stopPropagation();
        const href = link.getAttribute("href") ?? "";
        if (isOpenableLink(href)) post({ type: "openLink", href });
        return;
    }
    const codeButton = target.closest<HTMLButtonElement>(
        ".markdown .code-block button.code-action",
    );
    if (codeButton) return runCodeAction(codeButton);
    const commandButton = target.closest<HTMLElement>("button[data-command]");
    if (!commandButton || commandButton.closest(".markdown")) return;
    const article = commandButton.closest("article");
    const messageId = article?.dataset.id;
    const message = snapshot?.conversation.messages.find((m) => m.id === messageId);
    if (article && message && handleMessageCommand(commandButton, message, article, post)) return;
    if (commandButton.dataset.command === "retry" && messageId) post({ type: "retry", messageId });
    if (commandButton.dataset.command === "openModelSettings") post({ type: "openModelSettings" });
    if (commandButton.dataset.command === "setUpModel") post({ type: "setUpModel" });
    const command = commandButton.dataset.command;
    if (command === "setServerApiKey" || command === "openServerSettings") post({ type: command });
});
// Middle clicks would open links too.
messageList.addEventListener("auxclick", (event) => {
    if ((event.target as HTMLElement).closest("a")) event.preventDefault();
});

function runCodeAction(codeButton: HTMLButtonElement): void {
    const code = codeButton.closest(".code-block")?.querySelector("code")?.textContent ?? "";
    const action = codeButton.dataset.action as CodeAction;
    if (action === "copy") {
        post({ type: "copyCode", code });
        const text = codeButton.querySelector(".code-action-text");
        if (text) {
            text.textContent = "Copied";
            setTimeout(() => (text.textContent = "Copy"), 1500);
        }
    }
    if (action === "insert") post({ type: "insertCode", code });
    if (action === "apply") post({ type: "applyCode", code });
}

// ---- Model state, context chip, token meter ---------------------------------------------------

function renderModel(model: ModelStatus): void {
    banner.className = `banner ${model.kind}`;
    banner.hidden = model.kind === "idle" || model.kind === "ready";
    switch (model.kind) {
        case "noModel":
            banner.replaceChildren(
                h("strong", {}, "No model is set."),
                h(
                    "p",
                    {},
                    "OLMo Local runs an OLMo model file (.gguf) on this machine, or uses your team's inference server. Download a model, choose a file you have or name the server (Set Up Model), or set ",
                    h("code", {}, "olmo.modelPath"),
                    " to a file's path.",
                ),
                h("div", { class: "actions" }, ...modelSetupButtons()),
            );
            return;
        case "settingUp":
            banner.replaceChildren(h("span", {}, model.activity));
            return;
        case "loading": {
            const percent =
                model.progress === undefined ? undefined : Math.round(model.progress * 100);
            const progress = h("progress", { max: "100", "aria-label": "Loading the model" });
            if (percent !== undefined) progress.value = percent;
            banner.replaceChildren(
                h(
                    "span",
                    {},
                    percent === undefined
                        ? "Starting the model…"
                        : `Loading the model… ${percent}%`,
                ),
                progress,
            );
            return;
        }
        case "error": {
            const serverAction = serverErrorAction(model.code);
            banner.replaceChildren(
                h("strong", {}, "The model is not available."),
                h("p", {}, model.message),
                h(
                    "div",
                    { class: "actions" },
                    ...(serverAction ? [serverActionButton(serverAction)] : []),
                    button(
                        "Restart the model process",
                        "debug-restart",
                        // The server's way out comes first; a restart does not fix a key or a URL.
                        {
                            "data-command": "restartModel",
                            ...(serverAction ? {} : { class: "primary" }),
                        },
                        "Restart",
                    ),
                    button(
                        "Show the OLMo log",
                        "output",
                        { "data-command": "showLog" },
                        "Show Log",
                    ),
                ),
            );
            return;
        }
        case "idle":
        case "ready":
            banner.replaceChildren();
    }
}

function modelSetupButtons(): HTMLButtonElement[] {
    return [
        button(
            "Download a model or choose a file",
            "cloud-download",
            { "data-command": "setUpModel", class: "primary" },
            "Set Up Model",
        ),
        button(
            "Open the olmo.modelPath setting",
            "gear",
            { "data-command": "openModelSettings" },
            "Open Settings",
        ),
    ];
}

function serverActionButton(action: ServerErrorAction): HTMLButtonElement {
    return action === "setServerApiKey"
        ? button(
              "Set the team server's API key",
              "key",
              { "data-command": action, class: "primary" },
              SERVER_ACTION_LABELS[action],
          )
        : button(
              "Open the team server settings",
              "gear",
              { "data-command": action, class: "primary" },
              SERVER_ACTION_LABELS[action],
          );
}

banner.addEventListener("click", (event) => {
    const command = (event.target as HTMLElement).closest<HTMLElement>("button[data-command]")
        ?.dataset.command;
    if (
        command === "setUpModel" ||
        command === "openModelSettings" ||
        command === "restartModel" ||
        command === "showLog" ||
        command === "setServerApiKey" ||
        command === "openServerSettings"
    )
        post({ type: command });
});

function renderContext(context: EditorContext): void {
    const available = context.available;
    contextChip.hidden = !available && !context.unavailableReason;
    contextChip.disabled = !available;
    contextChip.setAttribute("aria-pressed", String(context.enabled && !!available));
    if (!available) {
        contextChip.replaceChildren(icon("file-code"), h("span", {}, "Select code to add"));
        contextChip.title = context.unavailableReason ?? "";
        contextChip.setAttribute("aria-label", context.unavailableReason ?? "No code to add");
        return;
    }
    const where = available.wholeFile
        ? `${available.fileName} (whole file)`
        : `${available.fileName}:${lineRange(available.startLine, available.endLine)}`;
    contextChip.replaceChildren(icon(context.enabled ? "check" : "add"), h("span", {}, where));
    const label = context.enabled
        ? `${where} will be added to the next message; press to leave it out`
        : `Add ${where} to the next message`;
    contextChip.title = label;
    contextChip.setAttribute("aria-label", label);
}

contextChip.addEventListener("click", () => {
    if (snapshot)
        post({
            type: "setContextEnabled",
            enabled: contextChip.getAttribute("aria-pressed") !== "true",
        });
});

/** How much of a workspace's system prompt the note's tooltip quotes. */
const SYSTEM_PROMPT_QUOTE = 300;

function renderSystemPrompt(systemPrompt: WorkspaceSystemPrompt | undefined): void {
    systemPromptNote.hidden = !systemPrompt;
    if (!systemPrompt) return;
    const text = systemPrompt.text.trim();
    const quoted =
        text.length > SYSTEM_PROMPT_QUOTE ? `${text.slice(0, SYSTEM_PROMPT_QUOTE - 1)}…` : text;
    const label = `This workspace's settings give OLMo a system prompt: "${quoted}". Press to open the setting.`;
    systemPromptNote.title = label;
    systemPromptNote.setAttribute("aria-label", label);
}

systemPromptNote.addEventListener("click", () => post({ type: "openSystemPromptSetting" }));

function renderTokens(tokens: TokenMeter | undefined): void {
    tokenMeter.hidden = !tokens;
    attachPicker.showFit(tokens);
    if (!tokens) return;
    // Attachments waiting to be sent are counted in.
    const total = tokens.tokens + (tokens.attachments ?? 0);
    meter.max = tokens.contextSize;
    meter.value = total;
    meter.low = tokens.contextSize * 0.7;
    meter.high = tokens.contextSize * 0.9;
    meter.optimum = 0;
    const used = `${total.toLocaleString()} / ${tokens.contextSize.toLocaleString()}`;
    meterText.textContent = used;
    meter.setAttribute("aria-label", `Context used: ${used} tokens`);
    const counted = tokens.attachments
        ? "this conversation and the attachments"
        : "this conversation";
    tokenMeter.title = `${used} tokens: ${counted} against the context the model was loaded with`;
}

// ---- History ---------------------------------------------------------------------------------

function renderHistory(history: ConversationSummary[], query: string): void {
    const focused = (document.activeElement as HTMLElement | null)?.closest<HTMLElement>(
        ".history-list li",
    );
    const focusedId = focused?.dataset.id;
    historyEmpty.hidden = history.length > 0;
    historyEmpty.textContent =
        query.trim() === "" ? "No saved chats yet." : "No chat matches the search.";
    // After a reload the extension still filters: the box says by what.
    if (document.activeElement !== historySearch) historySearch.value = query;
    historyList.replaceChildren(
        ...history.map((chat) => {
            const date = new Date(chat.updatedAt).toLocaleString(undefined, {
                dateStyle: "medium",
                timeStyle: "short",
            });
            const open = h(
                "button",
                {
                    type: "button",
                    class: "history-open",
                    "data-command": "open",
                    "aria-label": `Open chat "${chat.title}", ${date}`,
                },
                h("span", { class: "history-title" }, chat.title),
                h("span", { class: "history-date" }, date),
            );
            if (chat.id === snapshot?.conversation.id) open.setAttribute("aria-current", "true");
            const rename = button(`Rename chat "${chat.title}"`, "edit", {
                class: "history-rename",
                "data-command": "rename",
            });
            const exportChat = button(`Export chat "${chat.title}" as Markdown`, "save-as", {
                class: "history-export",
                "data-command": "export",
            });
            const remove = button(`Delete chat "${chat.title}"`, "trash", {
                class: "history-delete",
                "data-command": "delete",
            });
            return h("li", { "data-id": chat.id }, open, rename, exportChat, remove);
        }),
    );
    if (focusedId && !historyPanel.hidden) {
        const same = [...historyList.children]
            .find((li) => (li as HTMLElement).dataset.id === focusedId)
            ?.querySelector<HTMLElement>(".history-open");
        (same ?? historyList.querySelector<HTMLElement>(".history-open") ?? historyBack).focus();
    }
}

function showHistory(): void {
    historyPanel.hidden = false;
    chatPanel.hidden = true;
    (historyList.querySelector<HTMLElement>(".history-open") ?? historyBack).focus();
}

function showChat(): void {
    historyPanel.hidden = true;
    chatPanel.hidden = false;
    input.focus();
}

historyBack.addEventListener("click", showChat);
historyList.addEventListener("click", (event) => {
    const commandButton = (event.target as HTMLElement).closest<HTMLElement>(
        "button[data-command]",
    );
    const id = commandButton?.closest("li")?.dataset.id;
    if (!commandButton || !id) return;
    if (commandButton.dataset.command === "open") {
        post({ type: "openChat", id });
        showChat();
    }
    if (commandButton.dataset.command === "rename") post({ type: "renameChat", id });
    if (commandButton.dataset.command === "export") post({ type: "exportChat", id });
    if (commandButton.dataset.command === "delete") post({ type: "deleteChat", id });
});
historySearch.addEventListener("input", () =>
    post({ type: "searchHistory", query: historySearch.value }),
);

// ---- Composer and keyboard --------------------------------------------------------------------

/** Sends the message, or, while an answer streams, queues it (the extension decides, in order). */
function send(): void {
    const text = input.value;
    if (text.trim() === "") return;
    post({ type: "send", text });
    input.value = "";
}

/** Up in an empty composer edits the last message the user sent. */
function editLastUserMessage(): boolean {
    const lastUser = [...(snapshot?.conversation.messages ?? [])]
        .reverse()
        .find((m) => m.role === "user");
    const article = lastUser && renderedMessages.get(lastUser.id)?.element;
    if (lastUser?.role !== "user" || !article) return false;
    startEditing(article, lastUser, post);
    return true;
}

composer.addEventListener("submit", (event) => {
    event.preventDefault();
    send();
});
sendButton.addEventListener("click", send);
stopButton.addEventListener("click", () => post({ type: "stop" }));
input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        send();
    } else if (event.key === "ArrowUp" && input.value === "" && editLastUserMessage()) {
        event.preventDefault();
    }
});
document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    if (!historyPanel.hidden) showChat();
    else if (answering()) post({ type: "stop" });
});

// ---- Messages from the extension --------------------------------------------------------------

window.addEventListener("message", (event: MessageEvent<HostToWebview>) => {
    const message = event.data;
    switch (message.type) {
        case "snapshot":
            return applySnapshot(message.snapshot);
        case "delta":
            return applyDelta(message.messageId, message.text);
        case "model":
            if (snapshot) snapshot.model = message.model;
            return renderModel(message.model);
        case "context":
            if (snapshot) snapshot.context = message.context;
            return renderContext(message.context);
        case "tokens":
            if (snapshot) snapshot.tokens = message.tokens;
            return renderTokens(message.tokens);
        case "systemPrompt":
            if (snapshot) snapshot.systemPrompt = message.systemPrompt;
            return renderSystemPrompt(message.systemPrompt);
        case "showHistory":
            return showHistory();
        case "focusInput":
            return showChat();
        case "attachSuggestions":
            return attachPicker.showSuggestions(message.query, message.suggestions);
        case "attachments":
            if (snapshot) snapshot.attachments = message.attachments;
            attachPicker.showAttachments(message.attachments);
            return attachPicker.showNotice(message.notice);
    }
});

post({ type: "ready" });
