// Malformed input on the sidecar's stdin, generated from a seed: bad framing, bad JSON, bad UTF-8,
// unknown methods, wrong parameter types, huge strings, hostile notifications. Valid
// olmo/countTokens requests are interleaved in the same byte stream, and the bytes arrive in
// random-sized writes. Every well-framed request with an id must be answered (with the expected
// error code where there is one), every valid request answered correctly, and after each batch
// the process must be alive and answer; stdout must carry nothing but frames.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ResponseError } from "vscode-jsonrpc/node";
import { ErrorCodes, MAX_TEXT_CHARS } from "../../sidecar/protocol.js";
import { MAX_HEADER_BYTES, MAX_MESSAGE_BYTES } from "../../sidecar/frameReader.js";
import { parseFrames, SidecarProcess, type RawResponse } from "../support/sidecarProcess.js";
import { ensureTestModel } from "../support/models.js";
import { Rng } from "../support/olmo2-model.js";

const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed);
const BATCHES = 25;
const BAD_FRAMES_PER_BATCH = 24;
const VALID_EVERY = 4;
/** How long a well-framed request may take to be answered before the test calls it lost. */
const ANSWER_TIMEOUT_MS = 30_000;

const JSONRPC = {
    methodNotFound: -32601,
    invalidRequest: -32600,
    invalidParams: ErrorCodes.invalidParams,
};
const VALID_TEXTS = ["hello world", 'fn main() { println!("hi"); }', "Grüße, мир, 世界 🌍", ""];

/** `code`: the error it must get; "answer": any response; absent: nothing is owed (malformed frame). */
interface Fuzzed {
    bytes: Buffer;
    kind: string;
    id?: string;
    expect?: number | "answer";
}

function frame(body: string | Buffer, header?: string): Buffer {
    const bytes = typeof body === "string" ? Buffer.from(body, "utf8") : body;
    return Buffer.concat([
        Buffer.from(header ?? `Content-Length: ${bytes.length}\r\n\r\n`, "latin1"),
        bytes,
    ]);
}

function request(id: unknown, method: string, params?: unknown): string {
    return JSON.stringify({
        jsonrpc: "2.0",
        id,
        method,
        ...(params === undefined ? {} : { params }),
    });
}

/** Parameters each of which is wrong in one way (never valid: a valid olmo/load or olmo/download would act). */
const WRONG_PARAMS: Array<[string, unknown]> = [
    ["olmo/countTokens", { text: 5 }],
    ["olmo/countTokens", { messages: "hello" }],
    ["olmo/countTokens", {}],
    ["olmo/countTokens", { text: "a", messages: [] }],
    ["olmo/countTokens", null],
    ["olmo/countTokens", "text"],
    ["olmo/countTokens", [1, 2]],
    ["olmo/countTokens", undefined],
    ["olmo/formatPrompt", { messages: null }],
    ["olmo/formatPrompt", { messages: [{ role: "user" }] }],
    ["olmo/chat", { conversationId: 5, messages: [{ role: "user", content: "hi" }] }],
    ["olmo/chat", { conversationId: "c", messages: "hello" }],
    ["olmo/chat", { conversationId: "c", messages: [] }],
    ["olmo/chat", { conversationId: "c", messages: [{ role: "robot", content: "hi" }] }],
    ["olmo/chat", { conversationId: "c", messages: [{ role: "user", content: 42 }] }],
    [
        "olmo/chat",
        { conversationId: "c", messages: [{ role: "assistant", content: "last is not the user" }] },
    ],
    [
        "olmo/chat",
        {
            conversationId: "c",
            messages: [{ role: "user", content: "hi" }],
            sampling: { maxTokens: "5" },
        },
    ],
    [
        "olmo/chat",
        {
            conversationId: "c",
            messages: [{ role: "user", content: "hi" }],
            sampling: { temperature: "hot" },
        },
    ],
    [
        "olmo/chat",
        {
            conversationId: "c",
            messages: [{ role: "user", content: "hi" }],
            sampling: { seed: -1 },
        },
    ],
    [
        "olmo/chat",
        {
            conversationId: "c",
            messages: [{ role: "user", content: "hi" }],
            sampling: { tokenBias: { a: "x" } },
        },
    ],
    [
        "olmo/chat",
        {
            conversationId: "c",
            messages: [{ role: "user", content: "hi" }],
            partialResultToken: {},
        },
    ],
    ["olmo/chat", { conversationId: "", messages: [{ role: "user", content: "hi" }] }],
    ["olmo/explain", { conversationId: "c", language: "js" }],
    ["olmo/explain", { conversationId: "c", code: "x", language: "js", history: "none" }],
    ["olmo/rewrite", { code: "x", language: "js" }],
    ["olmo/rewrite", { code: ["x"], language: "js", instruction: "y" }],
    ["olmo/load", { modelPath: 5 }],
    ["olmo/load", { modelPath: "/x.gguf", gpu: "tpu" }],
    ["olmo/load", { modelPath: "/x.gguf", contextSize: "4096" }],
    ["olmo/load", { modelPath: "/x.gguf", sequences: 0 }],
    ["olmo/load", { modelPath: "/x.gguf", gpuLayers: -1 }],
    ["olmo/load", { modelPath: "/x.gguf", threads: 1.5 }],
    ["olmo/load", null],
    ["olmo/load", { server: { url: 5 } }],
    ["olmo/load", { server: { url: "" } }],
    ["olmo/load", { server: "http://127.0.0.1:1" }],
    ["olmo/load", { server: { url: "http://127.0.0.1:1", apiKey: 1 } }],
    ["olmo/load", { server: { url: "http://127.0.0.1:1" }, contextSize: 0 }],
    ["olmo/unload", 5],
    ["olmo/modelInfo", "now"],
    ["olmo/inspectModel", {}],
    ["olmo/inspectModel", { path: 5 }],
    ["olmo/download", { repo: 5, file: "x.gguf", directory: "/tmp" }],
    ["olmo/download", { repo: "a/b", file: "x.gguf" }],
];

class Fuzzer {
    private n = 0;
    constructor(private readonly rng: Rng) {}

    int(max: number): number {
        return this.rng.nextU32() % max;
    }
    pick<T>(items: readonly T[]): T {
        return items[this.int(items.length)];
    }
    private id(): string {
        return `f-${++this.n}`;
    }
    private countTokens(id: string): string {
        return request(id, "olmo/countTokens", { text: this.pick(VALID_TEXTS) });
    }

    /** One bad frame, of a randomly chosen kind. */
    next(): Fuzzed {
        const kinds: Array<() => Fuzzed> = [
            () => {
                const body = Buffer.from(this.countTokens(this.id()));
                return {
                    kind: "Content-Length too short",
                    bytes: frame(body, `Content-Length: ${1 + this.int(body.length - 1)}\r\n\r\n`),
                };
            },
            () => {
                const body = Buffer.from(this.countTokens(this.id()));
                return {
                    kind: "Content-Length too long",
                    bytes: frame(
                        body,
                        `Content-Length: ${body.length + 1 + this.int(300)}\r\n\r\n`,
                    ),
                };
            },
            () => ({
                kind: "negative Content-Length",
                bytes: frame(
                    this.countTokens(this.id()),
                    `Content-Length: -${1 + this.int(100)}\r\n\r\n`,
                ),
            }),
            () => {
                const value = this.pick([
                    "abc",
                    "1e3",
                    "0x10",
                    "12.5",
                    "",
                    "+12",
                    "١٢",
                    "99999999999999999999",
                    "4294967296",
                    "NaN",
                ]);
                return {
                    kind: "non-numeric Content-Length",
                    bytes: frame(this.countTokens(this.id()), `Content-Length: ${value}\r\n\r\n`),
                };
            },
            () => ({
                kind: "Content-Length over the limit",
                bytes: frame(
                    this.countTokens(this.id()),
                    `Content-Length: ${MAX_MESSAGE_BYTES + 1 + this.int(1000)}\r\n\r\n`,
                ),
            }),
            () => ({
                kind: "two Content-Length headers",
                bytes: frame(
                    this.countTokens(this.id()),
                    "Content-Length: 5\r\nContent-Length: 7\r\n\r\n",
                ),
            }),
            () => ({ kind: "Content-Length: 0", bytes: frame("", "Content-Length: 0\r\n\r\n") }),
            () => {
                const body = this.countTokens(this.id());
                const crlf = this.pick(["\r\n", "", "\n\n", "\r\r"]);
                return {
                    kind: "missing header terminator",
                    bytes: frame(body, `Content-Length: ${Buffer.byteLength(body)}${crlf}`),
                };
            },
            () => ({
                kind: "oversize header of junk",
                bytes: frame("{}", `${"x".repeat(MAX_HEADER_BYTES + this.int(20000))}\r\n\r\n`),
            }),
            () => {
                // Junk before a real header is skipped: the request behind it is read and answered.
                const id = this.id();
                const body = request(id, "fuzz/unknown");
                return {
                    kind: "oversize header field",
                    id,
                    expect: JSONRPC.methodNotFound,
                    bytes: frame(
                        body,
                        `X-Pad: ${"a".repeat(MAX_HEADER_BYTES + this.int(20000))}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`,
                    ),
                };
            },
            () => ({
                kind: "header line without a colon",
                bytes: frame(this.countTokens(this.id()), "Content-Length 20\r\n\r\n"),
            }),
            () => ({
                kind: "random bytes",
                bytes: Buffer.from(Array.from({ length: 1 + this.int(600) }, () => this.int(256))),
            }),
            () => {
                const id = this.id();
                const body = this.pick([
                    `{"jsonrpc":"2.0","id":"${id}","method":`,
                    `{"jsonrpc":"2.0","id":"${id}",}`,
                    `{'id': 1}`,
                    `{"a":1}}`,
                    "{",
                    "[[[[",
                    `{"id":"${id}" "method":"x"}`,
                ]);
                return { kind: "invalid JSON", bytes: frame(body) };
            },
            () => {
                const bad = this.pick([
                    [0xff, 0xfe],
                    [0xc0, 0x80],
                    [0x80],
                    [0xf0, 0x9f, 0x98],
                    [0xed, 0xa0, 0x80],
                ]);
                const id = this.id();
                const [head, tail] = request(id, "olmo/countTokens", { text: "a\u0001b" }).split(
                    "\\u0001",
                );
                // Invalid UTF-8 inside a string is read as U+FFFD: the request is answered.
                return {
                    kind: "invalid UTF-8 in a string",
                    id,
                    expect: "answer",
                    bytes: frame(
                        Buffer.concat([Buffer.from(head), Buffer.from(bad), Buffer.from(tail)]),
                    ),
                };
            },
            () => ({
                kind: "invalid UTF-8 outside strings",
                bytes: frame(
                    Buffer.concat([
                        Buffer.from('{"jsonrpc":"2.0",'),
                        Buffer.from([0xff, 0xfe]),
                        Buffer.from(":1}"),
                    ]),
                ),
            }),
            () => {
                const id = this.id();
                return {
                    kind: "unknown method",
                    id,
                    expect: JSONRPC.methodNotFound,
                    bytes: frame(
                        request(
                            id,
                            this.pick([
                                "fuzz/method",
                                "olmo/nope",
                                "olmo/",
                                "$/nothing",
                                "OLMO/CHAT",
                                "olmo/chat ",
                            ]),
                            {},
                        ),
                    ),
                };
            },
            () => {
                const id = this.id();
                const [method, params] = this.pick(WRONG_PARAMS);
                return {
                    kind: `wrong params for ${method}`,
                    id,
                    expect: JSONRPC.invalidParams,
                    bytes: frame(request(id, method, params)),
                };
            },
            () => {
                const id = this.id();
                return {
                    kind: "positional params",
                    id,
                    expect: "answer",
                    bytes: frame(request(id, "olmo/countTokens", [{ text: "hi" }])),
                };
            },
            () => {
                const id = this.id();
                return {
                    kind: "no method",
                    id,
                    expect: JSONRPC.invalidRequest,
                    bytes: frame(JSON.stringify({ jsonrpc: "2.0", id, params: {} })),
                };
            },
            () => ({
                kind: "id of the wrong type",
                bytes: frame(
                    request(this.pick([null, { a: 1 }, [1], true]), "olmo/countTokens", {
                        text: "x",
                    }),
                ),
            }),
            () => ({
                kind: "not an object",
                bytes: frame(
                    this.pick([
                        "[]",
                        "5",
                        '"text"',
                        "null",
                        "true",
                        `[${this.countTokens(this.id())}]`,
                    ]),
                ),
            }),
            () => {
                const method = this.pick([
                    "$/cancelRequest",
                    "$/setTrace",
                    "$/progress",
                    "fuzz/notify",
                    "initialized",
                    "$/cancelRequest",
                ]);
                const params = this.pick([
                    null,
                    {},
                    { id: null },
                    { id: { x: 1 } },
                    "x",
                    5,
                    { value: "verbose" },
                    { token: null, value: 1 },
                    undefined,
                ]);
                return {
                    kind: "hostile notification",
                    bytes: frame(
                        JSON.stringify({
                            jsonrpc: "2.0",
                            method,
                            ...(params === undefined ? {} : { params }),
                        }),
                    ),
                };
            },
            () => {
                const id = this.id();
                const body = Buffer.from(this.countTokens(id));
                const header = `Content-Type: application/vscode-jsonrpc; charset=utf-8\r\ncontent-length: ${body.length}\r\n\r\n`;
                return {
                    kind: "valid frame with a lower-case header and a Content-Type",
                    id,
                    expect: "answer",
                    bytes: frame(body, header),
                };
            },
        ];
        // Rare and large: a 10 MB string, refused as too much text before any tokenizing.
        if (this.int(100) === 0) {
            const id = this.id();
            const text = "z".repeat(MAX_TEXT_CHARS * 10);
            const bytes =
                this.int(2) === 0
                    ? frame(request(id, "olmo/countTokens", { text }))
                    : frame(
                          request(id, "olmo/chat", {
                              conversationId: "huge",
                              messages: [{ role: "user", content: text }],
                          }),
                      );
            return { kind: "10 MB string", id, expect: ErrorCodes.contextOverflow, bytes };
        }
        return this.pick(kinds)();
    }
}

describe("soak: protocol fuzz", () => {
    let sidecar: SidecarProcess;
    const expectedTokens = new Map<string, number>();

    before(async () => {
        ({ sidecar } = await SidecarProcess.start());
        await sidecar.request("olmo/load", {
            modelPath: await ensureTestModel("tiny"),
            gpu: "cpu",
            contextSize: 1024,
            threads: 1,
        });
        for (const text of VALID_TEXTS)
            expectedTokens.set(text, (await sidecar.request("olmo/countTokens", { text })).tokens);
    });
    after(() => sidecar?.stop());

    test("malformed frames are answered or dropped; valid requests between them keep their answers", async () => {
        const started = performance.now();
        const fuzzer = new Fuzzer(new Rng(SEED, 0));
        const kinds = new Map<string, number>();
        let bad = 0;
        let answered = 0;
        let valid = 0;
        let nextValid = 0;
        for (let batch = 0; batch < BATCHES; batch++) {
            const pieces: Buffer[] = [];
            const owed: Array<Promise<void>> = [];
            for (let i = 0; i < BAD_FRAMES_PER_BATCH; i++) {
                const fuzzed = fuzzer.next();
                bad++;
                kinds.set(fuzzed.kind, (kinds.get(fuzzed.kind) ?? 0) + 1);
                pieces.push(fuzzed.bytes);
                if (fuzzed.id && fuzzed.expect !== undefined) {
                    const { id, expect, kind } = fuzzed;
                    owed.push(
                        answer(sidecar, id, kind).then((response) => {
                            answered++;
                            if (expect !== "answer")
                                assert.equal(
                                    response.error?.code,
                                    expect,
                                    `${kind} (${id}): ${JSON.stringify(response).slice(0, 300)}`,
                                );
                        }),
                    );
                }
                if (i % VALID_EVERY === VALID_EVERY - 1) {
                    const id = `v-${++nextValid}`;
                    const text = fuzzer.pick(VALID_TEXTS);
                    pieces.push(frame(request(id, "olmo/countTokens", { text })));
                    owed.push(
                        answer(sidecar, id, "valid countTokens").then((response) => {
                            valid++;
                            assert.deepEqual(
                                response.result,
                                { tokens: expectedTokens.get(text), contextSize: 1024 },
                                `valid request ${id} after bad frames`,
                            );
                        }),
                    );
                }
            }
            await writeInRandomPieces(sidecar, Buffer.concat(pieces), fuzzer);
            await Promise.all(owed);
            // The process is up, and the ordinary client (its own connection and framing) is answered.
            assert.equal(sidecar.child.exitCode, null, `alive after batch ${batch}`);
            assert.equal(sidecar.child.signalCode, null);
            assert.deepEqual(await sidecar.request("olmo/countTokens", { text: "hello world" }), {
                tokens: expectedTokens.get("hello world"),
                contextSize: 1024,
            });
        }
        const frames = parseFrames(Buffer.concat(sidecar.stdoutChunks));
        assert.ok(
            frames.every((f) => (f as { jsonrpc?: string }).jsonrpc === "2.0"),
            "stdout held only JSON-RPC frames",
        );
        const seconds = (performance.now() - started) / 1000;
        console.log(
            `# fuzz seed ${SEED}: ${bad} bad frames (${answered} answered with the expected error or result, the rest dropped), ` +
                `${valid} interleaved valid requests answered correctly, in ${seconds.toFixed(1)} s`,
        );
        console.log(`# kinds: ${[...kinds].map(([k, n]) => `${k} ${n}`).join("; ")}`);
        assert.ok(bad >= 500);
    });

    test("after shutdown, requests are refused with Invalid Request and the process stays until exit", async () => {
        await sidecar.connection.sendRequest("shutdown");
        await assert.rejects(
            sidecar.request("olmo/countTokens", { text: "hi" }),
            (error: unknown) =>
                error instanceof ResponseError && error.code === JSONRPC.invalidRequest,
        );
        await assert.rejects(
            sidecar.request("olmo/load", { modelPath: "/x.gguf" }),
            (error: unknown) =>
                error instanceof ResponseError && error.code === JSONRPC.invalidRequest,
        );
        assert.equal(sidecar.child.exitCode, null);
        await sidecar.connection.sendNotification("exit");
        assert.equal(await sidecar.exited(), 0);
    });
});

/** The response to a raw request, or a failure naming it if it never comes. */
function answer(sidecar: SidecarProcess, id: string, kind: string): Promise<RawResponse> {
    let timer: NodeJS.Timeout | undefined;
    const lost = new Promise<never>((_, reject) => {
        timer = setTimeout(
            () => reject(new Error(`no answer to ${kind} (${id}) in ${ANSWER_TIMEOUT_MS} ms`)),
            ANSWER_TIMEOUT_MS,
        );
    });
    return Promise.race([sidecar.response(id), lost]).finally(() => clearTimeout(timer));
}

/** Writes in pieces of random size, sometimes a few bytes at a time, so frames straddle reads. */
async function writeInRandomPieces(
    sidecar: SidecarProcess,
    bytes: Buffer,
    fuzzer: Fuzzer,
): Promise<void> {
    for (let at = 0; at < bytes.length;) {
        const size = fuzzer.int(8) === 0 ? 1 + fuzzer.int(16) : 1 + fuzzer.int(64 * 1024);
        await sidecar.writeRaw(bytes.subarray(at, at + size));
        at += size;
    }
}
