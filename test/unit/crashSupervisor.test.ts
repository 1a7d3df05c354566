// The model process's restart policy (extension/crashSupervisor.ts) on a fake clock: backoff, the
// give-up after MAX_CRASHES within CRASH_WINDOW_MS and the window sliding, requests waiting out a
// restart, and a request that never reached a dead process sent again once.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
    CRASH_WINDOW_MS,
    CrashSupervisor,
    EXIT_NOTICE_TIMEOUT_MS,
    FIRST_RESTART_DELAY_MS,
    MAX_CRASHES,
    type Clock,
    type CrashVerdict,
} from "../../extension/crashSupervisor.js";

/** Time moves only when a test says so; sleepers wake when it passes their deadline. */
class FakeClock implements Clock {
    private time = 0;
    private sleepers: Array<{ until: number; wake: () => void }> = [];

    now(): number {
        return this.time;
    }

    sleep(ms: number): Promise<void> {
        return new Promise((wake) => this.sleepers.push({ until: this.time + ms, wake }));
    }

    /** Moves time on, wakes who is due, and lets what they started run. */
    async advance(ms: number): Promise<void> {
        this.time += ms;
        const due = this.sleepers.filter((s) => s.until <= this.time);
        this.sleepers = this.sleepers.filter((s) => s.until > this.time);
        for (const s of due) s.wake();
        await settled();
    }
}

/** Lets every pending promise callback run. */
function settled(): Promise<void> {
    return new Promise((resolve) => setImmediate(resolve));
}

/** Whether a promise has settled, without waiting for it. */
function tracked<T>(promise: Promise<T>): { done: () => boolean; promise: Promise<T> } {
    let done = false;
    void promise.then(
        () => (done = true),
        () => (done = true),
    );
    return { done: () => done, promise };
}

class NotSent extends Error {}
const notSent = (error: unknown) => error instanceof NotSent;

function restartDelay(verdict: CrashVerdict): number {
    assert.equal(verdict.action, "restart", JSON.stringify(verdict));
    return verdict.action === "restart" ? verdict.delayMs : NaN;
}

describe("unit: crash supervisor", () => {
    test("the delay before a restart doubles with each crash in the window", async () => {
        const clock = new FakeClock();
        const supervisor = new CrashSupervisor(clock);
        const delays: number[] = [];
        for (let crash = 1; crash < MAX_CRASHES; crash++) {
            const verdict = supervisor.crashed();
            assert.equal(verdict.crashes, crash);
            const delayMs = restartDelay(verdict);
            delays.push(delayMs);
            const backoff = tracked(
                verdict.action === "restart" ? verdict.backoff : Promise.reject(),
            );
            await clock.advance(delayMs - 1);
            assert.equal(
                backoff.done(),
                false,
                `crash ${crash}: still waiting 1 ms before its delay`,
            );
            await clock.advance(1);
            assert.equal(backoff.done(), true, `crash ${crash}: the backoff is over`);
            supervisor.restarted();
            await clock.advance(1000);
        }
        assert.deepEqual(
            delays,
            [1, 2, 4, 8].map((f) => f * FIRST_RESTART_DELAY_MS),
        );
        assert.deepEqual(delays, [250, 500, 1000, 2000]);
    });

    test(`gives up at the ${MAX_CRASHES}th crash within 3 minutes, until reset`, async () => {
        const clock = new FakeClock();
        const supervisor = new CrashSupervisor(clock);
        for (let crash = 1; crash < MAX_CRASHES; crash++) {
            restartDelay(supervisor.crashed());
            supervisor.restarted();
            await clock.advance(CRASH_WINDOW_MS / MAX_CRASHES);
        }
        assert.equal(supervisor.gaveUp, undefined);
        const verdict = supervisor.crashed();
        assert.deepEqual(verdict, {
            action: "giveUp",
            crashes: 5,
            message:
                "The OLMo model process crashed 5 times in 3 minutes and will not be restarted.",
        });
        assert.equal(supervisor.gaveUp, verdict.action === "giveUp" && verdict.message);
        assert.equal(
            supervisor.restarting,
            false,
            "nothing waits for a restart that will not come",
        );
        await clock.advance(CRASH_WINDOW_MS * 2);
        assert.ok(supervisor.gaveUp, "time alone does not lift the give-up");

        supervisor.reset();
        assert.equal(supervisor.gaveUp, undefined);
        const after = supervisor.crashed();
        assert.equal(after.crashes, 1, "the crash history starts over");
        assert.equal(restartDelay(after), FIRST_RESTART_DELAY_MS);
    });

    test("the window slides: a crash older than 3 minutes no longer counts", async () => {
        const clock = new FakeClock();
        const supervisor = new CrashSupervisor(clock);
        const step = 50_000;
        // Crashes at 0, 50, 100 and 150 s...
        for (let crash = 1; crash < MAX_CRASHES; crash++) {
            restartDelay(supervisor.crashed());
            supervisor.restarted();
            await clock.advance(step);
        }
        // ...then at 200 s the one at 0 s is over 180 s old: 4 in the window, a restart.
        const fifth = supervisor.crashed();
        assert.equal(fifth.crashes, MAX_CRASHES - 1);
        assert.equal(restartDelay(fifth), FIRST_RESTART_DELAY_MS * 2 ** (MAX_CRASHES - 2));
        supervisor.restarted();
        // At 230 s (the oldest, at 50 s, is exactly 180 s old and still counts): 5, a give-up.
        await clock.advance(30_000);
        assert.equal(clock.now() - step, CRASH_WINDOW_MS);
        const sixth = supervisor.crashed();
        assert.equal(sixth.action, "giveUp");
        assert.equal(sixth.crashes, MAX_CRASHES);
    });

    test("requests wait out a restart: from the crash until the process runs again", async () => {
        const clock = new FakeClock();
        const supervisor = new CrashSupervisor(clock);
        await supervisor.restartDone(); // nothing to wait for before a crash

        const verdict = supervisor.crashed();
        const waiting = tracked(supervisor.restartDone());
        await clock.advance(restartDelay(verdict));
        assert.equal(waiting.done(), false, "the backoff is over, the process is not up yet");
        assert.equal(supervisor.restarting, true);
        supervisor.restarted();
        await settled();
        assert.equal(waiting.done(), true, "it runs again: the request goes on");

        // A give-up also lets waiting requests go (to fail with its message).
        restartDelay(supervisor.crashed());
        const waitingAtGiveUp = tracked(supervisor.restartDone());
        for (let crash = 2; crash <= MAX_CRASHES; crash++) supervisor.crashed();
        await settled();
        assert.ok(supervisor.gaveUp);
        assert.equal(waitingAtGiveUp.done(), true);
    });

    test("a request that was not sent goes again once, after the crash is handled and the restart", async () => {
        const clock = new FakeClock();
        const supervisor = new CrashSupervisor(clock);
        let attempts = 0;
        const attempt = async () => {
            await supervisor.restartDone();
            attempts++;
            if (attempts === 1) throw new NotSent("EPIPE");
            return "answer";
        };
        let retries = 0;
        const delivered = tracked(
            supervisor.deliver(
                attempt,
                notSent,
                () => true,
                () => retries++,
            ),
        );
        await settled();
        assert.equal(attempts, 1);
        assert.equal(delivered.done(), false, "it waits for the client to handle the exit");

        const verdict = supervisor.crashed();
        await settled();
        assert.equal(attempts, 1, "and then for the restart");
        await clock.advance(restartDelay(verdict));
        supervisor.restarted();
        assert.equal(await delivered.promise, "answer");
        assert.equal(attempts, 2);
        assert.equal(retries, 1);
    });

    test("a request is sent again only once, and only when it was not sent", async () => {
        const supervisor = new CrashSupervisor(new FakeClock());
        let attempts = 0;
        await assert.rejects(
            supervisor.deliver(
                async () => {
                    attempts++;
                    throw new NotSent(`attempt ${attempts}`);
                },
                notSent,
                () => false,
            ),
            /attempt 2/,
        );
        assert.equal(attempts, 2);

        let failures = 0;
        await assert.rejects(
            supervisor.deliver(
                async () => {
                    failures++;
                    throw new Error("the model refused");
                },
                notSent,
                () => false,
            ),
            /the model refused/,
        );
        assert.equal(failures, 1, "a request that reached the process is not sent twice");
    });

    test("if the exit is never reported, the retry goes after a timeout", async () => {
        const clock = new FakeClock();
        const supervisor = new CrashSupervisor(clock);
        let attempts = 0;
        const delivered = tracked(
            supervisor.deliver(
                async () => {
                    attempts++;
                    if (attempts === 1) throw new NotSent("connection inactive");
                    return attempts;
                },
                notSent,
                () => true,
            ),
        );
        await settled();
        assert.equal(attempts, 1);
        await clock.advance(EXIT_NOTICE_TIMEOUT_MS - 1);
        assert.equal(delivered.done(), false);
        await clock.advance(1);
        assert.equal(await delivered.promise, 2);
    });
});
