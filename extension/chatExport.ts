// A chat as a Markdown document, for "Export Chat": the title, then each turn under its author,
// with attached code fenced as the model saw it. Only the answer versions on screen are written.
// No `vscode` import: unit-tested in plain Node.
import type { Conversation, Message } from "../media/protocol.js";
import { fenced } from "../sidecar/prompts.js";

export function conversationToMarkdown(conversation: Conversation): string {
    const parts = [`# ${conversation.title}`];
    for (const message of conversation.messages) parts.push(messageToMarkdown(message));
    return `${parts.join("\n\n")}\n`;
}

function messageToMarkdown(message: Message): string {
    if (message.role === "user") {
        const context = message.context;
        const attached = context
            ? `From \`${context.path}\`${context.wholeFile ? "" : ` (lines ${context.startLine}-${context.endLine})`}:\n\n${fenced(context.text, context.language)}\n\n`
            : "";
        return `## You\n\n${attached}${message.text}`;
    }
    const note =
        message.state === "stopped"
            ? "\n\n*(stopped)*"
            : message.state === "truncated"
              ? "\n\n*(cut at the length limit)*"
              : message.state === "failed"
                ? `\n\n*(failed: ${message.error?.message ?? "unknown error"})*`
                : "";
    return `## OLMo\n\n${message.text}${note}`;
}

/** A file name for the exported chat: the title without characters file systems refuse. */
export function exportFileName(conversation: Conversation): string {
    const base = conversation.title
        .replace(/[\\/:*?"<>|\u0000-\u001f]+/g, " ")
        .replace(/\s+/g, " ")
        .slice(0, 60)
        // No hidden files, and no names of dots alone.
        .replace(/^[.\s]+|[.\s]+$/g, "");
    return `${base || "chat"}.md`;
}
