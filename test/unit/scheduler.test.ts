import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { SidecarError } from "../../sidecar/errors.js";
import { RequestScheduler, type CancelSignal, type Slot } from "../../sidecar/scheduler.js";

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
});
