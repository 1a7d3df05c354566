// Chat persistence: one JSON file per conversation in a folder (the extension's global storage),
// each written atomically (temp file + rename), so a crash or a reload never leaves half a file.
// Several VS Code windows share the folder, so nothing is cached as truth: every read goes to the
// disk (parsed files are reused while their size and mtime are unchanged), each file carries a
// revision, and a save over a revision this store has not seen merges the turns on disk with its
// own instead of overwriting them. A conversation this store saw on disk and then found gone was
// deleted (here or in another window) and is never written again. A file that does not parse is
// moved into `unreadable/` and reported, never a crash and never silently dropped. No `vscode`
// import: the folder comes from the caller, which keeps this testable in plain Node.
import { randomUUID } from "node:crypto";
import { mkdirSync, watch } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import * as path from "node:path";
import type { ChatMessage } from "../sidecar/protocol.js";
import { fenced } from "../sidecar/prompts.js";
import { conversationMatches } from "./chatEdits.js";
import type {
    Attachment,
    Conversation,
    ConversationSummary,
    Message,
    UserMessage,
} from "../media/protocol.js";

const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const TITLE_LENGTH = 60;
/** Where files that do not parse as a conversation are moved, inside the store's folder. */
export const UNREADABLE_FOLDER = "unreadable";
const STALE_TEMP_MS = 60_000;
/** A save is a burst of changes (temp file, rename): watchers hear of it once, this long after the last. */
const CHANGE_BURST_MS = 150;
/** Saves that lost a race with another window's save of the same file merge again, this often at most. */
const SAVE_ATTEMPTS = 3;

/** A conversation as stored: `revision` counts its saves; `writer` tells whose save is on disk. */
interface StoredConversation extends Conversation {
    revision: number;
    writer: string;
}

/** A file as last read, reused while its size and mtime are unchanged. */
interface ReadFile {
    size: number;
    mtimeMs: number;
    stored: StoredConversation;
}

/** What a save did: the conversation as it is on disk now (with other windows' turns merged in), or nothing because it was deleted. */
export type SaveResult = { saved: Conversation } | { deleted: true };

export class ConversationStore {
    /** Parsed files by name; never a failure, never the truth without a stat of the file. */
    private readonly files = new Map<string, ReadFile>();
    /** The revision of each conversation this store last read or wrote. */
    private readonly seen = new Map<string, number>();
    /** Writes run one after another, so an older save never lands after a newer one. */
    private writes: Promise<unknown> = Promise.resolve();

    constructor(
        private readonly folder: string,
        /** Told about files that could not be read (and were moved aside). */
        private readonly report: (message: string) => void = () => undefined,
    ) {}

    /** Saved conversations, most recently updated first, as the folder holds them now; with a query, those that match it. */
    async list(query = ""): Promise<ConversationSummary[]> {
        const all = await this.readAll();
        return all
            .filter((conversation) => conversationMatches(conversation, query))
            .sort((a, b) => b.updatedAt - a.updatedAt)
            .map(({ id, title, updatedAt, messages }) => ({
                id,
                title,
                updatedAt,
                messageCount: messages.length,
            }));
    }

    /**
     * The conversation as the file holds it now. The caller is taken to hold this version: its
     * next save overwrites only what it read here, merging anything newer.
     */
    async get(id: string): Promise<Conversation | undefined> {
        if (!ID_PATTERN.test(id)) return undefined;
        const stored = await this.readOne(`${id}.json`);
        if (!stored) return undefined;
        this.seen.set(id, stored.revision);
        return withoutStorage(stored);
    }

    /** True when this store saw the conversation on disk and it is gone now (deleted here or in another window). */
    async wasDeleted(id: string): Promise<boolean> {
        return this.seen.has(id) && !(await this.readOne(`${id}.json`));
    }

    /**
     * Writes the conversation. Turns another window saved since this store last read the file are
     * kept: messages are merged by id (this save's version of a message wins), the other window's
     * new ones first, then this one's. A conversation deleted since it was read is not written.
     */
    async save(conversation: Conversation): Promise<SaveResult> {
        assertValidId(conversation.id);
        const copy = structuredClone(conversation);
        return this.enqueue(async () => {
            for (let attempt = 1; ; attempt++) {
                const result = await this.writeMerged(copy);
                if ("deleted" in result || result.written || attempt === SAVE_ATTEMPTS)
                    return "deleted" in result ? result : { saved: result.saved };
            }
        });
    }

    /**
     * Calls `onChange` after files in the folder change (other windows' saves and deletes, and this
     * store's own), once per burst. Where the folder cannot be watched, `onError` is told why.
     */
    watch(onChange: () => void, onError: (message: string) => void): { close(): void } {
        let timer: NodeJS.Timeout | undefined;
        try {
            mkdirSync(this.folder, { recursive: true });
            const watcher = watch(this.folder, () => {
                clearTimeout(timer);
                timer = setTimeout(onChange, CHANGE_BURST_MS);
            });
            watcher.on("error", (error) =>
                onError(`watching ${this.folder} stopped: ${error.message}`),
            );
            return {
                close: () => {
                    clearTimeout(timer);
                    watcher.close();
                },
            };
        } catch (error) {
            onError(
                `cannot watch ${this.folder} for other windows' chats: ${(error as Error).message}`,
            );
            return { close: () => undefined };
        }
    }

    async delete(id: string): Promise<void> {
        assertValidId(id);
        await this.enqueue(() => rm(this.fileOf(id), { force: true }));
        this.files.delete(`${id}.json`);
    }

    private async writeMerged(
        conversation: Conversation,
    ): Promise<{ deleted: true } | { saved: Conversation; written: boolean }> {
        const { id } = conversation;
        const onDisk = await this.readOne(`${id}.json`);
        const seenRevision = this.seen.get(id);
        if (!onDisk && seenRevision !== undefined) return { deleted: true };
        const merged =
            onDisk && onDisk.revision !== seenRevision
                ? mergeConversations(withoutStorage(onDisk), conversation)
                : conversation;
        const stored: StoredConversation = {
            ...merged,
            revision: (onDisk?.revision ?? 0) + 1,
            writer: randomUUID(),
        };
        await mkdir(this.folder, { recursive: true });
        const file = this.fileOf(id);
        const temp = `${file}.${randomUUID()}.tmp`;
        await writeFile(temp, JSON.stringify(stored));
        await rename(temp, file);
        // Another window may have renamed its save over this one between the read and the rename:
        // then this save merges again with what is there.
        const after = await this.readOne(`${id}.json`);
        const written = after?.writer === stored.writer;
        if (written) this.seen.set(id, stored.revision);
        return { saved: merged, written };
    }

    private fileOf(id: string): string {
        return path.join(this.folder, `${id}.json`);
    }

    private enqueue<T>(write: () => Promise<T>): Promise<T> {
        const done = this.writes.then(write);
        this.writes = done.catch(() => undefined);
        return done;
    }

    /** Every conversation in the folder now; unreadable files are moved aside and reported. */
    private async readAll(): Promise<StoredConversation[]> {
        const conversations: StoredConversation[] = [];
        const unreadable: string[] = [];
        const names = await readdir(this.folder).catch((error: NodeJS.ErrnoException) => {
            // No folder yet is an empty history; anything else is an error, and the next call tries again.
            if (error.code === "ENOENT") return [] as string[];
            throw new Error(
                `The saved chats in ${this.folder} could not be read: ${error.message}`,
            );
        });
        for (const name of names) {
            if (name.endsWith(".tmp")) {
                await removeIfStale(path.join(this.folder, name));
                continue;
            }
            if (!name.endsWith(".json")) continue;
            const stored = await this.readOne(name, unreadable);
            if (stored) conversations.push(stored);
        }
        for (const name of this.files.keys()) if (!names.includes(name)) this.files.delete(name);
        if (unreadable.length) {
            this.report(
                `${unreadable.length === 1 ? "A saved chat" : `${unreadable.length} saved chats`} could not be read and ` +
                    `${unreadable.length === 1 ? "was" : "were"} moved to ${path.join(this.folder, UNREADABLE_FOLDER)}: ${unreadable.join("; ")}`,
            );
        }
        return conversations;
    }

    /**
     * One file as it is now, or undefined when it is gone (another window may have deleted it or
     * moved it aside meanwhile). A file that does not parse is moved aside and named in `unreadable`.
     */
    private async readOne(
        name: string,
        unreadable: string[] = [],
    ): Promise<StoredConversation | undefined> {
        const file = path.join(this.folder, name);
        const info = await stat(file).catch(ignoreGone);
        if (!info?.isFile()) {
            this.files.delete(name);
            return undefined;
        }
        const known = this.files.get(name);
        if (known && known.size === info.size && known.mtimeMs === info.mtimeMs)
            return structuredClone(known.stored);
        const text = await readFile(file, "utf8").catch(ignoreGone);
        if (text === undefined) return undefined;
        try {
            const stored = parseConversation(JSON.parse(text));
            this.files.set(name, { size: info.size, mtimeMs: info.mtimeMs, stored });
            return structuredClone(stored);
        } catch (error) {
            // Moved aside, not deleted: the user may want it back, and it must not fail every load.
            // Another window may be moving it at the same time: then it is simply gone.
            const aside = path.join(this.folder, UNREADABLE_FOLDER);
            const moved = await mkdir(aside, { recursive: true })
                .then(() => rename(file, path.join(aside, `${Date.now()}-${name}`)))
                .then(
                    () => `${name} (${(error as Error).message})`,
                    (e: NodeJS.ErrnoException) =>
                        e.code === "ENOENT"
                            ? undefined
                            : `${name} (${(error as Error).message}; left in place: ${e.message})`,
                );
            if (moved) unreadable.push(moved);
            return undefined;
        }
    }
}

/**
 * The conversation on disk with this window's version merged in: every message of either, by id;
 * where both have one, this window's version (it is the one being saved); the disk's order first,
 * then this window's messages the disk lacks. Messages either side removed (by an edit) stay
 * removed, and the title renamed last wins.
 */
export function mergeConversations(onDisk: Conversation, ours: Conversation): Conversation {
    const ourMessages = new Map(ours.messages.map((m) => [m.id, m]));
    const diskIds = new Set(onDisk.messages.map((m) => m.id));
    const removed = new Set([
        ...(onDisk.removedMessageIds ?? []),
        ...(ours.removedMessageIds ?? []),
    ]);
    const renamed = (onDisk.titleSetAt ?? 0) > (ours.titleSetAt ?? 0) ? onDisk : ours;
    const title =
        renamed.titleSetAt !== undefined
            ? renamed.title
            : onDisk.messages.length > 0
              ? onDisk.title
              : ours.title;
    return {
        ...ours,
        title,
        ...(renamed.titleSetAt !== undefined && { titleSetAt: renamed.titleSetAt }),
        createdAt: Math.min(onDisk.createdAt, ours.createdAt),
        updatedAt: Math.max(onDisk.updatedAt, ours.updatedAt),
        messages: [
            ...onDisk.messages.map((m) => ourMessages.get(m.id) ?? m),
            ...ours.messages.filter((m) => !diskIds.has(m.id)),
        ].filter((m) => !removed.has(m.id)),
        ...(removed.size > 0 && { removedMessageIds: [...removed] }),
    };
}

/**
 * Takes what a save returned (other windows' turns, renames and removals merged in) into the live
 * conversation, keeping its own message objects, which a streaming answer may still be writing to.
 */
export function takeInSaved(conversation: Conversation, saved: Conversation): void {
    const ours = new Map(conversation.messages.map((m) => [m.id, m]));
    const { messages, ...fields } = saved;
    Object.assign(conversation, fields);
    conversation.messages = messages.map((m) => ours.get(m.id) ?? m);
}

function withoutStorage(stored: StoredConversation): Conversation {
    const { revision: _revision, writer: _writer, ...conversation } = stored;
    return conversation;
}

/** A file that is gone reads as undefined (another window deleted it); any other failure is thrown. */
function ignoreGone(error: NodeJS.ErrnoException): undefined {
    if (error.code === "ENOENT") return undefined;
    throw error;
}

/** A temp file left by a writer that was killed before its rename; young ones may still be in use by another window. */
async function removeIfStale(file: string): Promise<void> {
    const info = await stat(file).catch(() => undefined);
    if (info && Date.now() - info.mtimeMs > STALE_TEMP_MS) await rm(file, { force: true });
}

function assertValidId(id: string): void {
    if (!ID_PATTERN.test(id)) throw new Error(`Invalid conversation id: ${JSON.stringify(id)}`);
}

/** Checks a stored conversation's shape; an answer that was streaming when the window closed is marked stopped. */
function parseConversation(value: unknown): StoredConversation {
    const c = value as StoredConversation;
    const valid =
        typeof c === "object" &&
        c !== null &&
        typeof c.id === "string" &&
        ID_PATTERN.test(c.id) &&
        typeof c.title === "string" &&
        typeof c.createdAt === "number" &&
        typeof c.updatedAt === "number" &&
        Array.isArray(c.messages) &&
        c.messages.every(
            (m) =>
                typeof m?.id === "string" &&
                typeof m.text === "string" &&
                (m.role === "user" || m.role === "assistant") &&
                (m.role === "user"
                    ? validAttachments(m.attachments)
                    : m.otherVersions === undefined ||
                      (Array.isArray(m.otherVersions) &&
                          m.otherVersions.every((v) => typeof v?.text === "string"))),
        ) &&
        (c.removedMessageIds === undefined ||
            (Array.isArray(c.removedMessageIds) &&
                c.removedMessageIds.every((id) => typeof id === "string")));
    if (!valid) throw new Error("not a conversation");
    for (const message of c.messages) {
        if (message.role !== "assistant") continue;
        if (message.state === "streaming") message.state = "stopped";
        for (const version of message.otherVersions ?? [])
            if (version.state === "streaming") version.state = "stopped";
    }
    // Files from before revisions were kept count as revision 0.
    return {
        ...c,
        revision: typeof c.revision === "number" ? c.revision : 0,
        writer: String(c.writer),
    };
}

/** Absent (files from before attachments), or each with the text the prompt gets and its label. */
function validAttachments(attachments: unknown): boolean {
    return (
        attachments === undefined ||
        (Array.isArray(attachments) &&
            attachments.every(
                (a: Partial<Attachment> | null) =>
                    typeof a?.text === "string" && typeof a.label === "string",
            ))
    );
}

export function newConversation(now = Date.now()): Conversation {
    return { id: randomUUID(), title: "New chat", createdAt: now, updatedAt: now, messages: [] };
}

/** The first line of the first message, shortened. */
export function titleFromText(text: string): string {
    const line =
        text
            .split("\n")
            .map((l) => l.trim().replace(/\s+/g, " "))
            .find((l) => l !== "") ?? "";
    if (line === "") return "New chat";
    return line.length > TITLE_LENGTH ? `${line.slice(0, TITLE_LENGTH - 1).trimEnd()}…` : line;
}

/**
 * The messages the model sees: the system prompt (if any), then the conversation. Failed and
 * empty answers are left out; attachments and attached code go before the user's text.
 */
export function toModelMessages(messages: readonly Message[], systemPrompt: string): ChatMessage[] {
    const result: ChatMessage[] = systemPrompt.trim()
        ? [{ role: "system", content: systemPrompt }]
        : [];
    for (const message of messages) {
        if (message.role === "user")
            result.push({ role: "user", content: message.prompt ?? userContentForModel(message) });
        else if (
            message.state !== "failed" &&
            message.state !== "streaming" &&
            message.text !== ""
        ) {
            result.push({ role: "assistant", content: message.text });
        }
    }
    return result;
}

/** The user's text after its attachments (as stored, in the order attached) and the context chip's code. */
export function userContentForModel(message: UserMessage): string {
    const parts = (message.attachments ?? []).map((attachment) => attachment.text);
    const context = message.context;
    if (context) {
        const lines =
            context.startLine === context.endLine
                ? `line ${context.startLine}`
                : `lines ${context.startLine}-${context.endLine}`;
        const where = context.wholeFile ? `\`${context.path}\`` : `\`${context.path}\` (${lines})`;
        parts.push(`From ${where}:\n\n${fenced(context.text, context.language)}`);
    }
    return [...parts, message.text].join("\n\n");
}
