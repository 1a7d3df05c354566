// The conversation edits behind the chat's tools, as pure functions on the stored shape: editing a
// user message (the turns after it are dropped and remembered as removed, so that a merge with
// another window's older copy cannot bring them back), answer versions (Regenerate keeps the old
// ones aside; the version on screen is the one the conversation continues from), and the history
// search. No `vscode` import: unit-tested in plain Node.
import type {
    AnswerVersion,
    AssistantMessage,
    Conversation,
    UserMessage,
} from "../media/protocol.js";

/**
 * Replaces the text of user message `messageId` and drops every message after it. The edited
 * message gets a new id (`newId`): the old one is removed with the rest, so a window that still has
 * the old text cannot win a merge with it. Returns the edited message, or undefined when the
 * conversation has no such user message.
 */
export function editUserMessage(
    conversation: Conversation,
    messageId: string,
    text: string,
    newId: string,
): UserMessage | undefined {
    const index = conversation.messages.findIndex((m) => m.id === messageId && m.role === "user");
    if (index < 0) return undefined;
    const original = conversation.messages[index] as UserMessage;
    const removed = conversation.messages.slice(index).map((m) => m.id);
    // The prompt an explain request built is for the old text; the edited text is sent as it is.
    const { prompt: _prompt, ...kept } = original;
    const edited: UserMessage = { ...kept, id: newId, text };
    conversation.messages = [...conversation.messages.slice(0, index), edited];
    conversation.removedMessageIds = [...(conversation.removedMessageIds ?? []), ...removed];
    return edited;
}

/** The version fields of an answer, as stored in `otherVersions`. */
function versionOf(message: AssistantMessage): AnswerVersion {
    const { text, state, droppedMessages, error, usage, greedy } = message;
    return {
        text,
        state,
        ...(droppedMessages !== undefined && { droppedMessages }),
        ...(error && { error }),
        ...(usage && { usage }),
        ...(greedy !== undefined && { greedy }),
    };
}

function setVersion(message: AssistantMessage, version: AnswerVersion): void {
    delete message.droppedMessages;
    delete message.error;
    delete message.usage;
    delete message.greedy;
    Object.assign(message, version);
}

/** Every version of an answer in the order generated, the one on screen among them. */
export function allVersions(message: AssistantMessage): AnswerVersion[] {
    const others = message.otherVersions ?? [];
    const at = Math.min(message.versionIndex ?? 0, others.length);
    return [...others.slice(0, at), versionOf(message), ...others.slice(at)];
}

/**
 * Starts a new version of the answer: the one on screen joins the others, and the answer shows an
 * empty streaming version, the last of all.
 */
export function startNewVersion(message: AssistantMessage): void {
    const versions = allVersions(message);
    message.otherVersions = versions;
    message.versionIndex = versions.length;
    setVersion(message, { text: "", state: "streaming" });
}

/** Shows version `index` (0-based, of `allVersions`); false when there is no such version. */
export function showVersion(message: AssistantMessage, index: number): boolean {
    const versions = allVersions(message);
    if (!Number.isInteger(index) || index < 0 || index >= versions.length) return false;
    setVersion(message, versions[index]);
    message.otherVersions = versions.filter((_, i) => i !== index);
    message.versionIndex = index;
    return true;
}

/** True when the conversation's title or any message's text contains every word of `query` (any case). */
export function conversationMatches(conversation: Conversation, query: string): boolean {
    const words = query.toLocaleLowerCase().split(/\s+/).filter(Boolean);
    if (words.length === 0) return true;
    const haystack = [
        conversation.title,
        ...conversation.messages.flatMap((m) =>
            m.role === "assistant" ? allVersions(m).map((v) => v.text) : [m.text],
        ),
    ]
        .join("\n")
        .toLocaleLowerCase();
    return words.every((word) => haystack.includes(word));
}
