// A chat turn against the real conversation store on disk, with the model replaced by a function
// the test drives (the turn's own logic: streaming to the view, Stop, saving, failed saves).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { ChatTurn, type Ask, type TurnView } from "../../extension/chatTurn.js";
import { ConversationStore, newConversation } from "../../extension/conversationStore.js";
import type { AssistantMessage, Conversation, Message } from "../../media/protocol.js";
import type { ChatResult, StopReason } from "../../sidecar/protocol.js";

function resultOf(text: string, stopReason: StopReason): ChatResult {
    return {
        text,
        stopReason,
        usage: { promptTokens: 10, completionTokens: 3, reusedTokens: 0 },
        timings: { timeToFirstTokenMs: 1, tokensPerSecond: 10, totalMs: 5 },
    } as ChatResult;
}

/** A model the test drives: it streams what the test pushes and ends when told, or on abort as the sidecar does. */
function drivenModel() {
    let onDelta: ((text: string) => void) | undefined;
    let finish: ((result: ChatResult) => void) | undefined;
    let signal: AbortSignal | undefined;
    let streamed = "";
    let started!: () => void;
    const startedPromise = new Promise<void>((resolve) => (started = resolve));
    const ask: Ask = (delta, abortSignal) =>
        new Promise<ChatResult>((resolve) => {
            onDelta = delta;
            signal = abortSignal;
            finish = resolve;
            abortSignal.addEventListener("abort", () => resolve(resultOf(streamed, "cancelled")));
            started();
        });
    return {
        ask,
        started: startedPromise,
        push(text: string) {
            streamed += text;
            onDelta!(text);
        },
        end() {
            finish!(resultOf(streamed, "eos"));
        },
        get aborted() {
            return signal?.aborted ?? false;
        },
    };
}

/** The view side: records what was posted and said. */
function recordingView(store: ConversationStore, conversation: () => Conversation) {
    const record = {
        deltas: [] as string[],
        snapshots: [] as Conversation[],
        warnings: [] as string[],
        errors: [] as string[],
        turn: undefined as ChatTurn | undefined,
        saves: [] as Array<Promise<unknown>>,
    };
    const view: TurnView = {
        store: {
            save: (c) => {
                const saved = store.save(c);
                record.saves.push(saved.catch(() => undefined));
                return saved;
            },
        },
        postDelta: (_id, text) => record.deltas.push(text),
        postSnapshot: () => {
            record.snapshots.push(structuredClone(conversation()));
            record.turn?.snapshotPosted();
            return Promise.resolve();
        },
        warn: (message) => record.warnings.push(message),
        log: (level, message) => {
            if (level === "error") record.errors.push(message);
        },
    };
    return { record, view };
}

function ask(conversation: Conversation, text: string): AssistantMessage {
    const answer: AssistantMessage = {
        id: `a-${text}`,
        role: "assistant",
        text: "",
        state: "streaming",
    };
    conversation.messages.push({ id: `u-${text}`, role: "user", text }, answer);
    return answer;
}

async function withStoreFolder(body: (folder: string) => Promise<void>): Promise<void> {
    const root = await mkdtemp(path.join(tmpdir(), "olmo-turn-"));
    try {
        await body(path.join(root, "conversations"));
    } finally {
        await rm(root, { recursive: true, force: true });
    }
}

/**
 * Makes every write into the store fail, even for root (who ignores permission bits): the folder
 * is moved aside and a file takes its place. `makeWritable` puts it back as it was.
 */
async function makeUnwritable(folder: string): Promise<void> {
    await rename(folder, `${folder}.aside`).catch(() => mkdir(`${folder}.aside`));
    await writeFile(folder, "not a folder");
}

async function makeWritable(folder: string): Promise<void> {
    await rm(folder);
    await rename(`${folder}.aside`, folder);
}

function stateOf(message: Message | undefined): string | undefined {
    return message?.role === "assistant" ? message.state : undefined;
}

async function storedTexts(folder: string, id: string): Promise<string[]> {
    const stored = JSON.parse(
        await readFile(path.join(folder, `${id}.json`), "utf8"),
    ) as Conversation;
    return stored.messages.map((m) => m.text);
}

describe("unit: chat turn", () => {
    test("a store made unwritable mid-answer: reported once in plain words, the answer finishes, the next save writes everything", async () => {
        await withStoreFolder(async (folder) => {
            const store = new ConversationStore(folder);
            const conversation = newConversation();
            const { record, view } = recordingView(store, () => conversation);
            const model = drivenModel();
            const answer = ask(conversation, "first");
            const turn = new ChatTurn(conversation, answer, model.ask, view);
            record.turn = turn;
            await model.started;
            // The question is saved while the model starts; once it is, the folder goes away.
            await record.saves[0];
            assert.deepEqual(await storedTexts(folder, conversation.id), ["first", ""]);
            model.push("Hello");
            await makeUnwritable(folder);
            model.push(" world");
            model.end();
            await turn.done;

            assert.equal(answer.state, "done", "the answer is not failed by the save");
            assert.equal(answer.text, "Hello world");
            assert.equal(
                stateOf(record.snapshots.at(-1)?.messages.at(-1)),
                "done",
                "the view got the final state",
            );
            assert.equal(record.warnings.length, 1, record.warnings.join("\n"));
            assert.match(
                record.warnings[0],
                /^The chat ".*" could not be saved \(.*(EEXIST|ENOTDIR).*\)\. The answer is still on screen .*saved again with your next message\. Free some disk space or check that the folder can be written to\.$/,
            );
            assert.equal(record.errors.length, 1);

            await makeWritable(folder);
            const second = drivenModel();
            const next = new ChatTurn(conversation, ask(conversation, "second"), second.ask, view);
            record.turn = next;
            await second.started;
            second.push("Again");
            second.end();
            await next.done;
            assert.deepEqual(await storedTexts(folder, conversation.id), [
                "first",
                "Hello world",
                "second",
                "Again",
            ]);
            assert.equal(record.warnings.length, 1, "a save that works says nothing");
        });
    });

    test("Stop stops the model even when saving the question failed, and the view gets the stopped state", async () => {
        await withStoreFolder(async (folder) => {
            await makeUnwritable(folder);
            const store = new ConversationStore(folder);
            const conversation = newConversation();
            const { record, view } = recordingView(store, () => conversation);
            const model = drivenModel();
            const answer = ask(conversation, "question");
            const turn = new ChatTurn(conversation, answer, model.ask, view);
            record.turn = turn;
            await model.started;
            model.push("partial");
            turn.stop();
            await turn.done;
            assert.equal(model.aborted, true, "the model was told to stop");
            assert.equal(answer.state, "stopped");
            assert.equal(answer.text, "partial");
            assert.equal(stateOf(record.snapshots.at(-1)?.messages.at(-1)), "stopped");
            assert.equal(record.warnings.length, 1, "two failed saves, one message");
        });
    });

    test("a snapshot during streaming carries the text so far: later deltas carry only what follows", async () => {
        await withStoreFolder(async (folder) => {
            const conversation = newConversation();
            const { record, view } = recordingView(
                new ConversationStore(folder),
                () => conversation,
            );
            const model = drivenModel();
            const turn = new ChatTurn(conversation, ask(conversation, "q"), model.ask, view);
            record.turn = turn;
            await model.started;
            model.push("abc"); // the first delta goes out at once
            model.push("def"); // waits for the interval
            await view.postSnapshot(); // e.g. another chat was deleted: the view gets "abcdef" whole
            model.push("g");
            model.end();
            await turn.done;
            assert.deepEqual(record.deltas, ["abc", "g"]);
            const shown =
                record.snapshots.at(-2)!.messages.at(-1)!.text + record.deltas.slice(1).join("");
            assert.equal(shown, "abcdefg");
        });
    });
});
