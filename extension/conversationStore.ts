// Chat persistence: one JSON file per conversation in a folder (the extension's global storage),
// each written atomically (temp file + rename), so a crash or a reload never leaves half a file and
// two windows only ever overwrite the conversation they both changed. A file that does not parse is
// moved into `unreadable/` and reported, never a crash and never silently dropped. No `vscode` import: the
// folder comes from the caller, which keeps this testable in plain Node.
import { randomUUID } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import * as path from "node:path";
import type { ChatMessage } from "../sidecar/protocol.js";
import type { Conversation, ConversationSummary, Message, UserMessage } from "../media/protocol.js";

const ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const TITLE_LENGTH = 60;
/** Where files that do not parse as a conversation are moved, inside the store's folder. */
export const UNREADABLE_FOLDER = "unreadable";
const STALE_TEMP_MS = 60_000;

export class ConversationStore {
    private conversations?: Promise<Map<string, Conversation>>;
    /** Writes run one after another, so an older save never lands after a newer one. */
    private writes: Promise<unknown> = Promise.resolve();

    constructor(
        private readonly folder: string,
        /** Told, once per load, about files that could not be read (and were moved aside). */
        private readonly report: (message: string) => void = () => undefined,
    ) {}

    /** Saved conversations, most recently updated first. */
    async list(): Promise<ConversationSummary[]> {
        const all = [...(await this.load()).values()];
        return all
            .sort((a, b) => b.updatedAt - a.updatedAt)
            .map(({ id, title, updatedAt, messages }) => ({
                id,
                title,
                updatedAt,
                messageCount: messages.length,
            }));
    }

    async get(id: string): Promise<Conversation | undefined> {
        const conversation = (await this.load()).get(id);
        return conversation && structuredClone(conversation);
    }

    async save(conversation: Conversation): Promise<void> {
        assertValidId(conversation.id);
        const copy = structuredClone(conversation);
        (await this.load()).set(copy.id, copy);
        await this.enqueue(async () => {
            await mkdir(this.folder, { recursive: true });
            const file = this.fileOf(copy.id);
            const temp = `${file}.${randomUUID()}.tmp`;
            await writeFile(temp, JSON.stringify(copy));
            await rename(temp, file);
        });
    }

    async delete(id: string): Promise<void> {
        assertValidId(id);
        (await this.load()).delete(id);
        await this.enqueue(() => rm(this.fileOf(id), { force: true }));
    }

    private fileOf(id: string): string {
        return path.join(this.folder, `${id}.json`);
    }

    private enqueue(write: () => Promise<unknown>): Promise<void> {
        const done = this.writes.then(write);
        this.writes = done.catch(() => undefined);
        return done.then(() => undefined);
    }

    private load(): Promise<Map<string, Conversation>> {
        this.conversations ??= this.readAll();
        return this.conversations;
    }

    private async readAll(): Promise<Map<string, Conversation>> {
        const conversations = new Map<string, Conversation>();
        const unreadable: string[] = [];
        const names = await readdir(this.folder).catch(() => [] as string[]);
        for (const name of names) {
            const file = path.join(this.folder, name);
            if (name.endsWith(".tmp")) {
                await removeIfStale(file);
                continue;
            }
            if (!name.endsWith(".json")) continue;
            try {
                const conversation = parseConversation(JSON.parse(await readFile(file, "utf8")));
                conversations.set(conversation.id, conversation);
            } catch (error) {
                // Moved aside, not deleted: the user may want it back, and it must not fail every load.
                await mkdir(path.join(this.folder, UNREADABLE_FOLDER), { recursive: true });
                await rename(
                    file,
                    path.join(this.folder, UNREADABLE_FOLDER, `${Date.now()}-${name}`),
                );
                unreadable.push(`${name} (${(error as Error).message})`);
            }
        }
        if (unreadable.length) {
            this.report(
                `${unreadable.length === 1 ? "A saved chat" : `${unreadable.length} saved chats`} could not be read and ` +
                    `${unreadable.length === 1 ? "was" : "were"} moved to ${path.join(this.folder, UNREADABLE_FOLDER)}: ${unreadable.join("; ")}`,
            );
        }
        return conversations;
    }
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
function parseConversation(value: unknown): Conversation {
    const c = value as Conversation;
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
                (m.role === "user" || m.role === "assistant"),
        );
    if (!valid) throw new Error("not a conversation");
    for (const message of c.messages) {
        if (message.role === "assistant" && message.state === "streaming")
            message.state = "stopped";
    }
    return c;
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
 * empty answers are left out; attached code goes before the user's text as a fenced block.
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

export function userContentForModel(message: UserMessage): string {
    const context = message.context;
    if (!context) return message.text;
    const lines =
        context.startLine === context.endLine
            ? `line ${context.startLine}`
            : `lines ${context.startLine}-${context.endLine}`;
    const where = context.wholeFile ? `\`${context.path}\`` : `\`${context.path}\` (${lines})`;
    return `From ${where}:\n\n${fenced(context.text, context.language)}\n\n${message.text}`;
}

/** A markdown code block whose fence is longer than any run of backticks inside the code. */
export function fenced(code: string, language: string): string {
    const longestRun = Math.max(0, ...(code.match(/`+/g) ?? []).map((run) => run.length));
    const fence = "`".repeat(Math.max(3, longestRun + 1));
    return `${fence}${language}\n${code.endsWith("\n") ? code : `${code}\n`}${fence}`;
}
