// The chat sidebar: a webview view (olmo.chat) locked down by a CSP with a per-load nonce, talking to
// media/chat.ts through the typed protocol in media/protocol.ts. The extension holds the truth (the
// conversation, the history, the model state); the webview draws snapshots and streamed deltas.
import { randomBytes, randomUUID } from "node:crypto";
import * as vscode from "vscode";
import {
    isOpenableLink,
    isWebviewToHost,
    type AssistantMessage,
    type Conversation,
    type ConversationSummary,
    type HostToWebview,
    type ModelStatus,
    type TokenMeter,
    type UserMessage,
    type WebviewToHost,
    type WorkspaceSystemPrompt,
} from "../media/protocol.js";
import { fenced } from "../sidecar/prompts.js";
import { AttachmentTray, promptRoom } from "./attachments.js";
import { editUserMessage, showVersion, startNewVersion } from "./chatEdits.js";
import { conversationToMarkdown, exportFileName } from "./chatExport.js";
import { ChatTurn, type Ask } from "./chatTurn.js";
import {
    ConversationStore,
    mergeConversations,
    newConversation,
    takeInSaved,
    titleFromText,
    toModelMessages,
} from "./conversationStore.js";
import type { ExplainRequest } from "./explain.js";
import { MessageQueue } from "./messageQueue.js";
import type { HostState, ModelHost } from "./modelHost.js";
import { PromptDocuments } from "./promptDocuments.js";
import { chatContextTarget, chatEditorContext } from "./selection.js";
import {
    modelConfigured,
    openModelPathSetting,
    openServerSettings,
    samplingFromSettings,
    systemPromptFromSettings,
} from "./settings.js";

const VIEW_ID = "olmo.chat";
const CURRENT_CONVERSATION_KEY = "olmo.chat.currentConversation";

/** Registers the view and its commands: olmo.newChat, olmo.focusChat, olmo.showHistory, olmo.chat.explain. */
export function registerChatView(
    context: vscode.ExtensionContext,
    host: ModelHost,
): vscode.Disposable[] {
    const folder = vscode.Uri.joinPath(context.globalStorageUri, "conversations").fsPath;
    const store = new ConversationStore(folder, (message) => {
        host.log.warn(message);
        void vscode.window.showWarningMessage(`OLMo Local: ${message}`);
    });
    const prompts = new PromptDocuments();
    const provider = new ChatViewProvider(
        context.extensionUri,
        host,
        store,
        context.workspaceState,
        prompts,
    );
    return [
        provider,
        prompts,
        vscode.workspace.registerTextDocumentContentProvider(PromptDocuments.scheme, prompts),
        vscode.window.registerWebviewViewProvider(VIEW_ID, provider),
        vscode.commands.registerCommand("olmo.newChat", () => provider.newChatCommand()),
        vscode.commands.registerCommand("olmo.focusChat", () =>
            provider.showInView({ type: "focusInput" }),
        ),
        vscode.commands.registerCommand("olmo.showHistory", () =>
            provider.showInView({ type: "showHistory" }),
        ),
        vscode.commands.registerCommand("olmo.chat.explain", (request: unknown) =>
            provider.explainCommand(request),
        ),
    ];
}

class ChatViewProvider implements vscode.WebviewViewProvider, vscode.Disposable {
    private view?: vscode.WebviewView;
    /** Set by the webview's `ready`; cleared when its document goes away (hidden or disposed). */
    private webviewReady = false;
    private conversation: Conversation = newConversation();
    /** Restoring the open conversation after a reload; started by the first queued task. */
    private restored?: Promise<void>;
    private turn?: ChatTurn;
    /** The history last read, shown while the folder cannot be read. */
    private history: ConversationSummary[] = [];
    private contextEnabled = false;
    private tokens?: TokenMeter;
    /** Asked for by a command before the webview was ready; sent after the snapshot. */
    private pendingRequest?: HostToWebview;
    /** Webview messages are handled one at a time, in order (an answer runs on without blocking it). */
    private queue: Promise<void> = Promise.resolve();
    /** Messages sent while an answer streams, waiting for it to end. */
    private readonly queuedMessages = new MessageQueue();
    /** The history's search filter, as the webview last sent it. */
    private historyQuery = "";
    private contextTimer?: NodeJS.Timeout;
    private readonly folderWatcher: { close(): void };
    private readonly subscriptions: vscode.Disposable[];
    private readonly attachments: AttachmentTray;

    constructor(
        private readonly extensionUri: vscode.Uri,
        private readonly host: ModelHost,
        private readonly store: ConversationStore,
        private readonly workspaceState: vscode.Memento,
        private readonly prompts: PromptDocuments,
    ) {
        this.attachments = new AttachmentTray(
            host,
            (message) => this.post(message),
            () => void this.updateTokens(),
        );
        this.subscriptions = [
            this.attachments,
            host.onDidChangeState((state) => {
                this.post({ type: "model", model: this.modelStatus() });
                if (state.kind === "ready") void this.updateTokens();
            }),
            vscode.workspace.onDidChangeConfiguration((e) => {
                if (
                    e.affectsConfiguration("olmo.modelPath") ||
                    e.affectsConfiguration("olmo.server.url")
                )
                    this.post({ type: "model", model: this.modelStatus() });
                if (e.affectsConfiguration("olmo.systemPrompt"))
                    this.post({ type: "systemPrompt", systemPrompt: workspaceSystemPrompt() });
            }),
            vscode.window.onDidChangeActiveTextEditor(() => this.postContextSoon()),
            vscode.window.onDidChangeTextEditorSelection(() => this.postContextSoon()),
        ];
        // Other windows write the same folder: what they create, continue or delete shows up here.
        this.folderWatcher = store.watch(
            () => this.enqueue(() => this.refreshFromDisk()),
            (message) => host.log.warn(`chat view: ${message}`),
        );
    }

    /** Takes in what other windows saved: the open chat's new turns (unless an answer runs), and the history. */
    private async refreshFromDisk(): Promise<void> {
        if (!this.webviewReady) return;
        if (!this.turn) await this.rereadConversation();
        await this.postSnapshot();
    }

    /**
     * The open conversation with what other windows stored meanwhile merged in (this window's
     * messages stay, also those a failed save did not write).
     */
    private async rereadConversation(): Promise<void> {
        const stored = await this.store.get(this.conversation.id);
        if (stored) this.conversation = mergeConversations(stored, this.conversation);
    }

    resolveWebviewView(view: vscode.WebviewView): void {
        this.view = view;
        this.webviewReady = false;
        view.webview.options = {
            enableScripts: true,
            localResourceRoots: [
                vscode.Uri.joinPath(this.extensionUri, "dist"),
                vscode.Uri.joinPath(this.extensionUri, "media"),
            ],
        };
        view.webview.html = chatHtml(view.webview, this.extensionUri);
        const listeners = [
            view.webview.onDidReceiveMessage((message: unknown) => {
                if (!isWebviewToHost(message))
                    return this.host.log.warn(
                        `chat view: ignored a malformed message ${JSON.stringify(message)}`,
                    );
                // Stop must not wait behind anything.
                if (message.type === "stop") return this.turn?.stop();
                this.enqueue(() => this.handle(message));
            }),
            // A hidden view loses its document; it sends `ready` again when shown.
            view.onDidChangeVisibility(() => {
                if (!view.visible) this.webviewReady = false;
            }),
            view.onDidDispose(() => {
                if (this.view === view) {
                    this.view = undefined;
                    this.webviewReady = false;
                }
                for (const listener of listeners) listener.dispose();
            }),
        ];
    }

    async newChatCommand(): Promise<void> {
        this.enqueue(() => this.startNewChat());
        await this.showInView({ type: "focusInput" });
    }

    /** Reveals the view and asks the webview to show something (now, or once it is ready). */
    async showInView(
        request: Extract<HostToWebview, { type: "showHistory" | "focusInput" }>,
    ): Promise<void> {
        await vscode.commands.executeCommand(`${VIEW_ID}.focus`);
        if (this.webviewReady) this.post(request);
        else this.pendingRequest = request;
    }

    /** `olmo.chat.explain` (from Explain Selection): the code becomes the user's message, the explanation streams in. */
    async explainCommand(request: unknown): Promise<void> {
        if (!isExplainRequest(request))
            throw new Error("olmo.chat.explain needs { code, language, fileName, lines }.");
        await vscode.commands.executeCommand(`${VIEW_ID}.focus`);
        this.enqueue(() => this.explain(request));
    }

    private enqueue(task: () => Promise<void>): void {
        // The first task restores the conversation this workspace had open, before anything uses it.
        this.queue = this.queue
            .then(() => (this.restored ??= this.restore()))
            .then(task)
            .catch((error: unknown) => {
                const message = error instanceof Error ? error.message : String(error);
                this.host.log.error(`chat view: ${message}`);
                void vscode.window.showErrorMessage(`OLMo chat: ${message}`);
            });
    }

    /** Everything but `stop`, which is handled as it arrives. */
    private async handle(message: Exclude<WebviewToHost, { type: "stop" }>): Promise<void> {
        switch (message.type) {
            case "ready":
                return this.onReady();
            case "send":
                return this.sendOrQueue(message.text);
            case "unqueue":
                if (this.queuedMessages.remove(message.id)) await this.postSnapshot();
                return;
            case "retry":
                return this.retry(message.messageId);
            case "editMessage":
                return this.edit(message.messageId, message.text);
            case "regenerate":
                return this.regenerate(message.messageId);
            case "showVersion":
                return this.showVersion(message.messageId, message.index);
            case "copyAnswer":
                return this.copyAnswer(message.messageId);
            case "showPrompt":
                return this.showPrompt(message.messageId);
            case "renameChat":
                return this.renameChat(message.id);
            case "exportChat":
                return this.exportChat(message.id);
            case "searchHistory":
                this.historyQuery = message.query;
                return this.postSnapshot();
            case "newChat":
                return this.startNewChat();
            case "openChat":
                return this.openChat(message.id);
            case "deleteChat":
                return this.deleteChat(message.id);
            case "attachQuery":
                return this.attachments.suggest(message.query);
            case "attach":
                return this.attachments.attach(message.suggestionId);
            case "attachUris":
                return this.attachments.attachUris(message.uriList);
            case "removeAttachment":
                return this.attachments.remove(message.id);
            case "setContextEnabled":
                this.contextEnabled = message.enabled;
                return this.post({
                    type: "context",
                    context: chatEditorContext(this.contextEnabled),
                });
            default:
                return runEditorAction(message);
        }
    }

    private async onReady(): Promise<void> {
        this.webviewReady = true;
        // Shown again: other windows may have changed the open chat meanwhile.
        if (!this.turn) await this.rereadConversation();
        await this.postSnapshot();
        if (this.pendingRequest) this.post(this.pendingRequest);
        this.pendingRequest = undefined;
        void this.updateTokens();
        // The view is open, so the model will be wanted soon: start loading it now (if one is set:
        // choosing one waits for the first message, which is a deliberate use).
        if (this.host.state.kind === "stopped" && modelConfigured())
            void this.host.ensureReady().catch(() => undefined);
    }

    /** After a reload: the conversation this workspace had open, if it was saved. */
    private async restore(): Promise<void> {
        const id = this.workspaceState.get<string>(CURRENT_CONVERSATION_KEY);
        const saved = id ? await this.store.get(id) : undefined;
        if (saved) this.conversation = saved;
    }

    /** While an answer streams the message waits its turn (shown as queued); else it is sent now. */
    private async sendOrQueue(text: string): Promise<void> {
        if (text.trim() === "") return;
        if (!this.turn) return this.send(text);
        const attachments = this.attachments.take();
        this.queuedMessages.add(this.conversation.id, {
            id: randomUUID(),
            text,
            ...(attachments.length > 0 && { attachments }),
        });
        await this.postSnapshot();
    }

    /** After an answer ended, or on opening a chat: the open chat's next queued message, if it is free. */
    private async sendQueued(): Promise<void> {
        if (this.turn) return;
        const next = this.queuedMessages.next(this.conversation.id);
        if (next) await this.send(next.text, next.attachments ?? []);
    }

    private async send(text: string, attachments = this.attachments.take()): Promise<void> {
        if (text.trim() === "") return;
        await this.turn?.done;
        await this.continueFromDisk();
        const conversation = this.conversation;
        const target = this.contextEnabled ? chatContextTarget() : undefined;
        const context = target && !("tooLarge" in target) ? target : undefined;
        this.contextEnabled = false;
        if (conversation.messages.length === 0) conversation.title = titleFromText(text);
        conversation.messages.push({
            id: randomUUID(),
            role: "user",
            text,
            ...(context && { context }),
            ...(attachments.length > 0 && { attachments }),
        });
        this.answerLastMessage(conversation);
        this.post({ type: "context", context: chatEditorContext(this.contextEnabled) });
    }

    /** Appends an empty answer to the conversation's last (user) message and streams it. */
    private answerLastMessage(conversation: Conversation): void {
        const answer: AssistantMessage = {
            id: randomUUID(),
            role: "assistant",
            text: "",
            state: "streaming",
        };
        conversation.messages.push(answer);
        this.startAnswer(conversation, answer);
    }

    /**
     * Before a new turn: the open chat as other windows left it (their turns come first), or a new
     * chat when another window deleted it, which is said.
     */
    private async continueFromDisk(): Promise<void> {
        if (await this.store.wasDeleted(this.conversation.id)) {
            void vscode.window.showInformationMessage(
                `The chat "${this.conversation.title}" was deleted in another window: your message starts a new chat.`,
            );
            await this.switchTo(newConversation());
        } else {
            await this.rereadConversation();
        }
    }

    private async retry(messageId: string): Promise<void> {
        await this.turn?.done;
        const answer = this.conversation.messages.find(
            (m): m is AssistantMessage => m.id === messageId && m.role === "assistant",
        );
        if (!answer) return;
        answer.text = "";
        answer.state = "streaming";
        delete answer.error;
        delete answer.droppedMessages;
        delete answer.usage;
        this.startAnswer(this.conversation, answer);
    }

    /** Replaces a user message's text, drops the turns after it, and answers the edited message. */
    private async edit(messageId: string, text: string): Promise<void> {
        if (text.trim() === "") return;
        this.turn?.stop();
        await this.turn?.done;
        await this.continueFromDisk();
        const conversation = this.conversation;
        const edited = editUserMessage(conversation, messageId, text, randomUUID());
        if (!edited) {
            // Said with the text, so that nothing typed is lost.
            void vscode.window.showWarningMessage(
                `OLMo Local: the message you edited is no longer in the chat (another window may have edited it), so this was not sent: ${text}`,
            );
            return this.postSnapshot();
        }
        if (conversation.messages.length === 1 && conversation.titleSetAt === undefined)
            conversation.title = titleFromText(text);
        this.answerLastMessage(conversation);
    }

    /** Another version of the last answer; the one on screen is kept among the versions. */
    private async regenerate(messageId: string): Promise<void> {
        await this.turn?.done;
        const answer = this.conversation.messages.at(-1);
        if (answer?.role !== "assistant" || answer.id !== messageId) return;
        startNewVersion(answer);
        this.startAnswer(this.conversation, answer);
    }

    private async showVersion(messageId: string, index: number): Promise<void> {
        const answer = this.answerById(messageId);
        if (!answer || this.turn?.message === answer || !showVersion(answer, index)) return;
        await this.saveOpenConversation();
        await this.postSnapshot();
        void this.updateTokens();
    }

    private async copyAnswer(messageId: string): Promise<void> {
        const answer = this.answerById(messageId);
        if (!answer) return;
        await vscode.env.clipboard.writeText(answer.text);
        vscode.window.setStatusBarMessage("OLMo: answer copied as Markdown", 3000);
    }

    /** Opens the prompt the model saw for the answer (the messages before it, formatted by the sidecar). */
    private async showPrompt(messageId: string): Promise<void> {
        const conversation = this.conversation;
        const answer = this.answerById(messageId);
        if (!answer) return;
        const messages = toModelMessages(
            conversation.messages.slice(0, conversation.messages.indexOf(answer)),
            systemPromptFromSettings(),
        );
        const prompt = await this.host.request("olmo/formatPrompt", { messages });
        const uri = this.prompts.set(conversation.title, prompt.text);
        const document = await vscode.workspace.openTextDocument(uri);
        await vscode.window.showTextDocument(document, { preview: true });
    }

    private async renameChat(id: string): Promise<void> {
        const conversation =
            id === this.conversation.id ? this.conversation : await this.store.get(id);
        if (!conversation) return;
        const name = await vscode.window.showInputBox({
            title: "Rename Chat",
            prompt: "The chat's new name",
            value: conversation.title,
            validateInput: (value) =>
                value.trim() === "" ? "Type a name for the chat." : undefined,
        });
        if (name === undefined || name.trim() === conversation.title) return;
        conversation.title = name.trim();
        conversation.titleSetAt = Date.now();
        if (conversation === this.conversation) await this.saveOpenConversation();
        else await this.store.save(conversation);
        await this.postSnapshot();
    }

    /** Writes the chat as Markdown where the save dialog says. */
    private async exportChat(id: string): Promise<void> {
        const conversation =
            id === this.conversation.id ? this.conversation : await this.store.get(id);
        if (!conversation) return;
        const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
        const uri = await vscode.window.showSaveDialog({
            title: "Export Chat as Markdown",
            saveLabel: "Export",
            filters: { Markdown: ["md"] },
            ...(folder && {
                defaultUri: vscode.Uri.joinPath(folder, exportFileName(conversation)),
            }),
        });
        if (!uri) return;
        await vscode.workspace.fs.writeFile(
            uri,
            new TextEncoder().encode(conversationToMarkdown(conversation)),
        );
        this.host.log.info(`chat: exported "${conversation.title}" to ${uri.toString(true)}`);
        void vscode.window.showInformationMessage(
            `OLMo Local: the chat "${conversation.title}" was exported to ${uri.scheme === "file" ? uri.fsPath : uri.toString(true)}.`,
        );
    }

    private answerById(messageId: string): AssistantMessage | undefined {
        return this.conversation.messages.find(
            (m): m is AssistantMessage => m.id === messageId && m.role === "assistant",
        );
    }

    /**
     * Stores the open chat outside a turn (a version switch, a rename); turns other windows
     * stored meanwhile join it. A chat deleted elsewhere stays on screen unsaved, as after a turn.
     */
    private async saveOpenConversation(): Promise<void> {
        const conversation = this.conversation;
        const result = await this.store.save(conversation);
        if ("saved" in result) takeInSaved(conversation, result.saved);
    }

    private async explain(request: ExplainRequest): Promise<void> {
        this.turn?.stop();
        await this.turn?.done;
        await this.continueFromDisk();
        const conversation = this.conversation;
        const history = toModelMessages(conversation.messages, systemPromptFromSettings());
        const instruction = request.instruction ?? "Explain this code.";
        const user: UserMessage = {
            id: randomUUID(),
            role: "user",
            text: `${instruction} \`${request.fileName}\`, lines ${request.lines}:\n\n${fenced(request.code, request.language)}`,
        };
        if (conversation.messages.length === 0)
            conversation.title = titleFromText(`Explain ${request.fileName}:${request.lines}`);
        const answer: AssistantMessage = {
            id: randomUUID(),
            role: "assistant",
            text: "",
            state: "streaming",
        };
        conversation.messages.push(user, answer);
        this.startAnswer(conversation, answer, async (onDelta, signal) => {
            const { code, language, fileName, lines } = request;
            const params = {
                conversationId: conversation.id,
                history,
                code,
                language,
                fileName,
                lines,
                instruction: request.instruction,
                sampling: samplingFromSettings(),
            };
            const result = await withCancellation(signal, (token) =>
                this.host.stream("olmo/explain", params, (delta) => onDelta(delta.text), token),
            );
            // Later turns send the prompt the model answered, not the text shown.
            user.prompt = result.prompt;
            return result;
        });
    }

    /** Starts an answer to the messages before `message`, with the conversation as history unless `ask` says otherwise. */
    private startAnswer(conversation: Conversation, message: AssistantMessage, ask?: Ask): void {
        // Said on the answer, so that a regeneration giving the same text is explained.
        if (samplingFromSettings().temperature === 0) message.greedy = true;
        else delete message.greedy;
        const askWithHistory: Ask = (onDelta, signal) =>
            withCancellation(signal, (token) =>
                this.host.chat(
                    {
                        conversationId: conversation.id,
                        messages: toModelMessages(
                            conversation.messages.slice(0, conversation.messages.indexOf(message)),
                            systemPromptFromSettings(),
                        ),
                        sampling: samplingFromSettings(),
                    },
                    onDelta,
                    token,
                ),
            );
        const turn = new ChatTurn(conversation, message, ask ?? askWithHistory, {
            store: this.store,
            postDelta: (messageId, text) => this.post({ type: "delta", messageId, text }),
            postSnapshot: () => this.postSnapshot(),
            warn: (text) => void vscode.window.showWarningMessage(`OLMo Local: ${text}`),
            log: (level, text) => this.host.log[level](text),
        });
        this.turn = turn;
        void turn.done
            .catch((error: unknown) => this.host.log.error(`chat view: ${String(error)}`))
            .finally(() => {
                if (this.turn === turn) this.turn = undefined;
                void this.updateTokens();
                this.enqueue(() => this.sendQueued());
            });
        if (conversation === this.conversation)
            void this.workspaceState.update(CURRENT_CONVERSATION_KEY, conversation.id);
    }

    private async startNewChat(): Promise<void> {
        this.turn?.stop();
        await this.switchTo(newConversation());
    }

    private async openChat(id: string): Promise<void> {
        const conversation = await this.store.get(id);
        if (!conversation || conversation.id === this.conversation.id) return;
        this.turn?.stop();
        await this.switchTo(conversation);
        await this.sendQueued();
    }

    private async deleteChat(id: string): Promise<void> {
        const summary = (await this.store.list()).find((c) => c.id === id);
        if (!summary) return;
        const choice = await vscode.window.showWarningMessage(
            `Delete the chat "${summary.title}"?`,
            { modal: true },
            "Delete",
        );
        if (choice !== "Delete") return;
        if (this.turn?.conversation.id === id) {
            this.turn.stop();
            await this.turn?.done;
        }
        await this.store.delete(id);
        if (this.conversation.id === id) await this.switchTo(newConversation());
        else await this.postSnapshot();
    }

    private async switchTo(conversation: Conversation): Promise<void> {
        this.conversation = conversation;
        this.tokens = undefined;
        await this.workspaceState.update(CURRENT_CONVERSATION_KEY, conversation.id);
        await this.postSnapshot();
        void this.updateTokens();
    }

    private async postSnapshot(): Promise<void> {
        if (!this.webviewReady) return;
        // A folder that cannot be read now keeps the history last read; the error is logged, and
        // the next snapshot reads it again.
        this.history = await this.store.list(this.historyQuery).catch((error: unknown) => {
            this.host.log.error(`chat view: ${(error as Error).message}`);
            return this.history;
        });
        this.post({
            type: "snapshot",
            snapshot: {
                conversation: this.conversation,
                history: this.history,
                model: this.modelStatus(),
                context: chatEditorContext(this.contextEnabled),
                tokens: this.tokens,
                systemPrompt: workspaceSystemPrompt(),
                attachments: this.attachments.attachments,
                queued: this.queuedMessages.of(this.conversation.id),
                historyQuery: this.historyQuery,
            },
        });
        // The snapshot carries the answer streamed so far: later deltas carry only what follows.
        this.turn?.snapshotPosted();
    }

    private post(message: HostToWebview): void {
        if (this.view && this.webviewReady) void this.view.webview.postMessage(message);
    }

    /** The conversation's tokens against the context the sidecar allocated; only once the model is loaded. */
    private async updateTokens(): Promise<void> {
        const state = this.host.state;
        if (state.kind !== "ready") return;
        const conversation = this.conversation;
        const messages = toModelMessages(conversation.messages, systemPromptFromSettings());
        const tokens =
            messages.length === 0
                ? { tokens: 0, contextSize: state.model.contextSize }
                : await this.host.request("olmo/countTokens", { messages }).catch(() => undefined);
        if (!tokens || conversation !== this.conversation) return;
        // Attachments waiting to be sent count too, against the room the prompt has.
        this.tokens = {
            ...tokens,
            attachments: this.attachments.tokens,
            promptRoom: promptRoom(tokens.contextSize),
        };
        this.post({ type: "tokens", tokens: this.tokens });
    }

    /** The host's state; before anything has started, whether a model is set at all. */
    private modelStatus(): ModelStatus {
        const state = this.host.state;
        if (state.kind === "stopped" && !modelConfigured()) return { kind: "noModel" };
        return toModelStatus(state);
    }

    private postContextSoon(): void {
        clearTimeout(this.contextTimer);
        this.contextTimer = setTimeout(
            () => this.post({ type: "context", context: chatEditorContext(this.contextEnabled) }),
            100,
        );
    }

    dispose(): void {
        this.turn?.stop();
        this.folderWatcher.close();
        clearTimeout(this.contextTimer);
        for (const subscription of this.subscriptions) subscription.dispose();
    }
}

/** The webview's requests that need nothing of the chat's state. */
async function runEditorAction(
    message: Extract<
        WebviewToHost,
        {
            type:
                | "copyCode"
                | "insertCode"
                | "applyCode"
                | "openLink"
                | "openModelSettings"
                | "openSystemPromptSetting"
                | "setUpModel"
                | "restartModel"
                | "showLog"
                | "setServerApiKey"
                | "openServerSettings";
        }
    >,
): Promise<void> {
    switch (message.type) {
        case "copyCode":
            await vscode.env.clipboard.writeText(message.code);
            return;
        case "insertCode":
            return insertAtCursor(message.code);
        case "applyCode":
            return applyToSelection(message.code);
        case "openLink":
            return openLink(message.href);
        case "openModelSettings":
            return openModelPathSetting();
        case "openSystemPromptSetting":
            await vscode.commands.executeCommand("workbench.action.openWorkspaceSettings", {
                query: "olmo.systemPrompt",
            });
            return;
        case "setUpModel":
            // Not awaited: a download can take a long time.
            void vscode.commands.executeCommand("olmo.setupModel");
            return;
        case "restartModel":
            // Not awaited: reloading the model can take minutes, and the queue must keep moving.
            void vscode.commands.executeCommand("olmo.restart");
            return;
        case "showLog":
            await vscode.commands.executeCommand("olmo.showLog");
            return;
        case "setServerApiKey":
            await vscode.commands.executeCommand("olmo.setServerApiKey");
            return;
        case "openServerSettings":
            return openServerSettings();
    }
}

/** The view's page: a nonce CSP, and only the built assets. */
function chatHtml(webview: vscode.Webview, extensionUri: vscode.Uri): string {
    const nonce = randomBytes(16).toString("base64");
    const asset = (name: string) =>
        webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, "dist", name)).toString();
    const csp = [
        "default-src 'none'",
        `script-src 'nonce-${nonce}'`,
        `style-src ${webview.cspSource}`,
        `font-src ${webview.cspSource}`,
        `img-src ${webview.cspSource}`,
    ].join("; ");
    return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${asset("webview.css")}">
<title>OLMo Chat</title>
</head>
<body>
<script nonce="${nonce}" src="${asset("webview.js")}"></script>
</body>
</html>`;
}

/** Runs a model request under a cancellation token that follows `signal`. */
async function withCancellation<T>(
    signal: AbortSignal,
    request: (token: vscode.CancellationToken) => Promise<T>,
): Promise<T> {
    const source = new vscode.CancellationTokenSource();
    const cancel = () => source.cancel();
    if (signal.aborted) cancel();
    signal.addEventListener("abort", cancel, { once: true });
    try {
        return await request(source.token);
    } finally {
        signal.removeEventListener("abort", cancel);
        source.dispose();
    }
}

/**
 * The workspace's `olmo.systemPrompt` when it is the one in effect: a cloned repository can set it,
 * so the chat shows it. In a restricted (untrusted) workspace VS Code ignores it (the manifest
 * lists it in `restrictedConfigurations`), and then nothing is shown.
 */
function workspaceSystemPrompt(): WorkspaceSystemPrompt | undefined {
    const inspected = vscode.workspace.getConfiguration("olmo").inspect<string>("systemPrompt");
    const fromWorkspace = inspected?.workspaceValue;
    const inEffect = systemPromptFromSettings();
    if (fromWorkspace === undefined || fromWorkspace.trim() === "" || fromWorkspace !== inEffect)
        return undefined;
    return { text: fromWorkspace };
}

function isExplainRequest(value: unknown): value is ExplainRequest {
    const r = value as Partial<ExplainRequest> | null;
    return (
        typeof r === "object" &&
        r !== null &&
        typeof r.code === "string" &&
        typeof r.language === "string" &&
        typeof r.fileName === "string" &&
        typeof r.lines === "string" &&
        (r.instruction === undefined || typeof r.instruction === "string")
    );
}

function toModelStatus(state: HostState): ModelStatus {
    switch (state.kind) {
        case "stopped":
            return { kind: "idle" };
        case "noModel":
            return { kind: "noModel" };
        case "starting":
            return { kind: "loading" };
        case "settingUp":
            return { kind: "settingUp", activity: state.activity };
        case "loading":
            return { kind: "loading", progress: state.progress };
        case "ready":
            return { kind: "ready", name: state.model.name, contextSize: state.model.contextSize };
        case "error":
            return { kind: "error", message: state.message, code: state.code };
        case "gaveUp":
            return { kind: "error", message: state.message };
    }
}

async function insertAtCursor(code: string): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (!editor)
        return void vscode.window.showWarningMessage("Open an editor to insert the code into.");
    const inserted = await editor.edit((edit) => {
        // Keep the block's final newline only where it ends a line of its own.
        for (const selection of editor.selections)
            edit.insert(
                selection.active,
                selection.active.character === 0 ? code : code.replace(/\n$/, ""),
            );
    });
    if (!inserted)
        return void vscode.window.showWarningMessage(
            "The code could not be inserted (is the editor read-only?).",
        );
    await vscode.window.showTextDocument(editor.document, editor.viewColumn);
}

/** Replaces the selection as one undoable edit. */
async function applyToSelection(code: string): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    if (!editor || editor.selection.isEmpty)
        return void vscode.window.showWarningMessage(
            "Select the code to replace in an editor, then Apply again.",
        );
    const selection = editor.selection;
    const replacement = editor.document.getText(selection).endsWith("\n")
        ? code
        : code.replace(/\n$/, "");
    const applied = await editor.edit((edit) => edit.replace(selection, replacement));
    if (!applied)
        return void vscode.window.showWarningMessage(
            "The code could not be applied (is the editor read-only?).",
        );
    await vscode.window.showTextDocument(editor.document, editor.viewColumn);
}

async function openLink(href: string): Promise<void> {
    if (!isOpenableLink(href)) return;
    const uri = vscode.Uri.parse(href.trim(), true);
    if (uri.scheme === "http" || uri.scheme === "https") await vscode.env.openExternal(uri);
}
