// The chat tools' pure logic: editing a message (and what a merge with another window does with the
// dropped turns), answer versions, the history search, export to Markdown and the send queue.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import {
    allVersions,
    conversationMatches,
    editUserMessage,
    showVersion,
    startNewVersion,
} from "../../extension/chatEdits.js";
import { conversationToMarkdown, exportFileName } from "../../extension/chatExport.js";
import {
    ConversationStore,
    mergeConversations,
    toModelMessages,
} from "../../extension/conversationStore.js";
import { MessageQueue } from "../../extension/messageQueue.js";
import type { AssistantMessage, Conversation, Message } from "../../media/protocol.js";

function turn(n: number): Message[] {
    return [
        { id: `u${n}`, role: "user", text: `question ${n}` },
        { id: `a${n}`, role: "assistant", text: `answer ${n}`, state: "done" },
    ];
}

function chat(...turns: number[]): Conversation {
    return {
        id: "c1",
        title: "question 1",
        createdAt: 1,
        updatedAt: 1,
        messages: turns.flatMap(turn),
    };
}

const texts = (c: Conversation) => c.messages.map((m) => m.text);

describe("unit: chat tools", () => {
    test("an edit replaces the message under a new id and drops the turns after it", () => {
        const c = chat(1, 2, 3);
        const edited = editUserMessage(c, "u2", "question 2, edited", "u2e");
        assert.deepEqual(edited, { id: "u2e", role: "user", text: "question 2, edited" });
        assert.deepEqual(texts(c), ["question 1", "answer 1", "question 2, edited"]);
        assert.deepEqual(c.removedMessageIds, ["u2", "a2", "u3", "a3"]);
        assert.equal(editUserMessage(c, "a1", "x", "n"), undefined, "answers are not edited");
        assert.equal(editUserMessage(c, "gone", "x", "n"), undefined);
    });

    test("an edit keeps the attached code but not the prompt an explain request built", () => {
        const c: Conversation = {
            ...chat(),
            messages: [
                {
                    id: "u1",
                    role: "user",
                    text: "Explain",
                    prompt: "the built prompt",
                    context: {
                        fileName: "a.ts",
                        path: "src/a.ts",
                        language: "typescript",
                        startLine: 1,
                        endLine: 2,
                        wholeFile: false,
                        text: "let a;",
                    },
                },
            ],
        };
        const edited = editUserMessage(c, "u1", "Explain briefly", "n1")!;
        assert.equal(edited.prompt, undefined);
        assert.equal(edited.context?.path, "src/a.ts");
        assert.match(
            toModelMessages(c.messages, "")[0].content,
            /src\/a\.ts[\s\S]*Explain briefly$/,
        );
    });

    test("a merge with the other window's older copy does not bring dropped turns back", () => {
        const onDisk = chat(1, 2); // what the other window saved before the edit
        const ours = chat(1, 2);
        editUserMessage(ours, "u1", "question 1, edited", "u1e");
        ours.messages.push({ id: "a1e", role: "assistant", text: "new answer", state: "done" });
        const merged = mergeConversations(onDisk, ours);
        assert.deepEqual(texts(merged), ["question 1, edited", "new answer"]);

        // The other window, merging what is on disk now into its stale copy, drops them too and
        // keeps the removal for its own later saves.
        const theirs = chat(1, 2);
        const theirsMerged = mergeConversations(merged, theirs);
        assert.deepEqual(texts(theirsMerged), ["question 1, edited", "new answer"]);
        assert.deepEqual(theirsMerged.removedMessageIds, ["u1", "a1", "u2", "a2"]);
        // A turn the other window added after the dropped ones is its own and is kept.
        theirs.messages.push(...turn(5));
        assert.deepEqual(texts(mergeConversations(merged, theirs)), [
            "question 1, edited",
            "new answer",
            "question 5",
            "answer 5",
        ]);
    });

    test("through the store: an edit in window A survives window B saving its stale copy", async () => {
        const folder = await mkdtemp(path.join(tmpdir(), "olmo-tools-"));
        try {
            const a = new ConversationStore(folder);
            const b = new ConversationStore(folder);
            const inA = chat(1, 2);
            await a.save(inA);
            const inB = (await b.get(inA.id))!;
            editUserMessage(inA, "u2", "question 2, edited", "u2e");
            inA.messages.push({ id: "a2e", role: "assistant", text: "answer 2e", state: "done" });
            await a.save(inA);
            // B retries its stale answer 1 and saves: the edit stays.
            inB.messages[1] = { ...inB.messages[1], text: "answer 1, retried" };
            const result = await b.save(inB);
            assert.ok("saved" in result);
            const expected = ["question 1", "answer 1, retried", "question 2, edited", "answer 2e"];
            assert.deepEqual(texts(result.saved), expected);
            assert.deepEqual(texts((await new ConversationStore(folder).get(inA.id))!), expected);
        } finally {
            await rm(folder, { recursive: true, force: true });
        }
    });

    test("a rename wins over the other window's older title; without renames the disk's title stays", () => {
        const onDisk = chat(1);
        const ours = { ...chat(1), title: "Renamed", titleSetAt: 5 };
        assert.equal(mergeConversations(onDisk, ours).title, "Renamed");
        assert.equal(mergeConversations(ours, chat(1)).title, "Renamed", "also from the disk");
        const later = { ...chat(1), title: "Renamed again", titleSetAt: 9 };
        assert.equal(mergeConversations(later, ours).title, "Renamed again");
        assert.equal(
            mergeConversations(onDisk, { ...chat(1), title: "other" }).title,
            "question 1",
        );
    });

    test("Regenerate keeps the earlier versions; the one on screen is what the model sees next", () => {
        const c = chat(1, 2);
        const answer = c.messages[3] as AssistantMessage;
        answer.usage = { promptTokens: 30, reusedTokens: 20, completionTokens: 4 };
        startNewVersion(answer);
        assert.equal(answer.text, "");
        assert.equal(answer.state, "streaming");
        assert.equal(answer.usage, undefined, "the new version's usage is its own");
        assert.equal(answer.versionIndex, 1);
        answer.text = "answer 2, again";
        answer.state = "done";
        assert.deepEqual(
            allVersions(answer).map((v) => v.text),
            ["answer 2", "answer 2, again"],
        );
        assert.equal(showVersion(answer, 0), true);
        assert.equal(answer.text, "answer 2");
        assert.deepEqual(answer.usage, { promptTokens: 30, reusedTokens: 20, completionTokens: 4 });
        c.messages.push(...turn(3));
        assert.deepEqual(
            toModelMessages(c.messages, "").map((m) => m.content),
            ["question 1", "answer 1", "question 2", "answer 2", "question 3", "answer 3"],
        );
        assert.equal(showVersion(answer, 2), false);
        assert.equal(showVersion(answer, -1), false);
        assert.equal(showVersion(answer, 0.5), false);
        assert.equal(showVersion(answer, 1), true);
        assert.equal(answer.text, "answer 2, again");
        startNewVersion(answer);
        assert.equal(answer.versionIndex, 2, "a new version goes last");
        assert.equal(allVersions(answer).length, 3);
    });

    test("a stored chat from before versions, edits and renames still loads and merges", async () => {
        const folder = await mkdtemp(path.join(tmpdir(), "olmo-tools-"));
        try {
            const old = { ...chat(1), revision: 3, writer: "w" };
            await writeFile(path.join(folder, "c1.json"), JSON.stringify(old));
            const store = new ConversationStore(folder);
            const loaded = (await store.get("c1"))!;
            assert.deepEqual(texts(loaded), ["question 1", "answer 1"]);
            const answer = loaded.messages[1] as AssistantMessage;
            assert.deepEqual(allVersions(answer), [{ text: "answer 1", state: "done" }]);
            startNewVersion(answer);
            answer.text = "answer 1, again";
            answer.state = "done";
            await store.save(loaded);
            const reread = (await new ConversationStore(folder).get("c1"))!;
            assert.deepEqual(
                allVersions(reread.messages[1] as AssistantMessage).map((v) => v.text),
                ["answer 1", "answer 1, again"],
            );
        } finally {
            await rm(folder, { recursive: true, force: true });
        }
    });

    test("the history search matches every word in the title or any message, any case", async () => {
        const c = chat(1, 2);
        (c.messages[3] as AssistantMessage).otherVersions = [
            { text: "hidden Version", state: "done" },
        ];
        assert.equal(conversationMatches(c, ""), true);
        assert.equal(conversationMatches(c, "QUESTION 1"), true);
        assert.equal(conversationMatches(c, "answer question"), true);
        assert.equal(conversationMatches(c, "version hidden"), true, "earlier versions count");
        assert.equal(conversationMatches(c, "question missing"), false);
        const folder = await mkdtemp(path.join(tmpdir(), "olmo-tools-"));
        try {
            const store = new ConversationStore(folder);
            await store.save(c);
            await store.save({ ...chat(7), id: "c7", title: "Sorting lists" });
            assert.deepEqual(
                (await store.list("sorting")).map((s) => s.id),
                ["c7"],
            );
            assert.deepEqual(
                (await store.list("answer 2")).map((s) => s.id),
                ["c1"],
            );
            assert.equal((await store.list()).length, 2);
        } finally {
            await rm(folder, { recursive: true, force: true });
        }
    });

    test("export writes the title and each turn as Markdown, with attached code and answer notes", () => {
        const c: Conversation = {
            ...chat(),
            title: "Sorting: a/b?",
            messages: [
                {
                    id: "u1",
                    role: "user",
                    text: "Why?",
                    context: {
                        fileName: "a.py",
                        path: "src/a.py",
                        language: "python",
                        startLine: 3,
                        endLine: 4,
                        wholeFile: false,
                        text: "sorted(x)\n",
                    },
                },
                { id: "a1", role: "assistant", text: "Because **x**.", state: "stopped" },
            ],
        };
        assert.equal(
            conversationToMarkdown(c),
            "# Sorting: a/b?\n\n## You\n\nFrom `src/a.py` (lines 3-4):\n\n```python\nsorted(x)\n```\n\nWhy?\n\n" +
                "## OLMo\n\nBecause **x**.\n\n*(stopped)*\n",
        );
        assert.equal(exportFileName(c), "Sorting a b.md");
        assert.equal(exportFileName({ ...c, title: "../.." }), "chat.md");
    });

    test("the queue gives each conversation's messages in order; removed ones are not sent", () => {
        const queue = new MessageQueue();
        queue.add("c1", { id: "q1", text: "one" });
        queue.add("c2", { id: "q2", text: "elsewhere" });
        queue.add("c1", { id: "q3", text: "two" });
        queue.add("c1", { id: "q4", text: "three" });
        assert.deepEqual(
            queue.of("c1").map((m) => m.text),
            ["one", "two", "three"],
        );
        assert.equal(queue.remove("q3"), true);
        assert.equal(queue.remove("q3"), false);
        assert.equal(queue.next("c1")?.text, "one");
        assert.equal(queue.next("c1")?.text, "three");
        assert.equal(queue.next("c1"), undefined);
        assert.deepEqual(
            queue.of("c2").map((m) => m.text),
            ["elsewhere"],
        );
    });
});
