// The chat sidebar: a webview view (olmo.chat) locked down by a CSP with a per-load nonce, talking to
// media/chat.ts through the typed protocol in media/protocol.ts. The extension holds the truth (the
// conversation, the history, the model state); the webview draws snapshots and streamed deltas.
import { randomBytes, randomUUID } from "node:crypto";
import * as vscode from "vscode";
import {
    isOpenableLink,
    isWebviewToHost,
    type AssistantMessage,
    type ContextSnippet,
    type Conversation,
    type EditorContext,
    type HostToWebview,
    type ModelStatus,
    type TokenMeter,
    type UserMessage,
    type WebviewToHost,
} from "../media/protocol.js";
import type { ChatResult, StopReason } from "../sidecar/protocol.js";
import {
    ConversationStore,
    fenced,
    newConversation,
    titleFromText,
    toModelMessages,
} from "./conversationStore.js";
import type { ExplainRequest } from "./explain.js";
import { OlmoError, type HostState, type ModelHost } from "./modelHost.js";
import {
    loadParamsFromSettings,
    samplingFromSettings,
    systemPromptFromSettings,
} from "./settings.js";

const VIEW_ID = "olmo.chat";
/** Without a selection the whole file is offered as context when it is smaller than this. */
const WHOLE_FILE_LIMIT = 8 * 1024;
/** Deltas are forwarded at most this often; the webview draws once per animation frame anyway. */
const DELTA_INTERVAL_MS = 25;
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
    const provider = new ChatViewProvider(
        context.extensionUri,
        host,
        store,
        context.workspaceState,
    );
    return [
        provider,
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

/** Generates an answer: text deltas go to `onDelta`; cancelling returns the partial answer. */
type Ask = (
    onDelta: (text: string) => void,
    token: vscode.CancellationToken,
) => Promise<ChatResult>;

interface RunningAnswer {
    conversation: Conversation;
    message: AssistantMessage;
    ask: Ask;
    cancellation: vscode.CancellationTokenSource;
    /** Text received since the last delta sent to the webview. */
    unsentText: string;
    flushTimer?: NodeJS.Timeout;
    /** When the last delta went to the webview (performance.now()). */
    lastDeltaAt: number;
    done: Promise<void>;
}

class ChatViewProvider implements vscode.WebviewViewProvider, vscode.Disposable {
    private view?: vscode.WebviewView;
    /** Set by the webview's `ready`; cleared when its document goes away (hidden or disposed). */
    private webviewReady = false;
    private conversation: Conversation = newConversation();
    /** Restoring the open conversation after a reload; started by the first queued task. */
    private restored?: Promise<void>;
    private running?: RunningAnswer;
    private contextEnabled = false;
    private tokens?: TokenMeter;
    /** Asked for by a command before the webview was ready; sent after the snapshot. */
    private pendingRequest?: HostToWebview;
    /** Webview messages are handled one at a time, in order (an answer runs on without blocking it). */
    private queue: Promise<void> = Promise.resolve();
    private contextTimer?: NodeJS.Timeout;
    private readonly subscriptions: vscode.Disposable[];

    constructor(
        private readonly extensionUri: vscode.Uri,
        private readonly host: ModelHost,
        private readonly store: ConversationStore,
        private readonly workspaceState: vscode.Memento,
    ) {
        this.subscriptions = [
            host.onDidChangeState((state) => {
                this.post({ type: "model", model: this.modelStatus() });
                if (state.kind === "ready") void this.updateTokens();
            }),
            vscode.workspace.onDidChangeConfiguration((e) => {
                if (e.affectsConfiguration("olmo.modelPath"))
                    this.post({ type: "model", model: this.modelStatus() });
            }),
            vscode.window.onDidChangeActiveTextEditor(() => this.postContextSoon()),
            vscode.window.onDidChangeTextEditorSelection(() => this.postContextSoon()),
        ];
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
        view.webview.html = this.html(view.webview);
        const listeners = [
            view.webview.onDidReceiveMessage((message: unknown) => {
                if (!isWebviewToHost(message))
                    return this.host.log.warn(
                        `chat view: ignored a malformed message ${JSON.stringify(message)}`,
                    );
                // Stop must not wait behind anything.
                if (message.type === "stop") return this.running?.cancellation.cancel();
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
                return this.send(message.text);
            case "retry":
                return this.retry(message.messageId);
            case "newChat":
                return this.startNewChat();
            case "openChat":
                return this.openChat(message.id);
            case "deleteChat":
                return this.deleteChat(message.id);
            case "setContextEnabled":
                this.contextEnabled = message.enabled;
                return this.post({ type: "context", context: this.editorContext() });
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
        }
    }

    private async onReady(): Promise<void> {
        this.webviewReady = true;
        await this.postSnapshot();
        if (this.pendingRequest) this.post(this.pendingRequest);
        this.pendingRequest = undefined;
        void this.updateTokens();
        // The view is open, so the model will be wanted soon: start loading it now (if one is set:
        // choosing one waits for the first message, which is a deliberate use).
        if (this.host.state.kind === "stopped" && loadParamsFromSettings())
            void this.host.ensureReady().catch(() => undefined);
    }

    /** After a reload: the conversation this workspace had open, if it was saved. */
    private async restore(): Promise<void> {
        const id = this.workspaceState.get<string>(CURRENT_CONVERSATION_KEY);
        const saved = id ? await this.store.get(id) : undefined;
        if (saved) this.conversation = saved;
    }

    private async send(text: string): Promise<void> {
        if (text.trim() === "") return;
        await this.running?.done;
        const conversation = this.conversation;
        const context = this.contextEnabled ? this.captureContext() : undefined;
        this.contextEnabled = false;
        if (conversation.messages.length === 0) conversation.title = titleFromText(text);
        conversation.messages.push({
            id: randomUUID(),
            role: "user",
            text,
            ...(context && { context }),
        });
        const answer: AssistantMessage = {
            id: randomUUID(),
            role: "assistant",
            text: "",
            state: "streaming",
        };
        conversation.messages.push(answer);
        this.startAnswer(conversation, answer);
        this.post({ type: "context", context: this.editorContext() });
    }

    private async retry(messageId: string): Promise<void> {
        await this.running?.done;
        const answer = this.conversation.messages.find(
            (m): m is AssistantMessage => m.id === messageId && m.role === "assistant",
        );
        if (!answer) return;
        answer.text = "";
        answer.state = "streaming";
        delete answer.error;
        delete answer.droppedMessages;
        this.startAnswer(this.conversation, answer);
    }

    private async explain(request: ExplainRequest): Promise<void> {
        this.running?.cancellation.cancel();
        await this.running?.done;
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
        this.startAnswer(conversation, answer, async (onDelta, token) => {
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
            const result = await this.host.stream(
                "olmo/explain",
                params,
                (delta) => onDelta(delta.text),
                token,
            );
            // Later turns send the prompt the model answered, not the text shown.
            user.prompt = result.prompt;
            return result;
        });
    }

    /** Starts an answer to the messages before `message`, with the conversation as history unless `ask` says otherwise. */
    private startAnswer(conversation: Conversation, message: AssistantMessage, ask?: Ask): void {
        const earlier = () =>
            toModelMessages(
                conversation.messages.slice(0, conversation.messages.indexOf(message)),
                systemPromptFromSettings(),
            );
        const askWithHistory: Ask = (onDelta, token) =>
            this.host.chat(
                {
                    conversationId: conversation.id,
                    messages: earlier(),
                    sampling: samplingFromSettings(),
                },
                onDelta,
                token,
            );
        const running: RunningAnswer = {
            conversation,
            message,
            ask: ask ?? askWithHistory,
            cancellation: new vscode.CancellationTokenSource(),
            unsentText: "",
            lastDeltaAt: -Infinity,
            done: Promise.resolve(),
        };
        this.running = running;
        running.done = this.generate(running).catch((error: unknown) =>
            this.host.log.error(`chat view: ${(error as Error).message ?? error}`),
        );
    }

    private async generate(running: RunningAnswer): Promise<void> {
        const { conversation, message } = running;
        try {
            conversation.updatedAt = Date.now();
            // The question is saved while the model starts on it: the file write is not on the way to the first token.
            const saved = this.saveAsCurrent(conversation);
            await this.postSnapshot();
            const [result] = await Promise.all([
                running.ask((text) => this.onDelta(running, text), running.cancellation.token),
                saved,
            ]);
            message.text = result.text;
            message.state = answerStateOf(result.stopReason);
            if (result.dropped) message.droppedMessages = result.dropped.messageIndices.length;
            const { usage, timings } = result;
            this.host.log.info(
                `chat: answer ended (${result.stopReason}): ${usage.completionTokens} tokens, first token after ${Math.round(timings.timeToFirstTokenMs)} ms, ` +
                    `${timings.tokensPerSecond.toFixed(1)} tok/s, ${usage.promptTokens} prompt tokens (${usage.reusedTokens} reused)`,
            );
        } catch (error) {
            if (error instanceof OlmoError && error.code === "cancelled") {
                message.state = "stopped";
            } else {
                message.state = "failed";
                message.error = {
                    code: error instanceof OlmoError ? error.code : "internal",
                    message: error instanceof Error ? error.message : String(error),
                };
            }
        } finally {
            clearTimeout(running.flushTimer);
            running.cancellation.dispose();
            this.running = undefined;
        }
        conversation.updatedAt = Date.now();
        await this.store.save(conversation);
        await this.postSnapshot();
        void this.updateTokens();
    }

    /** Forwards text at once when nothing went out in the last interval (the first token), else coalesces it. */
    private onDelta(running: RunningAnswer, text: string): void {
        running.message.text += text;
        running.unsentText += text;
        if (running.flushTimer) return;
        const wait = running.lastDeltaAt + DELTA_INTERVAL_MS - performance.now();
        if (wait <= 0) this.sendDelta(running);
        else running.flushTimer = setTimeout(() => this.sendDelta(running), wait);
    }

    private sendDelta(running: RunningAnswer): void {
        running.flushTimer = undefined;
        if (running.unsentText === "") return;
        running.lastDeltaAt = performance.now();
        this.post({ type: "delta", messageId: running.message.id, text: running.unsentText });
        running.unsentText = "";
    }

    private async startNewChat(): Promise<void> {
        this.running?.cancellation.cancel();
        await this.switchTo(newConversation());
    }

    private async openChat(id: string): Promise<void> {
        const conversation = await this.store.get(id);
        if (!conversation || conversation.id === this.conversation.id) return;
        this.running?.cancellation.cancel();
        await this.switchTo(conversation);
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
        if (this.running?.conversation.id === id) {
            this.running.cancellation.cancel();
            await this.running?.done;
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

    private async saveAsCurrent(conversation: Conversation): Promise<void> {
        await this.store.save(conversation);
        if (conversation === this.conversation)
            await this.workspaceState.update(CURRENT_CONVERSATION_KEY, conversation.id);
    }

    private async postSnapshot(): Promise<void> {
        if (!this.webviewReady) return;
        const history = await this.store.list();
        // The snapshot carries the text streamed so far, so nothing unsent may follow it as a delta.
        if (this.running) this.running.unsentText = "";
        this.post({
            type: "snapshot",
            snapshot: {
                conversation: this.conversation,
                history,
                model: this.modelStatus(),
                context: this.editorContext(),
                tokens: this.tokens,
            },
        });
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
        this.tokens = tokens;
        this.post({ type: "tokens", tokens });
    }

    /** The host's state; before anything has started, whether a model is set at all. */
    private modelStatus(): ModelStatus {
        const state = this.host.state;
        if (state.kind === "stopped" && !loadParamsFromSettings()) return { kind: "noModel" };
        return toModelStatus(state);
    }

    private postContextSoon(): void {
        clearTimeout(this.contextTimer);
        this.contextTimer = setTimeout(
            () => this.post({ type: "context", context: this.editorContext() }),
            100,
        );
    }

    private editorContext(): EditorContext {
        const target = contextTarget();
        if (!target) return { enabled: this.contextEnabled };
        if ("tooLarge" in target) {
            return {
                enabled: this.contextEnabled,
                unavailableReason: `${target.fileName} is larger than 8 KB: select the code to add.`,
            };
        }
        const { fileName, path, startLine, endLine, wholeFile } = target;
        return {
            enabled: this.contextEnabled,
            available: { fileName, path, startLine, endLine, wholeFile },
        };
    }

    private captureContext(): ContextSnippet | undefined {
        const target = contextTarget();
        return target && !("tooLarge" in target) ? target : undefined;
    }

    private html(webview: vscode.Webview): string {
        const nonce = randomBytes(16).toString("base64");
        const asset = (name: string) =>
            webview.asWebviewUri(vscode.Uri.joinPath(this.extensionUri, "dist", name)).toString();
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

    dispose(): void {
        this.running?.cancellation.cancel();
        clearTimeout(this.contextTimer);
        for (const subscription of this.subscriptions) subscription.dispose();
    }
}

/** What the context chip would attach: the selection, or the whole file when it is small. */
function contextTarget(): ContextSnippet | { tooLarge: true; fileName: string } | undefined {
    const editor = vscode.window.activeTextEditor;
    if (!editor || editor.document.uri.scheme === "output") return undefined;
    const document = editor.document;
    const fileName = document.uri.path.split("/").pop() || document.uri.path;
    const base = {
        fileName,
        path: vscode.workspace.asRelativePath(document.uri, false),
        language: document.languageId,
    };
    const selection = editor.selection;
    if (!selection.isEmpty) {
        // A selection ending at the start of a line does not include that line.
        const endLine =
            selection.end.character === 0 && selection.end.line > selection.start.line
                ? selection.end.line
                : selection.end.line + 1;
        return {
            ...base,
            startLine: selection.start.line + 1,
            endLine,
            wholeFile: false,
            text: document.getText(selection),
        };
    }
    const length = document.offsetAt(document.lineAt(document.lineCount - 1).range.end);
    if (length >= WHOLE_FILE_LIMIT) return { tooLarge: true, fileName };
    return {
        ...base,
        startLine: 1,
        endLine: document.lineCount,
        wholeFile: true,
        text: document.getText(),
    };
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
            return { kind: "error", message: state.message };
    }
}

function answerStateOf(stopReason: StopReason): AssistantMessage["state"] {
    switch (stopReason) {
        case "eos":
            return "done";
        case "cancelled":
            return "stopped";
        case "maxTokens":
        case "contextFull":
            return "truncated";
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

/** olmo.modelPath is machine-scoped: in a remote window it is set in the remote's settings. */
async function openModelPathSetting(): Promise<void> {
    const command = vscode.env.remoteName
        ? "workbench.action.openRemoteSettings"
        : "workbench.action.openSettings";
    await vscode.commands.executeCommand(command, { query: "olmo.modelPath" });
}

async function openLink(href: string): Promise<void> {
    if (!isOpenableLink(href)) return;
    const uri = vscode.Uri.parse(href.trim(), true);
    if (uri.scheme === "http" || uri.scheme === "https") await vscode.env.openExternal(uri);
}
