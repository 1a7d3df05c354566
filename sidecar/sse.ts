// Server-sent events (the WHATWG event-stream format) as inference servers stream completions:
// lines split anywhere across chunks, LF / CRLF / CR line ends, `data:` lines joined by "\n",
// a blank line ends an event, comments (`:`) and unknown fields ignored.

export interface ServerSentEvent {
    /** `event:`; "message" when absent. */
    event: string;
    data: string;
}

export class SseParser {
    private buffer = "";
    private event = "";
    private data: string[] = [];
    private sawCr = false;

    /** Feeds a chunk of text; returns the events it completed. */
    push(chunk: string): ServerSentEvent[] {
        // A CR that ended the previous chunk may be half of a CRLF.
        if (this.sawCr && chunk.startsWith("\n")) chunk = chunk.slice(1);
        this.sawCr = chunk.endsWith("\r");
        this.buffer += chunk;
        const events: ServerSentEvent[] = [];
        const lines = this.buffer.split(/\r\n|\r|\n/);
        this.buffer = lines.pop() ?? "";
        for (const line of lines) {
            const event = this.line(line);
            if (event) events.push(event);
        }
        return events;
    }

    /** The event left when the stream ends without a final blank line, if any. */
    end(): ServerSentEvent[] {
        const events: ServerSentEvent[] = [];
        if (this.buffer !== "") {
            const event = this.line(this.buffer);
            if (event) events.push(event);
            this.buffer = "";
        }
        const last = this.line("");
        if (last) events.push(last);
        return events;
    }

    private line(line: string): ServerSentEvent | undefined {
        if (line === "") {
            if (this.data.length === 0) {
                this.event = "";
                return undefined;
            }
            const event = { event: this.event || "message", data: this.data.join("\n") };
            this.event = "";
            this.data = [];
            return event;
        }
        if (line.startsWith(":")) return undefined;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "data") this.data.push(value);
        else if (field === "event") this.event = value;
        return undefined;
    }
}
