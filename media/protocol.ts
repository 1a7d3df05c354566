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

/** Where an @-attachment comes from: a file (from the workspace, an editor or a drop), the selection, or a file's problems. */
export type AttachmentKind = "file" | "selection" | "problems";

/** Text attached to a user message with @ or a drop. `text` is exactly what the prompt gets. */
export interface Attachment {
    id: string;
    kind: AttachmentKind;
    /** The chip's name, e.g. "chatView.ts" or "Problems in chatView.ts". */
    label: string;
    /** Workspace-relative path of the file it comes from. */
    path?: string;
    text: string;
    /** `text`'s tokens, counted with the model's tokenizer. */
    tokens: number;
}

/** One entry of the @ list; `id` is the extension's key for it. */
export interface AttachSuggestion {
    id: string;
    kind: AttachmentKind;
    label: string;
    /** The path, or what the entry holds ("lines 3-9 of a.ts", "2 errors"). */
    detail: string;
}

export interface UserMessage {
    id: string;
    role: "user";
    text: string;
    context?: ContextSnippet;
    /** As sent: later turns, a reload and Retry give the model the same text. */
    attachments?: Attachment[];
    /** What the model was sent for this message, when the sidecar built it (an explain request). */
    prompt?: string;
}

/**
 * streaming: being generated; done: finished normally; stopped: the user stopped it (partial text
 * kept); truncated: cut at the token limit or the context's end; failed: see `error`.
 */
export type AnswerState = "streaming" | "done" | "stopped" | "truncated" | "failed";

/** What the model did for an answer: prompt tokens, of those taken from the KV cache, and generated. */
export interface AnswerUsage {
    promptTokens: number;
    reusedTokens: number;
    completionTokens: number;
}

/** One generated version of an answer (Regenerate makes another). */
export interface AnswerVersion {
    text: string;
    state: AnswerState;
    /** How many earlier messages the model did not see because they did not fit the context. */
    droppedMessages?: number;
    /** `code` is the extension's error code, e.g. "noModel", "outOfMemory", "crashed". */
    error?: { code: string; message: string };
    usage?: AnswerUsage;
    /** Generated with temperature 0: every regeneration gives the same text. */
    greedy?: boolean;
}

/**
 * An answer: its fields are the version on screen, which is the one the conversation continues
 * from. Other versions (from Regenerate) are kept aside; files from before versions have none.
 */
export interface AssistantMessage extends AnswerVersion {
    id: string;
    role: "assistant";
    /** The versions not on screen, in the order they were generated. */
    otherVersions?: AnswerVersion[];
    /** Where the version on screen stands among all versions (0-based); absent: 0. */
    versionIndex?: number;
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
    /** When the title was last set by a rename; the newer title wins when windows merge. */
    titleSetAt?: number;
    /**
     * Ids of messages an edit dropped: a merge with another window's older copy must not bring
     * them back. Files from before edits have none.
     */
    removedMessageIds?: string[];
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
    /** The tokens of the attachments waiting to be sent, counted in before sending. */
    attachments?: number;
    /** The most prompt tokens the context takes (the rest is kept for the answer). */
    promptRoom?: number;
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
    /** Attached to the next message (the composer's chips). */
    attachments?: Attachment[];
    /** Messages typed while an answer streams, sent in order when it ends. */
    queued: QueuedMessage[];
    /** The history's filter (title and text), as the extension applied it to `history`. */
    historyQuery: string;
}

export interface QueuedMessage {
    id: string;
    text: string;
    /** The composer's chips when it was queued: they go with this message, not the next one typed. */
    attachments?: Attachment[];
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
    | { type: "focusInput" }
    /** The @ list for what was typed after the @. */
    | { type: "attachSuggestions"; query: string; suggestions: AttachSuggestion[] }
    /** The next message's attachments; `notice` says why one was refused. */
    | { type: "attachments"; attachments: Attachment[]; notice?: string };

/** Webview -> extension. */
export type WebviewToHost =
    /** The script has loaded: answered with a snapshot. */
    | { type: "ready" }
    /** Sent now, or queued while an answer streams. */
    | { type: "send"; text: string }
    | { type: "unqueue"; id: string }
    | { type: "stop" }
    | { type: "retry"; messageId: string }
    /** Replaces a user message's text and drops the turns after it, then answers again. */
    | { type: "editMessage"; messageId: string; text: string }
    /** Another version of the last answer. */
    | { type: "regenerate"; messageId: string }
    | { type: "showVersion"; messageId: string; index: number }
    /** The answer's whole text, as Markdown, to the clipboard. */
    | { type: "copyAnswer"; messageId: string }
    /** Opens the exact prompt the model saw for this answer in a read-only editor. */
    | { type: "showPrompt"; messageId: string }
    | { type: "renameChat"; id: string }
    | { type: "exportChat"; id: string }
    | { type: "searchHistory"; query: string }
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
    /** Typed after an @ in the composer. */
    | { type: "attachQuery"; query: string }
    /** An entry of the @ list was chosen. */
    | { type: "attach"; suggestionId: string }
    /** Files dropped on the composer, as the drop's text/uri-list. */
    | { type: "attachUris"; uriList: string }
    | { type: "removeAttachment"; id: string }
    /** A team server refused the key: OLMo: Set Team Server API Key. */
    | { type: "setServerApiKey" }
    /** A team server or its model cannot be found: the settings at olmo.server. */
    | { type: "openServerSettings" };

/** The fields of each webview message, so the extension can check what arrives before acting on it. */
const webviewMessageFields: {
    [T in WebviewToHost["type"]]: Record<string, "string" | "boolean" | "number">;
} = {
    ready: {},
    send: { text: "string" },
    unqueue: { id: "string" },
    stop: {},
    retry: { messageId: "string" },
    editMessage: { messageId: "string", text: "string" },
    regenerate: { messageId: "string" },
    showVersion: { messageId: "string", index: "number" },
    copyAnswer: { messageId: "string" },
    showPrompt: { messageId: "string" },
    renameChat: { id: "string" },
    exportChat: { id: "string" },
    searchHistory: { query: "string" },
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
    attachQuery: { query: "string" },
    attach: { suggestionId: "string" },
    attachUris: { uriList: "string" },
    removeAttachment: { id: "string" },
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
