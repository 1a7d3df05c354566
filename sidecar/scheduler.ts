// Which generation request runs on which KV-cache sequence, and when: requests of one conversation
// run in arrival order, the user's own requests (chat, explain, rewrite) before other extensions'
// (vscode.lm), a conversation gets its own sequence back (its cached prefix with it), else a free
// one, else the least recently used idle one; bounded queues refuse with `busy`.
import { SidecarError } from "./errors.js";

/**
 * The user's own requests that may wait (for a free sequence, or for their conversation's previous
 * request) at once; one more is refused at once with `busy` instead of piling up. Other
 * extensions' requests have a queue of the same size of their own, so they cannot fill this one.
 */
export const MAX_QUEUED_REQUESTS = 16;
/** Requests one other extension (a vscode.lm caller) may have waiting at once. */
export const MAX_QUEUED_PER_CALLER = 2;
/**
 * Sequences a model is loaded with unless asked otherwise: the chat keeps its cache while a
 * rewrite, an Explain elsewhere or another extension's request runs on the second. Each costs a
 * context's KV cache; out of memory, the engine drops to one before giving up anything else.
 */
export const DEFAULT_SEQUENCES = 2;

export interface CancelSignal {
    readonly isCancellationRequested: boolean;
    onCancellationRequested(listener: () => void): { dispose(): void };
}

/** One sequence and what the scheduler knows of it. `sequence` may be swapped by its holder. */
export interface Slot<S> {
    sequence: S;
    /** The conversation whose tokens the sequence holds, if any. */
    conversationId?: string;
    busy: boolean;
    /** Order of last release, for least-recently-used reclaiming. */
    lastUsed: number;
}

/** A generation request waiting for its turn. */
interface Waiter<S> {
    conversationId: string;
    /** Another extension's id (vscode.lm): waits behind every request of the user's own. */
    caller?: string;
    start(slot: Slot<S>): void;
    fail(error: SidecarError): void;
}

export class RequestScheduler<S> {
    private slots: Slot<S>[] = [];
    /** Waiting requests, oldest first. */
    private readonly queue: Waiter<S>[] = [];
    /** Conversations with a request holding a sequence. */
    private readonly activeConversations = new Set<string>();
    private releases = 0;

    constructor(private readonly maxQueued = MAX_QUEUED_REQUESTS) {}

    /** The sequences to schedule on (a new model's); waiting requests keep waiting for them. */
    setSequences(sequences: readonly S[]): void {
        this.slots = sequences.map((sequence) => ({ sequence, busy: false, lastUsed: 0 }));
        this.startWaiting();
    }

    /** Forgets the sequences and fails every waiting request with `error`. */
    clear(error: SidecarError): void {
        this.slots = [];
        for (const waiter of this.queue.splice(0)) waiter.fail(error);
    }

    get waiting(): number {
        return this.queue.length;
    }

    /**
     * Waits until this request may run: no earlier request of its conversation is queued or
     * running, no request of the user's own waits before one of another extension (`caller`), and
     * a sequence is idle. Resolves with the slot (marked busy), or with nothing when cancelled
     * while waiting, at once. Throws `busy` when its queue is full and it cannot start now.
     */
    acquire(
        conversationId: string,
        cancel: CancelSignal,
        caller?: string,
    ): Promise<Slot<S> | undefined> {
        if (cancel.isCancellationRequested) return Promise.resolve(undefined);
        if (!this.canStart(conversationId, caller)) this.refuseIfFull(caller);
        return new Promise((resolve, reject) => {
            const listener = cancel.onCancellationRequested(() => {
                const at = this.queue.indexOf(waiter);
                if (at >= 0) this.queue.splice(at, 1);
                resolve(undefined);
            });
            const waiter: Waiter<S> = {
                conversationId,
                caller,
                start: (slot) => {
                    listener.dispose();
                    resolve(slot);
                },
                fail: (error) => {
                    listener.dispose();
                    reject(error);
                },
            };
            this.queue.push(waiter);
            this.startWaiting();
        });
    }

    /** Gives the slot back after a request of `conversationId`, and starts whoever may run now. */
    release(slot: Slot<S>, conversationId: string): void {
        slot.busy = false;
        slot.lastUsed = ++this.releases;
        this.activeConversations.delete(conversationId);
        this.startWaiting();
    }

    private refuseIfFull(caller: string | undefined): void {
        if (caller === undefined) {
            if (this.queue.filter((w) => w.caller === undefined).length >= this.maxQueued)
                throw new SidecarError(
                    "busy",
                    `The model is busy with ${this.maxQueued} waiting requests; try again shortly.`,
                );
            return;
        }
        if (this.queue.filter((w) => w.caller === caller).length >= MAX_QUEUED_PER_CALLER)
            throw new SidecarError(
                "busy",
                `The model is busy: ${caller} already has ${MAX_QUEUED_PER_CALLER} requests waiting for the model (the most one extension may queue); try again when one has finished.`,
            );
        if (this.queue.filter((w) => w.caller !== undefined).length >= this.maxQueued)
            throw new SidecarError(
                "busy",
                `The model is busy with ${this.maxQueued} waiting requests from extensions; try again shortly.`,
            );
    }

    private canStart(conversationId: string, caller: string | undefined): boolean {
        return (
            !this.activeConversations.has(conversationId) &&
            !this.queue.some(
                (w) =>
                    w.conversationId === conversationId ||
                    (caller !== undefined && w.caller === undefined),
            ) &&
            this.idleSlot(conversationId) !== undefined
        );
    }

    /**
     * Starts every waiting request whose conversation is free, while sequences are idle: the user's
     * own oldest first, then other extensions' oldest first.
     */
    private startWaiting(): void {
        const byPriority = [
            ...this.queue.filter((w) => w.caller === undefined),
            ...this.queue.filter((w) => w.caller !== undefined),
        ];
        for (const waiter of byPriority) {
            if (this.activeConversations.has(waiter.conversationId)) continue;
            const slot = this.idleSlot(waiter.conversationId);
            if (!slot) return;
            this.queue.splice(this.queue.indexOf(waiter), 1);
            slot.busy = true;
            this.activeConversations.add(waiter.conversationId);
            waiter.start(slot);
        }
    }

    /** The conversation's own sequence if idle, else a free one, else the least recently used idle one. */
    private idleSlot(conversationId: string): Slot<S> | undefined {
        const idle = this.slots.filter((s) => !s.busy);
        return (
            idle.find((s) => s.conversationId === conversationId) ??
            idle.find((s) => s.conversationId === undefined) ??
            idle.sort((a, b) => a.lastUsed - b.lastUsed)[0]
        );
    }
}
