import { ErrorCodes, type ErrorCode, type ErrorData } from "./protocol.js";

/** An error with a stable protocol code and a message a user can act on. */
export class SidecarError extends Error {
    constructor(
        public readonly code: ErrorCode,
        message: string,
        /** serverOverloaded: when the server said to retry. */
        public readonly retryAfterMs?: number,
    ) {
        super(message);
    }
    get rpcCode(): number {
        return ErrorCodes[this.code];
    }
    get data(): ErrorData {
        return this.retryAfterMs === undefined
            ? { code: this.code }
            : { code: this.code, retryAfterMs: this.retryAfterMs };
    }
}

const MEMORY_PATTERNS =
    /out of memory|failed to allocate|insufficient memory|cudaMalloc|ErrorOutOfDeviceMemory|not enough memory/i;

export function isMemoryError(error: unknown): boolean {
    if (error == null) return false;
    const name = (error as Error).name ?? "";
    return (
        name === "InsufficientMemoryError" ||
        MEMORY_PATTERNS.test(String((error as Error).message ?? error))
    );
}

export function errorText(error: unknown): string {
    return error instanceof Error ? error.message : String(error);
}
