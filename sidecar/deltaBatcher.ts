// Coalesces streamed text so the JSON-RPC traffic does not grow with the token rate: the first
// delta goes out at once (time to first token), later ones at most once per interval.
import type { ChatDelta } from "./protocol.js";

export class DeltaBatcher {
    private pending: ChatDelta | undefined;
    private timer: ReturnType<typeof setTimeout> | undefined;
    private lastSent = -Infinity;

    constructor(
        private readonly send: (delta: ChatDelta) => void,
        private readonly intervalMs = 16,
        private readonly now: () => number = () => performance.now(),
    ) {}

    /** Appends text, or with `replace` starts over from this text. */
    push(delta: ChatDelta): void {
        if (delta.text === "" && !delta.replace) return;
        this.pending =
            delta.replace || !this.pending
                ? { ...delta }
                : { ...this.pending, text: this.pending.text + delta.text };
        const wait = this.lastSent + this.intervalMs - this.now();
        if (wait <= 0) this.flush();
        else this.timer ??= setTimeout(() => this.flush(), wait);
    }

    /** Sends whatever is pending; call before answering the request so no delta trails the result. */
    flush(): void {
        if (this.timer !== undefined) clearTimeout(this.timer);
        this.timer = undefined;
        if (!this.pending) return;
        const delta = this.pending;
        this.pending = undefined;
        this.lastSent = this.now();
        this.send(delta);
    }
}
