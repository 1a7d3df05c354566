// The webview <-> extension protocol of the chat view: one discriminated union per direction.
// Defined once here, with no runtime dependencies, and imported by both ends (extension/chatView.ts
// and media/chat.ts). The extension holds the truth; the webview draws snapshots and deltas.

/** Code from an editor attached to a user message. Lines are 1-based and inclusive. */
export interface ContextSnippet {
    fileName: string;
    /** Workspace-relative path when the file is in the workspace, for the prompt and the tooltip. */
    path: string;
    language: string;
    startLine: number;
    endLine: number;
    wholeFile: boolean;
    text: string;
}

export interface UserMessage {
    id: string;
    role: "user";
    text: string;
    context?: ContextSnippet;
    /** What the model was sent for this message, when the sidecar built it (an explain request). */
    prompt?: string;
}

/**
 * streaming: being generated; done: finished normally; stopped: the user stopped it (partial text
 * kept); truncated: cut at the token limit or the context's end; failed: see `error`.
 */
export type AnswerState = "streaming" | "done" | "stopped" | "truncated" | "failed";

export interface AssistantMessage {
    id: string;
    role: "assistant";
    text: string;
    state: AnswerState;
    /** How many earlier messages the model did not see because they did not fit the context. */
    droppedMessages?: number;
    /** `code` is the extension's error code, e.g. "noModel", "outOfMemory", "crashed". */
    error?: { code: string; message: string };
}

export type Message = UserMessage | AssistantMessage;

export interface Conversation {
    id: string;
    /** From the first user message. */
    title: string;
    /** Milliseconds since the epoch. */
    createdAt: number;
    updatedAt: number;
    messages: Message[];
}

export interface ConversationSummary {
    id: string;
    title: string;
    updatedAt: number;
    messageCount: number;
}

export type ModelStatus =
    /** Nothing loaded yet: the model loads on the first message. */
    | { kind: "idle" }
    | { kind: "noModel" }
    /** `progress` is 0..1, absent while the model process starts. */
    | { kind: "loading"; progress?: number }
    /** The first-use flow checking or downloading a model file, in words. */
    | { kind: "settingUp"; activity: string }
    | { kind: "ready"; name: string; contextSize: number }
    /** `code`: the extension's error code, when the failure has one (it picks the banner's actions). */
    | { kind: "error"; message: string; code?: string };

/** What the context chip would attach to the next message, and whether it is switched on. */
export interface EditorContext {
    enabled: boolean;
    available?: {
        fileName: string;
        path: string;
        startLine: number;
        endLine: number;
        wholeFile: boolean;
    };
    /** Why nothing can be attached, when an editor is open but its file is too large with no selection. */
    unavailableReason?: string;
}

export interface TokenMeter {
    tokens: number;
    /** The context the sidecar actually allocated. */
    contextSize: number;
}

/** A system prompt set by the workspace's settings and in effect: shown, so it is never silent. */
export interface WorkspaceSystemPrompt {
    text: string;
}

export interface ChatSnapshot {
    conversation: Conversation;
    /** Past conversations, newest first. */
    history: ConversationSummary[];
    model: ModelStatus;
    context: EditorContext;
    tokens?: TokenMeter;
    systemPrompt?: WorkspaceSystemPrompt;
}

/** Extension -> webview. */
export type HostToWebview =
    | { type: "snapshot"; snapshot: ChatSnapshot }
    /** Text appended to a streaming answer (coalesced by the extension). */
    | { type: "delta"; messageId: string; text: string }
    | { type: "model"; model: ModelStatus }
    | { type: "context"; context: EditorContext }
    | { type: "tokens"; tokens?: TokenMeter }
    | { type: "systemPrompt"; systemPrompt?: WorkspaceSystemPrompt }
    | { type: "showHistory" }
    | { type: "focusInput" };

/** Webview -> extension. */
export type WebviewToHost =
    /** The script has loaded: answered with a snapshot. */
    | { type: "ready" }
    | { type: "send"; text: string }
    | { type: "stop" }
    | { type: "retry"; messageId: string }
    | { type: "newChat" }
    | { type: "openChat"; id: string }
    | { type: "deleteChat"; id: string }
    | { type: "setContextEnabled"; enabled: boolean }
    | { type: "copyCode"; code: string }
    | { type: "insertCode"; code: string }
    | { type: "applyCode"; code: string }
    /** Only http(s) links are opened; the extension checks the scheme again. */
    | { type: "openLink"; href: string }
    | { type: "openModelSettings" }
    /** Opens the workspace settings at olmo.systemPrompt. */
    | { type: "openSystemPromptSetting" }
    /** Runs the first-use flow: download a model or choose a file. */
    | { type: "setUpModel" }
    | { type: "restartModel" }
    | { type: "showLog" }
    /** A team server refused the key: OLMo: Set Team Server API Key. */
    | { type: "setServerApiKey" }
    /** A team server or its model cannot be found: the settings at olmo.server. */
    | { type: "openServerSettings" };

/** The fields of each webview message, so the extension can check what arrives before acting on it. */
const webviewMessageFields: { [T in WebviewToHost["type"]]: Record<string, "string" | "boolean"> } =
    {
        ready: {},
        send: { text: "string" },
        stop: {},
        retry: { messageId: "string" },
        newChat: {},
        openChat: { id: "string" },
        deleteChat: { id: "string" },
        setContextEnabled: { enabled: "boolean" },
        copyCode: { code: "string" },
        insertCode: { code: "string" },
        applyCode: { code: "string" },
        openLink: { href: "string" },
        openModelSettings: {},
        openSystemPromptSetting: {},
        setUpModel: {},
        restartModel: {},
        showLog: {},
        setServerApiKey: {},
        openServerSettings: {},
    };

/**
 * What the user can do about a team server's failure, by its error code (the sidecar's, or the
 * extension's `invalidServerUrl`): a new API key after a 401, the settings when the server or its
 * model cannot be found. The chat view and the notifications offer the same.
 */
export type ServerErrorAction = "setServerApiKey" | "openServerSettings";

export function serverErrorAction(code: string | undefined): ServerErrorAction | undefined {
    if (code === "serverUnauthorized") return "setServerApiKey";
    if (
        code === "serverUnreachable" ||
        code === "serverModelNotFound" ||
        code === "invalidServerUrl"
    )
        return "openServerSettings";
    return undefined;
}

/** The button that offers each action. */
export const SERVER_ACTION_LABELS: Record<ServerErrorAction, string> = {
    setServerApiKey: "Set API Key",
    openServerSettings: "Open Settings",
};

/** True when `value` is a well-formed webview message (the webview renders untrusted model text). */
export function isWebviewToHost(value: unknown): value is WebviewToHost {
    if (typeof value !== "object" || value === null) return false;
    const message = value as Record<string, unknown>;
    if (typeof message.type !== "string" || !Object.hasOwn(webviewMessageFields, message.type))
        return false;
    const fields = webviewMessageFields[message.type as WebviewToHost["type"]];
    return Object.entries(fields).every(([name, kind]) => typeof message[name] === kind);
}

/** Only these link schemes are opened; everything else (command:, javascript:, file:, data:) does nothing. */
export function isOpenableLink(href: string): boolean {
    return /^https?:\/\/[^\s]/i.test(href.trim());
}
