// The restart policy for the model process, apart from the process itself: whether a crash means
// "restart after a delay" or "give up", the gate that requests wait at while a restart is under
// way, and the one retry of a request that never reached a process that had just died. No vscode
// and no timers of its own: the clock is injected, so its unit tests run in milliseconds.

export interface Clock {
    now(): number;
    sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
    now: () => Date.now(),
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

/** This many crashes within CRASH_WINDOW_MS, and the process is not restarted until the user asks. */
export const MAX_CRASHES = 5;
export const CRASH_WINDOW_MS = 3 * 60_000;
/** The wait before the first restart; it doubles with each crash in the window. */
export const FIRST_RESTART_DELAY_MS = 250;
/** How long a request that was not sent waits for the client to notice that its process died. */
export const EXIT_NOTICE_TIMEOUT_MS = 5000;

export type CrashVerdict =
    | { action: "restart"; crashes: number; delayMs: number; backoff: Promise<void> }
    | { action: "giveUp"; crashes: number; message: string };

export class CrashSupervisor {
    /** When each crash within the window happened. */
    private readonly crashes: number[] = [];
    /** Open from a crash until the process runs again: requests wait here. */
    private restart?: Deferred;
    /** Resolved when the next crash is handled: a request that was not sent waits for it. */
    private exitNoticed?: Deferred;
    private gaveUpMessage?: string;

    constructor(private readonly clock: Clock = systemClock) {}

    /** Set after repeated crashes, until `reset`: the reason, for the user. */
    get gaveUp(): string | undefined {
        return this.gaveUpMessage;
    }

    get restarting(): boolean {
        return this.restart !== undefined;
    }

    /**
     * The process died: counts the crash and decides. For a restart, new requests wait from now
     * until `restarted`; the verdict's `backoff` resolves when the process may be started again.
     */
    crashed(): CrashVerdict {
        const now = this.clock.now();
        this.crashes.push(now);
        while (now - this.crashes[0] > CRASH_WINDOW_MS) this.crashes.shift();
        const crashes = this.crashes.length;
        if (crashes >= MAX_CRASHES) {
            this.gaveUpMessage = `The OLMo model process crashed ${crashes} times in 3 minutes and will not be restarted.`;
            this.restarted();
            return { action: "giveUp", crashes, message: this.gaveUpMessage };
        }
        this.restart ??= deferred();
        this.noticeExit();
        const delayMs = FIRST_RESTART_DELAY_MS * 2 ** (crashes - 1);
        return { action: "restart", crashes, delayMs, backoff: this.clock.sleep(delayMs) };
    }

    /** The process runs again, or could not be started: requests stop waiting. */
    restarted(): void {
        this.restart?.resolve();
        this.restart = undefined;
        this.noticeExit();
    }

    /** Resolves when no restart is under way. */
    async restartDone(): Promise<void> {
        await this.restart?.promise;
    }

    /** The user asked for a fresh start: forget the crashes and the give-up. */
    reset(): void {
        this.crashes.length = 0;
        this.gaveUpMessage = undefined;
        this.restarted();
    }

    /**
     * Runs `attempt`, and once more if its request was not sent because the process had just died
     * (killed a moment before, its exit not yet handled): nothing ran, so it goes again once the
     * crash is handled, to the restarted process. `notSent` tells such a failure;
     * `processLooksAlive` whether the client still takes the dead process for running (then the
     * retry waits for the crash to be handled, at most EXIT_NOTICE_TIMEOUT_MS).
     */
    async deliver<T>(
        attempt: () => Promise<T>,
        notSent: (error: unknown) => boolean,
        processLooksAlive: () => boolean,
        onRetry?: () => void,
    ): Promise<T> {
        try {
            return await attempt();
        } catch (error) {
            if (!notSent(error)) throw error;
            onRetry?.();
            if (!this.restart && !this.gaveUpMessage && processLooksAlive()) {
                this.exitNoticed ??= deferred();
                await Promise.race([
                    this.exitNoticed.promise,
                    this.clock.sleep(EXIT_NOTICE_TIMEOUT_MS),
                ]);
            }
            return attempt();
        }
    }

    private noticeExit(): void {
        this.exitNoticed?.resolve();
        this.exitNoticed = undefined;
    }
}

interface Deferred {
    promise: Promise<void>;
    resolve: () => void;
}

function deferred(): Deferred {
    let resolve = () => {};
    const promise = new Promise<void>((r) => (resolve = r));
    return { promise, resolve };
}
