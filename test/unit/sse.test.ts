// The server-sent events parser the remote engine reads completions with: events split anywhere
// across chunks, every line ending, multi-line data, comments, `[DONE]`, a last event without
// its blank line.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { SseParser, type ServerSentEvent } from "../../sidecar/sse.js";

function parseInChunks(text: string, size: number): ServerSentEvent[] {
    const parser = new SseParser();
    const events: ServerSentEvent[] = [];
    for (let i = 0; i < text.length; i += size)
        events.push(...parser.push(text.slice(i, i + size)));
    events.push(...parser.end());
    return events;
}

const STREAM =
    ': ping\n\ndata: {"content":"Hel"}\n\ndata: {"content":"lo"}\r\n\r\n' +
    'event: error\ndata: {"error":\ndata: "x"}\n\ndata: [DONE]\n\n';
const EXPECTED: ServerSentEvent[] = [
    { event: "message", data: '{"content":"Hel"}' },
    { event: "message", data: '{"content":"lo"}' },
    { event: "error", data: '{"error":\n"x"}' },
    { event: "message", data: "[DONE]" },
];

describe("unit: server-sent events", () => {
    test("the same events whatever the chunk size, down to one character", () => {
        for (const size of [1, 2, 3, 5, 7, 16, STREAM.length])
            assert.deepEqual(parseInChunks(STREAM, size), EXPECTED, `chunks of ${size}`);
    });

    test("a CRLF split between two chunks is one line end", () => {
        const parser = new SseParser();
        assert.deepEqual(parser.push("data: a\r"), []);
        assert.deepEqual(parser.push("\n\r\n"), [{ event: "message", data: "a" }]);
    });

    test("lone CRs end lines too, and a field without a colon or space is read", () => {
        assert.deepEqual(parseInChunks("data:x\rdata\r\r", 4), [{ event: "message", data: "x\n" }]);
    });

    test("a stream cut off after its last data line still yields that event", () => {
        assert.deepEqual(parseInChunks('data: {"stop":true}', 6), [
            { event: "message", data: '{"stop":true}' },
        ]);
    });

    test("an event with no data is not dispatched, and its name does not leak", () => {
        assert.deepEqual(parseInChunks("event: error\n\ndata: ok\n\n", 3), [
            { event: "message", data: "ok" },
        ]);
    });
});
