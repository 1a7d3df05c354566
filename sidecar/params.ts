// Checks the parameters of every olmo/* request where they enter the sidecar, so that the engine
// only ever sees well-typed values. Each check returns a fresh value holding only the known
// fields, or throws invalidParams naming the field, what it must be and what it was.
import { SidecarError } from "./errors.js";
import {
    MAX_TEXT_CHARS,
    type ChatMessage,
    type LoadParams,
    type LocalLoadParams,
    type ModelSource,
    type ParamsOf,
    type RequestMethod,
    type Role,
    type Sampling,
    type ServerLoadParams,
    type ServerTarget,
} from "./protocol.js";

/** llama.cpp's limit on sequences per context. */
export const MAX_SEQUENCES = 256;

type Check<T> = (value: unknown, path: string) => T;

function invalid(path: string, expected: string, value: unknown): never {
    throw new SidecarError(
        "invalidParams",
        `${path} must be ${expected} (got ${describe(value)}).`,
    );
}

function describe(value: unknown): string {
    if (value === undefined) return "nothing";
    if (value === null) return "null";
    if (Array.isArray(value)) return "a list";
    if (typeof value === "string")
        return `the string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + "…" : value)}`;
    if (typeof value === "object") return "an object";
    return `${typeof value} ${String(value)}`;
}

const string =
    (options: { nonEmpty?: boolean } = {}): Check<string> =>
    (value, path) =>
        typeof value === "string" && (!options.nonEmpty || value.length > 0)
            ? value
            : invalid(path, options.nonEmpty ? "a non-empty string" : "a string", value);

const integer =
    (min: number, max: number): Check<number> =>
    (value, path) =>
        Number.isSafeInteger(value) && (value as number) >= min && (value as number) <= max
            ? (value as number)
            : invalid(path, `a whole number from ${min} to ${max}`, value);

const boolean: Check<boolean> = (value, path) =>
    typeof value === "boolean" ? value : invalid(path, "true or false", value);

const number =
    (min: number, max: number): Check<number> =>
    (value, path) =>
        typeof value === "number" && Number.isFinite(value) && value >= min && value <= max
            ? value
            : invalid(path, `a number from ${min} to ${max}`, value);

const oneOf =
    <T extends string>(...choices: T[]): Check<T> =>
    (value, path) =>
        choices.includes(value as T)
            ? (value as T)
            : invalid(path, `one of ${choices.map((c) => JSON.stringify(c)).join(", ")}`, value);

const either =
    <A, B>(a: Check<A>, b: Check<B>, expected: string): Check<A | B> =>
    (value, path) => {
        for (const check of [a, b]) {
            try {
                return check(value, path);
            } catch {
                // try the other
            }
        }
        return invalid(path, expected, value);
    };

/** An absent field stays absent; null is not absent (the extension never sends it). */
const optional =
    <T>(check: Check<T>): Check<T | undefined> =>
    (value, path) =>
        value === undefined ? undefined : check(value, path);

function isRecord(value: unknown): value is Record<string, unknown> {
    return typeof value === "object" && value !== null && !Array.isArray(value);
}

type Shape<T> = { [K in keyof T]-?: Check<T[K]> };

function object<T>(shape: Shape<T>): Check<T> {
    return (value, path) => {
        if (!isRecord(value)) return invalid(path, "an object", value);
        const result: Record<string, unknown> = {};
        for (const [key, check] of Object.entries(shape) as Array<[string, Check<unknown>]>) {
            const field = check(value[key], `${path}.${key}`);
            if (field !== undefined) result[key] = field;
        }
        return result as T;
    };
}

const list =
    <T>(item: Check<T>, options: { nonEmpty?: boolean } = {}): Check<T[]> =>
    (value, path) => {
        if (!Array.isArray(value) || (options.nonEmpty && value.length === 0))
            return invalid(path, options.nonEmpty ? "a non-empty list" : "a list", value);
        return value.map((v, i) => item(v, `${path}[${i}]`));
    };

const record =
    <T>(item: Check<T>): Check<Record<string, T>> =>
    (value, path) => {
        if (!isRecord(value)) return invalid(path, "an object", value);
        return Object.fromEntries(
            Object.entries(value).map(([k, v]) => [k, item(v, `${path}[${JSON.stringify(k)}]`)]),
        );
    };

const message = object<ChatMessage>({
    role: oneOf<Role>("system", "user", "assistant"),
    content: string(),
});
const messages = list(message);
const chatMessages: Check<ChatMessage[]> = (value, path) => {
    const checked = list(message, { nonEmpty: true })(value, path);
    if (checked[checked.length - 1].role !== "user") {
        throw new SidecarError(
            "invalidParams",
            `${path}: the last message must be the user's (got "${checked[checked.length - 1].role}").`,
        );
    }
    return checked;
};
const sampling = optional(
    object<Sampling>({
        temperature: optional(number(0, 100)),
        topP: optional(number(0, 1)),
        maxTokens: optional(integer(1, 1 << 20)),
        seed: optional(integer(0, 2 ** 32 - 1)),
        tokenBias: optional(record(number(-1000, 1000))),
    }),
);
const progressToken = optional(
    either(string(), integer(-(2 ** 31), 2 ** 31 - 1), "a string or a whole number"),
);
/** Methods without parameters accept none, or any object. */
const nothing: Check<Record<string, never>> = (value, path) =>
    value === undefined || isRecord(value) ? {} : invalid(path, "an object or nothing", value);
const modelSource = {
    endpoint: optional(string({ nonEmpty: true })),
    repo: string({ nonEmpty: true }),
    file: string({ nonEmpty: true }),
    revision: optional(string({ nonEmpty: true })),
};

const localLoad = object<LocalLoadParams>({
    modelPath: string(),
    gpu: optional(oneOf("auto", "cuda", "vulkan", "metal", "cpu")),
    gpuLayers: optional(
        either(oneOf("auto"), integer(0, 10_000), `"auto" or a whole number from 0`),
    ),
    contextSize: optional(integer(1, 1 << 20)),
    threads: optional(integer(0, 1024)),
    sequences: optional(integer(1, MAX_SEQUENCES)),
});
const serverLoad = object<ServerLoadParams>({
    server: object<ServerTarget>({
        url: string({ nonEmpty: true }),
        apiKey: optional(string({ nonEmpty: true })),
        model: optional(string({ nonEmpty: true })),
    }),
    contextSize: optional(integer(1, 1 << 20)),
});

const checks: { [M in RequestMethod]: Check<ParamsOf<M>> } = {
    "olmo/load": (value, path): LoadParams =>
        isRecord(value) && value.server !== undefined
            ? serverLoad(value, path)
            : localLoad(value, path),
    "olmo/unload": nothing,
    "olmo/modelInfo": nothing,
    "olmo/chat": object({
        conversationId: string({ nonEmpty: true }),
        messages: chatMessages,
        sampling,
        caller: optional(string({ nonEmpty: true })),
        speculative: optional(boolean),
        partialResultToken: progressToken,
    }),
    "olmo/explain": object({
        conversationId: string({ nonEmpty: true }),
        history: optional(messages),
        code: string(),
        language: string(),
        fileName: optional(string()),
        lines: optional(string()),
        instruction: optional(string()),
        sampling,
        speculative: optional(boolean),
        partialResultToken: progressToken,
    }),
    "olmo/rewrite": object({
        code: string(),
        language: string(),
        fileName: optional(string()),
        instruction: string(),
        sampling,
        speculative: optional(boolean),
        partialResultToken: progressToken,
    }),
    "olmo/countTokens": (value, path) => {
        const params = object({ messages: optional(messages), text: optional(string()) })(
            value,
            path,
        );
        if ((params.messages === undefined) === (params.text === undefined)) {
            throw new SidecarError(
                "invalidParams",
                `${path} needs exactly one of messages and text.`,
            );
        }
        return params;
    },
    "olmo/formatPrompt": object({ messages }),
    "olmo/inspectModel": (value, path) => {
        const params = object({
            path: optional(string({ nonEmpty: true })),
            source: optional(object<ModelSource>(modelSource)),
            contextSize: optional(integer(1, 1 << 20)),
        })(value, path);
        if ((params.path === undefined) === (params.source === undefined))
            throw new SidecarError(
                "invalidParams",
                `${path} needs exactly one of path and source.`,
            );
        return params;
    },
    "olmo/download": object({
        ...modelSource,
        directory: string({ nonEmpty: true }),
        partialResultToken: progressToken,
    }),
};

/** The request's parameters, checked; throws invalidParams or, for too much text, contextOverflow. */
export function checkParams<M extends RequestMethod>(method: M, value: unknown): ParamsOf<M> {
    const params = checks[method](value, "params");
    const chars = textLength(params);
    if (chars > MAX_TEXT_CHARS) {
        throw new SidecarError(
            "contextOverflow",
            `The request carries ${(chars / 1024 / 1024).toFixed(1)} MB of text, far more than the model's context can hold ` +
                `(about 16 KB of text for 4096 tokens). Shorten it.`,
        );
    }
    return params;
}

/** Characters in all the strings of a checked value (plain objects and lists only). */
function textLength(value: unknown): number {
    if (typeof value === "string") return value.length;
    if (Array.isArray(value)) return value.reduce((n: number, v) => n + textLength(v), 0);
    if (isRecord(value)) return Object.values(value).reduce((n: number, v) => n + textLength(v), 0);
    return 0;
}
