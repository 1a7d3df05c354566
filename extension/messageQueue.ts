// Messages typed while an answer streams: kept per conversation, in order, until that conversation
// is free to take the next one. In memory only (a window reload drops them, like a composer's
// unsent text). No `vscode` import: unit-tested in plain Node.
import type { QueuedMessage } from "../media/protocol.js";

export class MessageQueue {
    private readonly byConversation = new Map<string, QueuedMessage[]>();

    add(conversationId: string, message: QueuedMessage): void {
        const queued = this.byConversation.get(conversationId) ?? [];
        queued.push(message);
        this.byConversation.set(conversationId, queued);
    }

    /** Removes a queued message (its × button); false when it was already sent or removed. */
    remove(id: string): boolean {
        for (const [conversationId, queued] of this.byConversation) {
            const index = queued.findIndex((m) => m.id === id);
            if (index < 0) continue;
            queued.splice(index, 1);
            if (queued.length === 0) this.byConversation.delete(conversationId);
            return true;
        }
        return false;
    }

    /** The conversation's queued messages, oldest first. */
    of(conversationId: string): QueuedMessage[] {
        return [...(this.byConversation.get(conversationId) ?? [])];
    }

    /** Takes the conversation's oldest queued message out, to be sent now. */
    next(conversationId: string): QueuedMessage | undefined {
        const queued = this.byConversation.get(conversationId);
        const first = queued?.shift();
        if (queued?.length === 0) this.byConversation.delete(conversationId);
        return first;
    }
}
