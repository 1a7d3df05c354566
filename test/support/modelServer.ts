// A stand-in for the model hub on 127.0.0.1: `/<repo>/resolve/main/<file>` redirects to storage
// with the LFS hash in `X-Linked-Etag`, as Hugging Face does; storage serves byte ranges. Faults
// (corrupt bytes, 404, a dropped connection, a stall) are switched on per test.
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface ServedFile {
    repo: string;
    file: string;
    path: string;
}

export interface Faults {
    /** Flip a byte at this offset in what is sent (the advertised hash stays the original's). */
    corruptAt?: number;
    /** Answer 404 for everything. */
    notFound?: boolean;
    /** Destroy the connection after sending this many bytes of a response body. */
    dropAfterBytes?: number;
    /** Stop sending (without closing) after this many bytes of a response body. */
    stallAfterBytes?: number;
    /** Ignore Range headers (always 200 with the whole file). */
    ignoreRange?: boolean;
    /** Publish no SHA-256 (no `X-Linked-Etag`), as for a file that is not in LFS. */
    noHash?: boolean;
    /** Announce this size in `X-Linked-Size` instead of the file's. */
    announceBytes?: number;
    /**
     * Answer a download (a GET) with the file again and again, chunked, without a Content-Length,
     * up to this many bytes: with `announceBytes`, a server that says 10 bytes and streams on.
     */
    streamOnBytes?: number;
    /** Answer every range with a 206 whose Content-Range starts at byte 0. */
    rangeFromStart?: boolean;
    /** Redirect the resolve URL here instead of to this server's storage. */
    redirectTo?: string;
}

export class ModelServer {
    faults: Faults = {};
    /** Body bytes sent by storage, summed over all responses. */
    bytesSent = 0;
    readonly rangeRequests: string[] = [];
    private constructor(
        private readonly server: Server,
        private readonly content: Buffer,
        readonly sha256: string,
        private readonly served: ServedFile,
    ) {}

    static async start(served: ServedFile): Promise<ModelServer> {
        const content = await readFile(served.path);
        const sha256 = createHash("sha256").update(content).digest("hex");
        let self: ModelServer | undefined; // eslint-disable-line prefer-const -- assigned after the closure that reads it
        const server = createServer((req, res) =>
            self!.handle(req.url ?? "/", req.method ?? "GET", req.headers.range, res),
        );
        self = new ModelServer(server, content, sha256, served);
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
        return self;
    }

    get endpoint(): string {
        return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    }

    get size(): number {
        return this.content.length;
    }

    private handle(
        url: string,
        method: string,
        range: string | undefined,
        res: import("node:http").ServerResponse,
    ): void {
        if (this.faults.notFound) {
            res.writeHead(404).end("Entry not found");
            return;
        }
        if (url === `/${this.served.repo}/resolve/main/${this.served.file}`) {
            res.writeHead(302, {
                location: this.faults.redirectTo ?? `/storage/${this.served.file}`,
                ...(this.faults.noHash ? {} : { "x-linked-etag": `"${this.sha256}"` }),
                "x-linked-size": String(this.faults.announceBytes ?? this.content.length),
            }).end();
            return;
        }
        if (url !== `/storage/${this.served.file}`) {
            res.writeHead(404).end();
            return;
        }
        if (this.faults.streamOnBytes !== undefined && method === "GET") {
            this.streamOn(res, this.faults.streamOnBytes);
            return;
        }
        let start = 0;
        let end = this.content.length - 1;
        const match = range && !this.faults.ignoreRange ? /^bytes=(\d+)-(\d*)$/.exec(range) : null;
        if (range) this.rangeRequests.push(range);
        if (match) {
            start = Number(match[1]);
            if (match[2]) end = Math.min(end, Number(match[2]));
        }
        const body = Buffer.from(this.content.subarray(start, end + 1));
        const corrupt = this.faults.corruptAt;
        if (corrupt !== undefined && corrupt >= start) body[corrupt - start] ^= 0xff;
        res.writeHead(match ? 206 : 200, {
            "content-length": String(body.length),
            "accept-ranges": "bytes",
            ...(match
                ? {
                      "content-range": `bytes ${this.faults.rangeFromStart ? 0 : start}-${end}/${this.content.length}`,
                  }
                : {}),
        });
        if (method === "HEAD") {
            res.end();
            return;
        }
        const limit = this.faults.dropAfterBytes ?? this.faults.stallAfterBytes;
        if (limit === undefined) {
            this.bytesSent += body.length;
            res.end(body);
            return;
        }
        const part = body.subarray(0, Math.max(0, limit));
        this.bytesSent += part.length;
        res.write(part, () => {
            if (this.faults.dropAfterBytes !== undefined) res.socket?.destroy();
            // A stall leaves the response open; stop() closes it.
        });
    }

    /** Chunked, no length: the file again and again until `total` bytes are out or the client hangs up. */
    private streamOn(res: import("node:http").ServerResponse, total: number): void {
        res.writeHead(200, { "accept-ranges": "bytes" });
        let sent = 0;
        const more = (): void => {
            while (sent < total && !res.destroyed) {
                const chunk = this.content.subarray(0, Math.min(64 * 1024, total - sent));
                sent += chunk.length;
                this.bytesSent += chunk.length;
                if (!res.write(chunk)) return void res.once("drain", more);
            }
            if (!res.destroyed) res.end();
        };
        res.on("close", () => (sent = total));
        more();
    }

    async stop(): Promise<void> {
        this.server.closeAllConnections();
        await new Promise<void>((resolve) => this.server.close(() => resolve()));
    }
}
