// Conversations' evaluated KV state, kept across interleaving when there are more conversations
// than sequences: when another conversation takes a sequence, the one leaving is saved to a file
// (node-llama-cpp's saveStateToFile) and loaded back at its next turn, so that turn evaluates only
// its new tokens. Only while that is cheaper than evaluating again: writing and reading the state
// against the prefill rate, both as measured on this machine.
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LlamaContextSequence } from "node-llama-cpp";

/** States kept at once (each up to a context's KV cache: 3.2 GiB for the 13B at 4096 tokens). */
export const MAX_SAVED_STATES = 4;

export class SavedStates {
    private directory?: Promise<string>;
    /** Oldest first. */
    private readonly saved = new Map<string, string>();
    private files = 0;
    /** Measured: prompt tokens evaluated per ms, state bytes written per ms, state bytes per token. */
    private prefillTokensPerMs?: number;
    private writeBytesPerMs?: number;
    private bytesPerToken?: number;

    /** A generation evaluated `tokens` prompt tokens in `ms` (to its first token). */
    notePrefill(tokens: number, ms: number): void {
        if (tokens >= 16 && ms > 0) this.prefillTokensPerMs = tokens / ms;
    }

    /**
     * Writing a state and reading it back (taken as costing the write again) against evaluating its
     * tokens again. Until both are measured it is tried: the first save measures the write.
     */
    get worthSaving(): boolean {
        const { prefillTokensPerMs, writeBytesPerMs, bytesPerToken } = this;
        if (!prefillTokensPerMs || !writeBytesPerMs || !bytesPerToken) return true;
        return (2 * bytesPerToken) / writeBytesPerMs < 1 / prefillTokensPerMs;
    }

    /**
     * Saves what `sequence` holds of `conversationId` before another conversation takes it, and
     * says what that cost (nothing when there was nothing to save, or saving does not pay).
     */
    async save(
        conversationId: string,
        sequence: LlamaContextSequence,
    ): Promise<{ tokens: number; bytes: number; ms: number } | undefined> {
        const tokens = sequence.contextTokens.length;
        if (tokens === 0 || !this.worthSaving) return undefined;
        this.directory ??= stateDirectory();
        const file = join(await this.directory, `${++this.files}.state`);
        const started = performance.now();
        const { fileSize } = await sequence.saveStateToFile(file);
        const ms = performance.now() - started;
        this.writeBytesPerMs = fileSize / Math.max(ms, 0.01);
        this.bytesPerToken = fileSize / tokens;
        await this.forget(conversationId);
        this.saved.set(conversationId, file);
        for (const oldest of this.saved.keys()) {
            if (this.saved.size <= MAX_SAVED_STATES) break;
            await this.forget(oldest);
        }
        return { tokens, bytes: fileSize, ms };
    }

    /**
     * Loads the conversation's saved state into `sequence` (whose history is clear), if there is
     * one. A state that fails to load costs only the reuse: the sequence is left clear.
     */
    async restore(conversationId: string, sequence: LlamaContextSequence): Promise<void> {
        const file = this.saved.get(conversationId);
        if (!file) return;
        this.saved.delete(conversationId);
        try {
            // The files are this process's own, of the model loaded now (clear() runs on unload).
            await sequence.loadStateFromFile(file, { acceptRisk: true });
        } catch {
            await sequence.clearHistory();
        } finally {
            await rm(file, { force: true });
        }
    }

    private async forget(conversationId: string): Promise<void> {
        const file = this.saved.get(conversationId);
        this.saved.delete(conversationId);
        if (file) await rm(file, { force: true });
    }

    /** Deletes every saved state: they belong to the model being unloaded. */
    async clear(): Promise<void> {
        const directory = this.directory;
        this.directory = undefined;
        this.saved.clear();
        this.prefillTokensPerMs = this.writeBytesPerMs = this.bytesPerToken = undefined;
        if (directory) await rm(await directory, { recursive: true, force: true });
    }
}

const STATE_DIRECTORY_PREFIX = "olmo-local-state-";

/**
 * A new folder for this process's states, named with its pid. Folders of processes that are gone
 * (a sidecar killed before it could clear them) are deleted first: they hold conversations' content
 * and can be gigabytes.
 */
export async function stateDirectory(): Promise<string> {
    const entries = await readdir(tmpdir()).catch(() => [] as string[]);
    for (const name of entries) {
        const pid = Number(new RegExp(`^${STATE_DIRECTORY_PREFIX}(\\d+)-`).exec(name)?.[1]);
        if (pid && pid !== process.pid && !isAlive(pid))
            await rm(join(tmpdir(), name), { recursive: true, force: true });
    }
    return mkdtemp(join(tmpdir(), `${STATE_DIRECTORY_PREFIX}${process.pid}-`));
}

function isAlive(pid: number): boolean {
    try {
        process.kill(pid, 0);
        return true;
    } catch (error) {
        // EPERM: alive, but another user's.
        return (error as NodeJS.ErrnoException).code === "EPERM";
    }
}
