// What the request handlers (main.ts) need of an engine: the local one (engine.ts, node-llama-cpp)
// and the remote one (remoteEngine.ts, an inference server) both provide it, chosen at load.
import type {
    ChatMessage,
    ChatResult,
    CountTokensResult,
    FormatPromptResult,
    ModelInfo,
    Sampling,
} from "./protocol.js";
import { SidecarError } from "./errors.js";
import type { CancelSignal } from "./scheduler.js";

export interface ModelEngine {
    /** The loaded model, or null. */
    readonly modelInfo: ModelInfo | null;
    /**
     * The assistant's answer to `messages`, streamed to `onDelta`; cancelling returns what came so
     * far with stop reason `cancelled`. `caller`: another extension's id (vscode.lm), which waits
     * behind the user's own requests (scheduler.ts). `promptLookup` asks for prompt-lookup drafts
     * where the engine has them (the local one; a server decodes as it does).
     */
    chat(
        conversationId: string,
        messages: readonly ChatMessage[],
        sampling: Sampling,
        onDelta: (text: string) => void,
        cancel: CancelSignal,
        options?: { caller?: string; promptLookup?: boolean },
    ): Promise<ChatResult>;
    /** A rewrite: a one-off conversation; `speculative` asks for prompt-lookup drafts where supported. */
    rewrite(
        conversationId: string,
        messages: readonly ChatMessage[],
        sampling: Sampling,
        onDelta: (text: string) => void,
        cancel: CancelSignal,
        speculative?: boolean,
    ): Promise<ChatResult>;
    countTokens(input: {
        messages?: readonly ChatMessage[];
        text?: string;
    }): CountTokensResult | Promise<CountTokensResult>;
    formatPrompt(
        messages: readonly ChatMessage[],
    ): FormatPromptResult | Promise<FormatPromptResult>;
    /** Frees the model: waiting requests fail, running ones stop. */
    unload(): Promise<void>;
    dispose(): Promise<void>;
}

/** Loads one after another: each starts once the one before has settled, whatever its outcome. */
export class LoadChain {
    private last: Promise<unknown> = Promise.resolve();

    run<T>(load: () => Promise<T>): Promise<T> {
        const run = this.last.then(load, load);
        this.last = run.catch(() => undefined);
        return run;
    }
}

/**
 * The requests generating now. Stop (their cancellation) aborts one, which ends as stopped; an
 * unload aborts them all with an error, which they end with: a load replacing the model is not the
 * user's Stop, and the answer must not look like one.
 */
export class RunningRequests {
    private readonly running = new Set<AbortController>();

    /** The abort signal of a request that starts now; call `end` when it is over. */
    start(cancel: CancelSignal): { signal: AbortSignal; end: () => void } {
        const abort = new AbortController();
        this.running.add(abort);
        const listener = cancel.onCancellationRequested(() => abort.abort());
        if (cancel.isCancellationRequested) abort.abort();
        return {
            signal: abort.signal,
            end: () => {
                listener.dispose();
                this.running.delete(abort);
            },
        };
    }

    unloaded(): void {
        const reason = new SidecarError(
            "modelNotLoaded",
            "The model was unloaded while answering (another model was loaded, or the model process is stopping): try again.",
        );
        for (const abort of this.running) abort.abort(reason);
    }
}

/** Throws the error an unload ended the request with; a Stop ends it without one. */
export function throwIfUnloaded(signal: AbortSignal): void {
    if (signal.aborted && signal.reason instanceof SidecarError) throw signal.reason;
}
