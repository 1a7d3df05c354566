import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { SidecarError } from "../../sidecar/errors.js";
import {
    MAX_QUEUED_PER_CALLER,
    RequestScheduler,
    type CancelSignal,
    type Slot,
} from "../../sidecar/scheduler.js";

/** A cancellation source like vscode-jsonrpc's, for driving the scheduler by hand. */
function cancellation(): CancelSignal & { cancel(): void } {
    const listeners = new Set<() => void>();
    let cancelled = false;
    return {
        get isCancellationRequested() {
            return cancelled;
        },
        onCancellationRequested(listener) {
            listeners.add(listener);
            return { dispose: () => listeners.delete(listener) };
        },
        cancel() {
            cancelled = true;
            for (const listener of [...listeners]) listener();
        },
    };
}

const never = cancellation();

/** Records the order in which requests got a slot; `settled` lets a test await that. */
function track<S>(promise: Promise<Slot<S> | undefined>, log: string[], name: string) {
    return promise.then((slot) => {
        log.push(slot ? `${name}:${String(slot.sequence)}` : `${name}:cancelled`);
        return slot;
    });
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("unit: request scheduler", () => {
    test("a conversation's requests run in order, one at a time, on its own sequence", async () => {
        const scheduler = new RequestScheduler<string>();
        scheduler.setSequences(["s0", "s1"]);
        const log: string[] = [];
        const first = await track(scheduler.acquire("a", never), log, "a1");
        const second = track(scheduler.acquire("a", never), log, "a2");
        const other = await track(scheduler.acquire("b", never), log, "b1");
        await tick();
        assert.deepEqual(log, ["a1:s0", "b1:s1"], "a's second request waits for its first");
        first!.conversationId = "a";
        scheduler.release(first!, "a");
        const again = await second;
        assert.equal(again, first, "a gets its own sequence (and its cache) back");
        assert.deepEqual(log, ["a1:s0", "b1:s1", "a2:s0"]);
        scheduler.release(again!, "a");
        scheduler.release(other!, "b");
        assert.equal(scheduler.waiting, 0);
    });

    test("a new conversation takes a free sequence, else the least recently used idle one", async () => {
        const scheduler = new RequestScheduler<string>();
        scheduler.setSequences(["s0", "s1"]);
        const a = (await scheduler.acquire("a", never))!;
        a.conversationId = "a";
        const b = (await scheduler.acquire("b", never))!;
        b.conversationId = "b";
        scheduler.release(b, "b");
        scheduler.release(a, "a");
        const c = (await scheduler.acquire("c", never))!;
        assert.equal(c.sequence, "s1", "b's sequence was released first, so it is reclaimed");
        scheduler.release(c, "c");
        const back = (await scheduler.acquire("a", never))!;
        assert.equal(back.sequence, "s0", "a still finds its own sequence");
    });

    test("a full queue refuses with busy at once; cancelling a waiter frees its place", async () => {
        const scheduler = new RequestScheduler<string>(2);
        scheduler.setSequences(["s0"]);
        const holder = (await scheduler.acquire("x", never))!;
        const log: string[] = [];
        const cancelFirst = cancellation();
        const first = track(scheduler.acquire("y", cancelFirst), log, "y");
        const second = track(scheduler.acquire("z", never), log, "z");
        let refusal: unknown;
        try {
            await scheduler.acquire("w", never);
        } catch (error) {
            refusal = error;
        }
        assert.ok(refusal instanceof SidecarError, "a third waiter is refused");
        assert.equal(refusal.code, "busy");
        assert.match(refusal.message, /busy with 2 waiting requests/);

        cancelFirst.cancel();
        assert.equal(await first, undefined, "the cancelled waiter resolves with nothing");
        assert.equal(scheduler.waiting, 1);
        const third = track(scheduler.acquire("w", never), log, "w");
        scheduler.release(holder, "x");
        const zSlot = (await second)!;
        assert.deepEqual(log, ["y:cancelled", "z:s0"], "the oldest remaining waiter goes first");
        scheduler.release(zSlot, "z");
        await third;
        assert.deepEqual(log, ["y:cancelled", "z:s0", "w:s0"]);
    });

    test("a request cancelled before it asks never waits", async () => {
        const scheduler = new RequestScheduler<string>();
        scheduler.setSequences([]);
        const cancel = cancellation();
        cancel.cancel();
        assert.equal(await scheduler.acquire("a", cancel), undefined);
        assert.equal(scheduler.waiting, 0);
    });

    test("clearing fails every waiter with the error; new sequences serve new requests", async () => {
        const scheduler = new RequestScheduler<string>();
        scheduler.setSequences(["old"]);
        const holder = (await scheduler.acquire("a", never))!;
        const waiting = scheduler.acquire("b", never);
        scheduler.clear(new SidecarError("modelNotLoaded", "unloaded"));
        await assert.rejects(waiting, (error: SidecarError) => error.code === "modelNotLoaded");
        scheduler.setSequences(["new"]);
        scheduler.release(holder, "a"); // a request of the old model ends late: harmless
        const slot = await scheduler.acquire("a", never);
        assert.equal(slot?.sequence, "new");
    });

    test("the user's own requests start before other extensions' that waited longer", async () => {
        const scheduler = new RequestScheduler<string>();
        scheduler.setSequences(["s0"]);
        const holder = (await scheduler.acquire("chat", never))!;
        const log: string[] = [];
        const lm1 = track(scheduler.acquire("lm-a", never, "ext.one"), log, "lm-a");
        const lm2 = track(scheduler.acquire("lm-b", never, "ext.two"), log, "lm-b");
        const explain = track(scheduler.acquire("explain", never), log, "explain");
        const rewrite = track(scheduler.acquire("rewrite", never), log, "rewrite");
        const order = [explain, rewrite, lm1, lm2];
        let running = holder;
        let name = "chat";
        for (const next of order) {
            scheduler.release(running, name);
            running = (await next)!;
            name = log.at(-1)!.split(":")[0];
        }
        scheduler.release(running, name);
        assert.deepEqual(log, ["explain:s0", "rewrite:s0", "lm-a:s0", "lm-b:s0"]);
    });

    test(`an extension may have ${MAX_QUEUED_PER_CALLER} requests waiting; one more is refused with busy, others are not`, async () => {
        const scheduler = new RequestScheduler<string>();
        scheduler.setSequences(["s0"]);
        const holder = (await scheduler.acquire("chat", never))!;
        const waiting = Array.from({ length: MAX_QUEUED_PER_CALLER }, (_, i) =>
            scheduler.acquire(`greedy-${i}`, never, "ext.greedy"),
        );
        let refusal: unknown;
        try {
            await scheduler.acquire("greedy-more", never, "ext.greedy");
        } catch (error) {
            refusal = error;
        }
        assert.ok(refusal instanceof SidecarError, "the caller's next request is refused");
        assert.equal(refusal.code, "busy");
        assert.match(refusal.message, /ext\.greedy already has 2 requests waiting/);
        const polite = scheduler.acquire("polite", never, "ext.polite");
        const chat = scheduler.acquire("chat-2", never);
        assert.equal(scheduler.waiting, MAX_QUEUED_PER_CALLER + 2, "the others wait");
        scheduler.clear(new SidecarError("modelNotLoaded", "done"));
        scheduler.release(holder, "chat");
        for (const w of [...waiting, polite, chat])
            await assert.rejects(w, (e: SidecarError) => e.code === "modelNotLoaded");
    });

    test("other extensions' requests cannot fill the user's queue", async () => {
        const scheduler = new RequestScheduler<string>(2);
        scheduler.setSequences(["s0"]);
        const holder = (await scheduler.acquire("chat", never))!;
        const lm = ["ext.a", "ext.b"].map((caller) =>
            scheduler.acquire(`lm-${caller}`, never, caller),
        );
        assert.throws(
            () => scheduler.acquire("lm-c", never, "ext.c"),
            /busy with 2 waiting requests from extensions/,
        );
        const log: string[] = [];
        const user = [
            track(scheduler.acquire("explain", never), log, "explain"),
            track(scheduler.acquire("rewrite", never), log, "rewrite"),
        ];
        assert.throws(() => scheduler.acquire("chat-3", never), /busy with 2 waiting requests;/);
        scheduler.release(holder, "chat");
        scheduler.release((await user[0])!, "explain");
        scheduler.release((await user[1])!, "rewrite");
        assert.deepEqual(log, ["explain:s0", "rewrite:s0"]);
        scheduler.release((await lm[0])!, "lm-ext.a");
        scheduler.release((await lm[1])!, "lm-ext.b");
        assert.equal(scheduler.waiting, 0);
    });
});
