// Reads LSP-framed JSON-RPC messages (`Content-Length: N\r\n\r\n` + N bytes of JSON) and survives
// malformed input. vscode-jsonrpc's StreamMessageReader trusts the framing: after one bad
// Content-Length or header it stays out of step with the stream for good (every later frame is
// misread), and a negative length wedges it. This reader checks every frame; a bad one is dropped
// (and logged) and reading resumes at the next `Content-Length:` header, so a bad frame costs only
// itself. A frame whose framing is right but whose JSON is not is dropped too: with no id to answer,
// there is no one to tell. Well-formed JSON with an id that is not a request is handed to
// `rejectRequest` to be answered; the connection would only log it.
import {
    AbstractMessageReader,
    type DataCallback,
    type Disposable,
    type Message,
    type MessageReader,
} from "vscode-languageserver/node";

/** A header block longer than this is not a header. */
export const MAX_HEADER_BYTES = 8 * 1024;
/** Frames declaring a larger body are refused (the extension never sends anything near it). */
export const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

const HEADER_END = Buffer.from("\r\n\r\n");
const MARKER = "content-length:";
const HEADER_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([\x20-\x7e]*?)[ \t]*$/;

export class ResilientMessageReader extends AbstractMessageReader implements MessageReader {
    /** Bytes not yet parsed, while looking for a header. */
    private head: Buffer = Buffer.alloc(0);
    /** The body being received, once a valid header has been read. */
    private body?: { length: number; chunks: Buffer[]; received: number; scan: BodyScan };
    private readonly decoder = new TextDecoder("utf-8");

    constructor(
        private readonly readable: NodeJS.ReadableStream,
        private readonly log: (message: string) => void,
        private readonly rejectRequest: (id: string | number, reason: string) => void,
    ) {
        super();
    }

    listen(callback: DataCallback): Disposable {
        const onData = (data: Buffer) => this.onData(data, callback);
        const onError = (error: Error) => this.fireError(error);
        const onClose = () => this.fireClose();
        this.readable.on("data", onData);
        this.readable.on("error", onError);
        this.readable.on("end", onClose);
        return {
            dispose: () => {
                this.readable.off("data", onData);
                this.readable.off("error", onError);
                this.readable.off("end", onClose);
            },
        };
    }

    private onData(data: Buffer, callback: DataCallback): void {
        let input: Buffer | undefined = data;
        while (input) {
            input = this.body ? this.readBody(input, callback) : this.readHeader(input);
        }
    }

    /** Consumes header bytes; returns what follows a complete header (the body's start), if any. */
    private readHeader(data: Buffer): Buffer | undefined {
        this.head = this.head.length > 0 ? Buffer.concat([this.head, data]) : data;
        for (;;) {
            const end = this.head.indexOf(HEADER_END);
            if (end < 0) {
                if (this.head.length > MAX_HEADER_BYTES)
                    this.resync(1, `no header end in ${this.head.length} bytes`);
                return undefined;
            }
            const length = parseHeader(this.head.subarray(0, end).toString("latin1"));
            if (typeof length === "string") {
                this.resync(1, length);
                continue;
            }
            const rest = this.head.subarray(end + HEADER_END.length);
            this.head = Buffer.alloc(0);
            this.body = { length, chunks: [], received: 0, scan: new BodyScan() };
            return rest;
        }
    }

    /** Consumes body bytes; returns the bytes after the body (the next frame), if any. */
    private readBody(data: Buffer, callback: DataCallback): Buffer | undefined {
        const body = this.body!;
        const take = data.subarray(0, body.length - body.received);
        const bad = body.scan.feed(take);
        body.chunks.push(take);
        body.received += take.length;
        if (bad) {
            // The declared length does not match the JSON (too short or too long): look for the
            // next header from the start of the body, which may hold the next frame.
            this.body = undefined;
            this.head = Buffer.concat(body.chunks);
            this.resync(0, bad);
            return data.subarray(take.length);
        }
        if (body.received < body.length) return undefined;
        this.body = undefined;
        this.deliver(Buffer.concat(body.chunks), callback);
        return data.length > take.length ? data.subarray(take.length) : undefined;
    }

    private deliver(bytes: Buffer, callback: DataCallback): void {
        let message: unknown;
        try {
            message = JSON.parse(this.decoder.decode(bytes));
        } catch (error) {
            this.log(
                `dropped a frame of ${bytes.length} bytes: ${error instanceof Error ? error.message : String(error)}`,
            );
            return;
        }
        const problem = notAMessage(message);
        if (problem) {
            const id = (message as { id?: unknown } | null)?.id;
            if (typeof id === "string" || typeof id === "number")
                this.rejectRequest(id, `Invalid Request: ${problem}.`);
            else this.log(`dropped a frame of ${bytes.length} bytes: ${problem}`);
            return;
        }
        try {
            callback(message as Message);
        } catch (error) {
            // e.g. a `$/cancelRequest` without params: the connection throws before queueing it.
            this.log(
                `dropped a message the connection could not take: ${error instanceof Error ? error.message : String(error)}`,
            );
        }
    }

    /** Drops buffered bytes up to the next `Content-Length:` at or after `from`, keeping a possible partial marker. */
    private resync(from: number, reason: string): void {
        const text = this.head.toString("latin1").toLowerCase();
        const next = text.indexOf(MARKER, from);
        const keep = next >= 0 ? next : Math.max(from, this.head.length - (MARKER.length - 1));
        this.log(`malformed input (${reason}): skipped ${keep} bytes to the next header`);
        this.head = this.head.subarray(keep);
    }
}

/** Why a parsed value is not a JSON-RPC request, notification or response, or undefined. */
function notAMessage(value: unknown): string | undefined {
    if (value === null || typeof value !== "object" || Array.isArray(value))
        return "not a JSON-RPC message object (batches are not supported)";
    const { id, method } = value as { id?: unknown; method?: unknown };
    const validId = id === undefined || typeof id === "string" || typeof id === "number";
    if (typeof method === "string")
        return validId ? undefined : "a request id must be a string or a number";
    if ("result" in value || "error" in value) return undefined;
    return "no method";
}

/** The body length from a header block, or why the block is not a valid header. */
function parseHeader(block: string): number | string {
    let length: number | undefined;
    for (const line of block.split("\r\n")) {
        const field = HEADER_LINE.exec(line);
        if (!field) return `not a header line: ${JSON.stringify(line.slice(0, 40))}`;
        if (field[1].toLowerCase() !== "content-length") continue;
        if (length !== undefined) return "two Content-Length headers";
        if (!/^\d{1,10}$/.test(field[2]))
            return `Content-Length is not a byte count: ${JSON.stringify(field[2].slice(0, 20))}`;
        length = Number(field[2]);
    }
    if (length === undefined) return "no Content-Length header";
    if (length > MAX_MESSAGE_BYTES)
        return `Content-Length ${length} is over the ${MAX_MESSAGE_BYTES}-byte limit`;
    return length;
}

/**
 * Follows a body's JSON structure as it arrives (strings, escapes, nesting; not the full grammar)
 * to catch a wrong Content-Length early: a body must be one object or array, then only
 * whitespace. Without this, a frame that claims too many bytes would swallow the frames after it.
 */
class BodyScan {
    private started = false;
    private ended = false;
    private depth = 0;
    private inString = false;
    private escaped = false;

    /** Returns why the bytes cannot be (the start of) a single JSON-RPC message, or undefined. */
    feed(bytes: Buffer): string | undefined {
        let { started, ended, depth, inString, escaped } = this;
        let problem: string | undefined;
        for (let i = 0; i < bytes.length && !problem; i++) {
            const byte = bytes[i];
            if (inString) {
                if (escaped) escaped = false;
                else if (byte === 0x5c) escaped = true;
                else if (byte === 0x22) inString = false;
                else if (byte < 0x20)
                    problem = "a control character inside a string (Content-Length too long?)";
            } else if (isWhitespace(byte)) {
                continue;
            } else if (ended) {
                problem = "bytes after the message (Content-Length too long?)";
            } else if (!started) {
                if (byte === 0x7b || byte === 0x5b) [started, depth] = [true, 1];
                else problem = "the body is not a JSON object";
            } else if (byte === 0x22) {
                inString = true;
            } else if (byte === 0x7b || byte === 0x5b) {
                depth++;
            } else if (byte === 0x7d || byte === 0x5d) {
                if (--depth === 0) ended = true;
            } else if (byte < 0x20) {
                problem = "a control character in the body";
            }
        }
        this.started = started;
        this.ended = ended;
        this.depth = depth;
        this.inString = inString;
        this.escaped = escaped;
        return problem;
    }
}

function isWhitespace(byte: number): boolean {
    return byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09;
}
