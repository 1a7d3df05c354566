import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import {
    ConversationStore,
    UNREADABLE_FOLDER,
    newConversation,
    titleFromText,
    toModelMessages,
    userContentForModel,
} from "../../extension/conversationStore.js";
import type { Conversation, Message, UserMessage } from "../../media/protocol.js";

async function withFolder(body: (folder: string) => Promise<void>): Promise<void> {
    const folder = await mkdtemp(path.join(tmpdir(), "olmo-store-"));
    try {
        await body(folder);
    } finally {
        await rm(folder, { recursive: true, force: true });
    }
}

function conversationWith(text: string, updatedAt: number): Conversation {
    const conversation = newConversation(updatedAt);
    conversation.title = titleFromText(text);
    conversation.messages.push(
        { id: `u-${updatedAt}`, role: "user", text },
        { id: `a-${updatedAt}`, role: "assistant", text: `About ${text}`, state: "done" },
    );
    return conversation;
}

describe("unit: conversation store", () => {
    test("saves, lists newest first, reads back after a restart, and deletes", async () => {
        await withFolder(async (folder) => {
            const store = new ConversationStore(folder);
            const older = conversationWith("first chat", 1000);
            const newer = conversationWith("second chat", 2000);
            await store.save(older);
            await store.save(newer);
            assert.deepEqual(
                (await store.list()).map((c) => [c.title, c.messageCount]),
                [
                    ["second chat", 2],
                    ["first chat", 2],
                ],
            );

            const reopened = new ConversationStore(folder);
            assert.deepEqual(
                await reopened.get(older.id),
                older,
                "a new store (a reloaded window) reads the files",
            );
            await reopened.delete(older.id);
            assert.deepEqual(
                (await reopened.list()).map((c) => c.id),
                [newer.id],
            );
            assert.deepEqual(
                await readdir(folder),
                [`${newer.id}.json`],
                "the file is gone and no temp files remain",
            );
        });
    });

    test("get returns a copy: changing it changes nothing stored until saved", async () => {
        await withFolder(async (folder) => {
            const store = new ConversationStore(folder);
            const conversation = conversationWith("hello", 1);
            await store.save(conversation);
            const copy = await store.get(conversation.id);
            copy!.messages.length = 0;
            conversation.title = "changed";
            assert.equal((await store.get(conversation.id))!.messages.length, 2);
            assert.equal((await store.get(conversation.id))!.title, "hello");
        });
    });

    test("concurrent saves of one conversation land in order, each file complete", async () => {
        await withFolder(async (folder) => {
            const store = new ConversationStore(folder);
            const conversation = conversationWith("counting", 1);
            const saves: Array<Promise<unknown>> = [];
            for (let i = 0; i < 20; i++) {
                conversation.messages.push({ id: `m${i}`, role: "user", text: `message ${i}` });
                saves.push(store.save(conversation));
            }
            await Promise.all(saves);
            const stored = JSON.parse(
                await readFile(path.join(folder, `${conversation.id}.json`), "utf8"),
            ) as Conversation;
            assert.equal(stored.messages.length, 22);
            assert.deepEqual(await readdir(folder), [`${conversation.id}.json`]);
        });
    });

    test("an answer that was streaming when the window closed comes back as stopped", async () => {
        await withFolder(async (folder) => {
            const conversation = conversationWith("interrupted", 1);
            conversation.messages.push({
                id: "live",
                role: "assistant",
                text: "partial",
                state: "streaming",
            });
            await new ConversationStore(folder).save(conversation);
            const restored = await new ConversationStore(folder).get(conversation.id);
            assert.deepEqual(restored!.messages.at(-1), {
                id: "live",
                role: "assistant",
                text: "partial",
                state: "stopped",
            });
        });
    });

    test("unreadable files are moved aside and reported once; the rest load", async () => {
        await withFolder(async (folder) => {
            await writeFile(path.join(folder, "broken.json"), "{ not json");
            await writeFile(
                path.join(folder, "wrong.json"),
                JSON.stringify({ id: "wrong", messages: "no" }),
            );
            await writeFile(path.join(folder, "notes.txt"), "ignored");
            const good = conversationWith("good", 5);
            await writeFile(path.join(folder, `${good.id}.json`), JSON.stringify(good));
            const reports: string[] = [];
            const store = new ConversationStore(folder, (message) => reports.push(message));
            assert.deepEqual(
                (await store.list()).map((c) => c.id),
                [good.id],
            );
            assert.equal(reports.length, 1);
            assert.match(
                reports[0],
                /^2 saved chats could not be read and were moved to .*unreadable: broken\.json \(.*\); wrong\.json \(not a conversation\)$/,
            );
            const movedAside = await readdir(path.join(folder, UNREADABLE_FOLDER));
            assert.deepEqual(movedAside.map((name) => name.replace(/^\d+-/, "")).sort(), [
                "broken.json",
                "wrong.json",
            ]);
            assert.equal(
                await readFile(
                    path.join(
                        folder,
                        UNREADABLE_FOLDER,
                        movedAside.find((n) => n.endsWith("broken.json"))!,
                    ),
                    "utf8",
                ),
                "{ not json",
                "kept as it was",
            );
            assert.deepEqual(
                (await readdir(folder)).sort(),
                [`${good.id}.json`, "notes.txt", UNREADABLE_FOLDER].sort(),
            );

            const reloaded: string[] = [];
            assert.equal(
                (await new ConversationStore(folder, (message) => reloaded.push(message)).list())
                    .length,
                1,
            );
            assert.deepEqual(reloaded, [], "the next window is not told again");
        });
    });

    test("temp files of killed writes are never read; old ones are removed", async () => {
        await withFolder(async (folder) => {
            const good = conversationWith("good", 5);
            await writeFile(path.join(folder, `${good.id}.json`), JSON.stringify(good));
            const old = path.join(folder, `${good.id}.json.old.tmp`);
            await writeFile(old, "{ half");
            await utimes(old, new Date(0), new Date(0));
            await writeFile(path.join(folder, `${good.id}.json.young.tmp`), "{ half");
            const reports: string[] = [];
            assert.equal(
                (await new ConversationStore(folder, (message) => reports.push(message)).list())
                    .length,
                1,
            );
            assert.deepEqual(reports, []);
            assert.deepEqual((await readdir(folder)).sort(), [
                `${good.id}.json`,
                `${good.id}.json.young.tmp`,
            ]);
        });
    });

    test("a missing folder is an empty history, created on the first save", async () => {
        await withFolder(async (parent) => {
            const store = new ConversationStore(path.join(parent, "not", "yet"));
            assert.deepEqual(await store.list(), []);
            await store.save(conversationWith("first", 1));
            assert.equal((await store.list()).length, 1);
        });
    });

    test("ids that could name another path are refused", async () => {
        await withFolder(async (folder) => {
            const store = new ConversationStore(folder);
            for (const id of ["../escape", "a/b", "", "x".repeat(65), "C:\\x"]) {
                await assert.rejects(
                    store.save({ ...newConversation(), id }),
                    /Invalid conversation id/,
                );
                await assert.rejects(store.delete(id), /Invalid conversation id/);
            }
            assert.equal(await store.get("../escape"), undefined);
        });
    });
});

describe("unit: conversation store shared by several windows (two stores on one folder)", () => {
    const turn = (n: number): Message[] => [
        { id: `u${n}`, role: "user", text: `question ${n}` },
        { id: `a${n}`, role: "assistant", text: `answer ${n}`, state: "done" },
    ];
    const texts = (c: Conversation | undefined) => c?.messages.map((m) => m.text);

    test("windows taking turns on one chat keep every turn, even from a stale copy", async () => {
        await withFolder(async (folder) => {
            const a = new ConversationStore(folder);
            const b = new ConversationStore(folder);
            const inA = { ...newConversation(1), title: "shared", messages: turn(1) };
            await a.save(inA);
            const inB = (await b.get(inA.id))!;
            inA.messages.push(...turn(2));
            await a.save(inA);
            // B continues from the copy it opened before A's second turn.
            inB.messages.push(...turn(3));
            const result = await b.save(inB);
            const all = [
                "question 1",
                "answer 1",
                "question 2",
                "answer 2",
                "question 3",
                "answer 3",
            ];
            assert.deepEqual(texts(await new ConversationStore(folder).get(inA.id)), all);
            assert.ok("saved" in result);
            assert.deepEqual(texts(result.saved), all, "the saving window learns the merged chat");
            // A, stale now, retries its own answer 2: B's turn stays, A's new text replaces its own.
            inA.messages[3] = { ...inA.messages[3], text: "answer 2, retried" };
            await a.save(inA);
            assert.deepEqual(texts(await new ConversationStore(folder).get(inA.id)), [
                ...all.slice(0, 3),
                "answer 2, retried",
                ...all.slice(4),
            ]);
        });
    });

    test("a chat created in one window appears in the other's history", async () => {
        await withFolder(async (folder) => {
            const a = new ConversationStore(folder);
            const b = new ConversationStore(folder);
            assert.deepEqual(await b.list(), []);
            const chat = conversationWith("from window A", 7);
            await a.save(chat);
            assert.deepEqual(
                (await b.list()).map((c) => c.id),
                [chat.id],
            );
            assert.deepEqual(await b.get(chat.id), chat);
        });
    });

    test("a chat deleted in one window stays deleted when the other saves it", async () => {
        await withFolder(async (folder) => {
            const a = new ConversationStore(folder);
            const b = new ConversationStore(folder);
            const chat = conversationWith("doomed", 3);
            await a.save(chat);
            const inB = (await b.get(chat.id))!;
            await a.delete(chat.id);
            assert.equal(await b.wasDeleted(chat.id), true);
            inB.messages.push(...turn(9));
            assert.deepEqual(await b.save(inB), { deleted: true });
            assert.deepEqual(await readdir(folder), []);
            assert.deepEqual(await b.list(), []);
            assert.equal(
                await b.wasDeleted(newConversation().id),
                false,
                "never saved is not deleted",
            );
        });
    });

    test("a failed load is retried on the next call, never kept", async () => {
        await withFolder(async (parent) => {
            const folder = path.join(parent, "conversations");
            await writeFile(folder, "a file where the folder belongs");
            const store = new ConversationStore(folder);
            await assert.rejects(store.list(), /The saved chats in .* could not be read: ENOTDIR/);
            await rm(folder);
            const chat = conversationWith("after the fix", 4);
            await new ConversationStore(folder).save(chat);
            assert.deepEqual(
                (await store.list()).map((c) => c.id),
                [chat.id],
            );
            assert.deepEqual(await store.get(chat.id), chat);
        });
    });

    test("corrupt files moved aside by one window while the other loads: both load, each file reported once", async () => {
        await withFolder(async (folder) => {
            const names = Array.from({ length: 20 }, (_, i) => `broken${i}.json`);
            for (const name of names) await writeFile(path.join(folder, name), "{ not json");
            const good = conversationWith("good", 5);
            await writeFile(path.join(folder, `${good.id}.json`), JSON.stringify(good));
            const reports: string[] = [];
            const a = new ConversationStore(folder, (m) => reports.push(m));
            const b = new ConversationStore(folder, (m) => reports.push(m));
            const [inA, inB] = await Promise.all([a.list(), b.list()]);
            assert.deepEqual([inA.length, inB.length], [1, 1]);
            assert.deepEqual(
                (await Promise.all([a.list(), b.list()])).map((l) => l.length),
                [1, 1],
                "and later loads work",
            );
            const reported = reports.flatMap((r) =>
                [...r.matchAll(/broken\d+\.json/g)].map((m) => m[0]),
            );
            assert.deepEqual(reported.sort(), [...names].sort());
            assert.equal((await readdir(path.join(folder, UNREADABLE_FOLDER))).length, 20);
        });
    });
});

describe("unit: conversation to model messages", () => {
    test("titles come from the first non-empty line, shortened", () => {
        assert.equal(
            titleFromText("\n  How do   I sort a list?\nIn Python."),
            "How do I sort a list?",
        );
        assert.equal(titleFromText("   \n "), "New chat");
        const long = titleFromText("word ".repeat(40));
        assert.ok(long.length <= 60 && long.endsWith("…"), long);
    });

    test("the system prompt goes first; failed, streaming and empty answers are left out", () => {
        const messages: Message[] = [
            { id: "1", role: "user", text: "hi" },
            {
                id: "2",
                role: "assistant",
                text: "",
                state: "failed",
                error: { code: "crashed", message: "boom" },
            },
            { id: "3", role: "user", text: "hi again" },
            { id: "4", role: "assistant", text: "hello", state: "done" },
            { id: "5", role: "user", text: "stop early" },
            { id: "6", role: "assistant", text: "partial", state: "stopped" },
            { id: "7", role: "assistant", text: "", state: "stopped" },
            { id: "8", role: "user", text: "last" },
            { id: "9", role: "assistant", text: "growing", state: "streaming" },
        ];
        assert.deepEqual(toModelMessages(messages, "Be brief."), [
            { role: "system", content: "Be brief." },
            { role: "user", content: "hi" },
            { role: "user", content: "hi again" },
            { role: "assistant", content: "hello" },
            { role: "user", content: "stop early" },
            { role: "assistant", content: "partial" },
            { role: "user", content: "last" },
        ]);
        assert.equal(
            toModelMessages(messages, "  ")[0].role,
            "user",
            "a blank system prompt sends none",
        );
    });

    test("a message answered through a prompt the sidecar built (explain) sends that prompt later", () => {
        const messages: Message[] = [
            {
                id: "1",
                role: "user",
                text: "Explain this code. `a.ts`, lines 1-2:\n\n```ts\nx()\n```",
                prompt: "Explain the following TypeScript from a.ts ...",
            },
            { id: "2", role: "assistant", text: "It calls x.", state: "done" },
        ];
        assert.deepEqual(
            toModelMessages(messages, "").map((m) => m.content),
            ["Explain the following TypeScript from a.ts ...", "It calls x."],
        );
    });

    test("attached code goes before the question in a fence longer than its backtick runs", () => {
        const message: UserMessage = {
            id: "1",
            role: "user",
            text: "What does this do?",
            context: {
                fileName: "a.md",
                path: "docs/a.md",
                language: "markdown",
                startLine: 3,
                endLine: 5,
                wholeFile: false,
                text: "```js\nx()\n```",
            },
        };
        assert.equal(
            userContentForModel(message),
            "From `docs/a.md` (lines 3-5):\n\n````markdown\n```js\nx()\n```\n````\n\nWhat does this do?",
        );
        const whole: UserMessage = {
            ...message,
            context: { ...message.context!, wholeFile: true, text: "plain\n" },
        };
        assert.equal(
            userContentForModel(whole),
            "From `docs/a.md`:\n\n```markdown\nplain\n```\n\nWhat does this do?",
        );
        const oneLine: UserMessage = {
            ...message,
            context: { ...message.context!, startLine: 7, endLine: 7, text: "x" },
        };
        assert.equal(
            userContentForModel(oneLine),
            "From `docs/a.md` (line 7):\n\n```markdown\nx\n```\n\nWhat does this do?",
        );
    });
});
