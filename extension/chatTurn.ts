// One chat turn: an answer generated into a conversation, streamed to the view and stored. The
// question is saved while the model starts on it (the write is not on the way to the first token),
// the answer when it ends. A save that fails is reported and costs nothing else: the answer goes
// on, Stop still stops the model, the view always gets the final state, and the next save writes
// the whole conversation. No `vscode` import: the model and the view come in as functions.
import type { AssistantMessage, Conversation } from "../media/protocol.js";
import { DeltaBatcher } from "../sidecar/deltaBatcher.js";
import type { ChatResult, StopReason } from "../sidecar/protocol.js";
import { takeInSaved, type ConversationStore } from "./conversationStore.js";

/** Deltas go to the view at most this often; it draws once per animation frame anyway. */
const DELTA_INTERVAL_MS = 25;

/** Generates an answer: text deltas go to `onDelta`; aborting returns the partial answer. */
export type Ask = (onDelta: (text: string) => void, signal: AbortSignal) => Promise<ChatResult>;

/** What a turn needs from the chat view. */
export interface TurnView {
    store: Pick<ConversationStore, "save">;
    /** Appends text to the answer on screen. */
    postDelta(messageId: string, text: string): void;
    /** Sends the whole state; the turn is told through `snapshotPosted` what the view now has. */
    postSnapshot(): Promise<void>;
    /** A sentence for the user about a chat that could not be stored. */
    warn(message: string): void;
    log(level: "info" | "error", message: string): void;
}

export class ChatTurn {
    /** Settles when the answer has ended, been stored (or the failure reported) and drawn. */
    readonly done: Promise<void>;
    private readonly abort = new AbortController();
    /** How much of the answer's text the view has (from a snapshot or deltas). */
    private shownLength = 0;
    private warned = false;

    constructor(
        readonly conversation: Conversation,
        readonly message: AssistantMessage,
        ask: Ask,
        private readonly view: TurnView,
    ) {
        this.done = this.run(ask);
    }

    /** Stops the model; the partial answer is kept. */
    stop(): void {
        this.abort.abort();
    }

    /** The view just got a snapshot with the answer as it is now: later deltas carry only what follows. */
    snapshotPosted(): void {
        this.shownLength = this.message.text.length;
    }

    private async run(ask: Ask): Promise<void> {
        const { conversation, message } = this;
        const batcher = new DeltaBatcher((delta) => this.sendDelta(delta.text), DELTA_INTERVAL_MS);
        try {
            conversation.updatedAt = Date.now();
            const questionSaved = this.save();
            await this.view.postSnapshot();
            try {
                const result = await ask((text) => {
                    message.text += text;
                    batcher.push({ text });
                }, this.abort.signal).finally(() => batcher.flush());
                message.text = result.text;
                message.state = answerStateOf(result.stopReason);
                if (result.dropped) message.droppedMessages = result.dropped.messageIndices.length;
                const { promptTokens, reusedTokens, completionTokens } = result.usage;
                message.usage = { promptTokens, reusedTokens, completionTokens };
                this.logResult(result);
            } catch (error) {
                if (isCancelled(error)) {
                    message.state = "stopped";
                } else {
                    message.state = "failed";
                    message.error = {
                        code: errorCodeOf(error),
                        message: error instanceof Error ? error.message : String(error),
                    };
                }
            }
            await questionSaved;
            conversation.updatedAt = Date.now();
            await this.save();
        } finally {
            await this.view.postSnapshot();
        }
    }

    /** Sends the part of `text` the view does not have yet (a snapshot may have carried some of it). */
    private sendDelta(text: string): void {
        const end = this.message.text.length;
        const unseen = text.slice(Math.max(0, this.shownLength - (end - text.length)));
        this.shownLength = end;
        if (unseen !== "") this.view.postDelta(this.message.id, unseen);
    }

    /** Stores the conversation; a failure is reported once per turn and never thrown. */
    private async save(): Promise<void> {
        const conversation = this.conversation;
        try {
            const result = await this.view.store.save(conversation);
            if ("deleted" in result) {
                this.warnOnce(
                    `The chat "${conversation.title}" was deleted in another window, so this answer is not saved. ` +
                        `It stays on screen until you switch chats; start a new chat to keep talking.`,
                );
                return;
            }
            // Turns another window added meanwhile join this conversation.
            takeInSaved(conversation, result.saved);
        } catch (error) {
            const reason = error instanceof Error ? error.message : String(error);
            this.view.log("error", `chat: saving the chat failed: ${reason}`);
            this.warnOnce(
                `The chat "${conversation.title}" could not be saved (${reason}). ` +
                    `The answer is still on screen and nothing is lost while this window stays open; ` +
                    `the whole chat is saved again with your next message. ` +
                    `Free some disk space or check that the folder can be written to.`,
            );
        }
    }

    private warnOnce(message: string): void {
        if (this.warned) return;
        this.warned = true;
        this.view.warn(message);
    }

    private logResult(result: ChatResult): void {
        const { usage, timings } = result;
        this.view.log(
            "info",
            `chat: answer ended (${result.stopReason}): ${usage.completionTokens} tokens, first token after ${Math.round(timings.timeToFirstTokenMs)} ms, ` +
                `${timings.tokensPerSecond.toFixed(1)} tok/s, ${usage.promptTokens} prompt tokens (${usage.reusedTokens} reused)`,
        );
    }
}

/** The model host's errors carry a code; "cancelled" is a Stop that came before any text. */
function errorCodeOf(error: unknown): string {
    const code = (error as { code?: unknown } | null)?.code;
    return typeof code === "string" ? code : "internal";
}

function isCancelled(error: unknown): boolean {
    return errorCodeOf(error) === "cancelled";
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
