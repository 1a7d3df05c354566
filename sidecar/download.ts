// Downloading a model file: resumable (HTTP ranges into a `.part` file that survives cancel, crash
// and reload), verified by SHA-256 against the hash the hub publishes, renamed into place only
// when verified. Every failure says what happened in words a user can act on.
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readFile, rename, rm, stat, statfs, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { SidecarError } from "./errors.js";
import {
    isHubRepoName,
    isPlainGgufName,
    type DownloadProgress,
    type DownloadResult,
} from "./protocol.js";

/** A download that receives nothing for this long is abandoned with a "too slow" message. */
export const STALL_TIMEOUT_MS = 30_000;
/**
 * How long a server may take to answer a request (name lookup, connection, first response line):
 * offline, a refused connection or a proxy that swallows the request end in this time, not minutes.
 */
export const RESPONSE_TIMEOUT_MS = 10_000;
const MAX_REDIRECTS = 5;
/** What to do when the hub cannot be reached, said with every such failure. */
const OFFLINE_ADVICE =
    "Check the connection, set olmo.hubEndpoint (or HF_ENDPOINT) to a mirror you can reach, or choose a .gguf file already on this computer.";

export interface DownloadSource {
    /** Hub endpoint; the HF_ENDPOINT convention lets tests and mirrors point elsewhere. */
    endpoint: string;
    repo: string;
    file: string;
    revision?: string;
}

export type { DownloadProgress };
type DownloadOutcome = DownloadResult;

/**
 * A repository `owner/name` and a plain `*.gguf` file name: the name becomes a path in the models
 * folder, so no folders, `..` or backslashes.
 */
export function checkSource(source: DownloadSource): void {
    if (!isHubRepoName(source.repo))
        throw new SidecarError(
            "invalidParams",
            `"${source.repo}" is not a Hugging Face repository name (owner/name).`,
        );
    if (!isPlainGgufName(source.file))
        throw new SidecarError(
            "invalidParams",
            `"${source.file}" is not a plain .gguf file name (letters, digits, "._+-", no folders or "..").`,
        );
}

/**
 * Only https, except to this machine itself (a local mirror or test server): a model fetched in
 * the clear could be swapped on the way, and its hash with it.
 */
function checkTransport(url: URL, redirectedFrom?: URL): void {
    const loopback =
        ["localhost", "127.0.0.1", "[::1]"].includes(url.hostname) ||
        /^127\.\d+\.\d+\.\d+$/.test(url.hostname);
    if (url.protocol === "https:") return;
    if (url.protocol === "http:" && loopback && redirectedFrom?.protocol !== "https:") return;
    throw new SidecarError(
        "downloadFailed",
        redirectedFrom
            ? `${redirectedFrom.host} redirected the download to ${url.protocol}//${url.host}, which is not https; refusing it.`
            : `The model server ${url.protocol}//${url.host} is not https (only this machine may be reached over http). Set olmo.hubEndpoint (or HF_ENDPOINT) to an https address.`,
    );
}

function resolveUrl(source: DownloadSource): string {
    checkSource(source);
    const base = source.endpoint.replace(/\/+$/, "");
    return `${base}/${source.repo}/resolve/${encodeURIComponent(source.revision ?? "main")}/${source.file.split("/").map(encodeURIComponent).join("/")}`;
}

interface RemoteFile {
    url: string;
    totalBytes: number;
    sha256?: string;
}

/** What the hub says about the file: its size and the SHA-256 of the LFS object. */
export async function inspectRemote(
    source: DownloadSource,
    signal?: AbortSignal,
): Promise<RemoteFile> {
    const url = resolveUrl(source);
    // The resolve URL answers with a redirect to storage; its own headers carry the LFS hash.
    const { response } = await request(url, { method: "HEAD", signal }, false);
    const location = response.headers.get("location");
    let totalBytes = Number(response.headers.get("x-linked-size") ?? NaN);
    const sha256 = parseSha256(
        response.headers.get("x-linked-etag") ?? response.headers.get("etag"),
    );
    if (response.status >= 300 && response.status < 400 && location) {
        if (!Number.isFinite(totalBytes)) {
            const { response: target } = await request(url, { method: "HEAD", signal });
            checkStatus(target.status, source);
            totalBytes = Number(target.headers.get("content-length"));
        }
    } else {
        checkStatus(response.status, source);
        if (!Number.isFinite(totalBytes))
            totalBytes = Number(response.headers.get("content-length"));
    }
    if (!Number.isFinite(totalBytes) || totalBytes <= 0) {
        throw new SidecarError(
            "downloadFailed",
            `The server did not say how large ${source.file} is; cannot download it safely.`,
        );
    }
    return { url, totalBytes, sha256 };
}

function parseSha256(etag: string | null): string | undefined {
    const value = etag?.replace(/^W\//, "").replace(/"/g, "").trim().toLowerCase();
    return value && /^[0-9a-f]{64}$/.test(value) ? value : undefined;
}

/**
 * Downloads into `directory`. A `<file>.part` next to it holds what was received so far, with a
 * `<file>.part.json` saying which remote file it belongs to, so that a later call resumes it.
 * A file whose SHA-256 the hub does not publish is refused unless `allowUnverified` says the user
 * chose to take it unchecked.
 */
export async function downloadModel(
    source: DownloadSource,
    directory: string,
    onProgress: (progress: DownloadProgress) => void,
    signal: AbortSignal,
    { stallTimeoutMs = STALL_TIMEOUT_MS, allowUnverified = false } = {},
): Promise<DownloadOutcome> {
    const remote = await inspectRemote(source, signal);
    if (!remote.sha256 && !allowUnverified) {
        throw new SidecarError(
            "unverifiable",
            `The hub publishes no SHA-256 for ${source.file}, so the download could not be checked for corruption or tampering. Download it only if you trust ${new URL(remote.url).host}.`,
        );
    }
    await mkdir(directory, { recursive: true });
    const name = source.file;
    const finalPath = join(directory, name);
    const partPath = `${finalPath}.part`;
    const metaPath = `${partPath}.json`;

    const existing = await partialBytes(partPath, metaPath, remote);
    await checkDiskSpace(directory, remote.totalBytes - existing);
    await writeFile(
        metaPath,
        JSON.stringify({ url: remote.url, totalBytes: remote.totalBytes, sha256: remote.sha256 }),
    );

    const hash = createHash("sha256");
    if (existing > 0) await hashFile(partPath, hash, existing);

    const { response } = await request(remote.url, {
        headers: existing > 0 ? { range: `bytes=${existing}-` } : {},
        signal,
    });
    if (existing > 0 && response.status === 200) {
        // The server ignored the range: start over rather than append the whole file again.
        await response.body?.cancel();
        await rm(partPath, { force: true });
        return downloadModel(source, directory, onProgress, signal, {
            stallTimeoutMs,
            allowUnverified,
        });
    }
    checkStatus(response.status, source);
    try {
        checkResponseSpan(response, existing, remote.totalBytes);
        await receive(
            response,
            partPath,
            existing,
            remote.totalBytes,
            hash,
            onProgress,
            signal,
            stallTimeoutMs,
        );
    } catch (error) {
        // Bytes from a server that breaks its own word cannot be resumed from: drop them.
        if (error instanceof SidecarError && error.code === "downloadMismatch") {
            await rm(partPath, { force: true });
            await rm(metaPath, { force: true });
        }
        throw error;
    }

    const sha256 = hash.digest("hex");
    if (remote.sha256 && sha256 !== remote.sha256) {
        await rm(partPath, { force: true });
        await rm(metaPath, { force: true });
        throw new SidecarError(
            "checksumMismatch",
            `The downloaded ${name} is corrupt (SHA-256 ${sha256.slice(0, 12)}…, expected ${remote.sha256.slice(0, 12)}…). It was deleted; download it again.`,
        );
    }
    await rename(partPath, finalPath);
    await rm(metaPath, { force: true });
    return {
        path: finalPath,
        sha256,
        verified: remote.sha256 !== undefined,
        totalBytes: remote.totalBytes,
        resumedFromBytes: existing,
    };
}

/**
 * The body must be the bytes asked for: a 206 starts where the resume asked and belongs to a file
 * of the announced size, and a stated length matches what is missing.
 */
function checkResponseSpan(response: Response, start: number, totalBytes: number): void {
    const mismatch = (what: string) => {
        void response.body?.cancel();
        return new SidecarError(
            "downloadMismatch",
            `The server sent ${what}; the download was stopped and what it sent deleted. Try again later or use another mirror.`,
        );
    };
    if (response.status === 206) {
        const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(
            response.headers.get("content-range") ?? "",
        );
        if (!range || Number(range[1]) !== start)
            throw mismatch(
                `the wrong part of the file (asked from byte ${start}, got "${response.headers.get("content-range") ?? "no Content-Range"}")`,
            );
        if (range[3] !== "*" && Number(range[3]) !== totalBytes)
            throw mismatch(`a file of ${range[3]} bytes where ${totalBytes} were announced`);
    }
    const length = response.headers.get("content-length");
    if (length !== null && Number(length) !== totalBytes - start)
        throw mismatch(`${length} bytes where ${totalBytes - start} were expected`);
}

/** Bytes of a `.part` file that belong to this same remote file; anything else is discarded. */
async function partialBytes(
    partPath: string,
    metaPath: string,
    remote: RemoteFile,
): Promise<number> {
    const size = (await stat(partPath).catch(() => undefined))?.size ?? 0;
    if (size === 0) return 0;
    const meta = (await readFile(metaPath, "utf8").then(JSON.parse, () => undefined)) as
        Partial<RemoteFile> | undefined;
    const same =
        meta &&
        meta.url === remote.url &&
        meta.totalBytes === remote.totalBytes &&
        meta.sha256 === remote.sha256;
    if (!same || size > remote.totalBytes) {
        await rm(partPath, { force: true });
        return 0;
    }
    return size;
}

async function hashFile(
    path: string,
    hash: ReturnType<typeof createHash>,
    bytes: number,
): Promise<void> {
    for await (const chunk of createReadStream(path, { start: 0, end: bytes - 1 }))
        hash.update(chunk as Buffer);
}

/**
 * Reads a response body chunk by chunk: each read must bring data within `stallTimeoutMs`, and the
 * body may not run past `maxBytes` (a server that announced a size and streams on is cut off).
 */
async function* bodyChunks(
    response: Response,
    maxBytes: number,
    stallTimeoutMs: number,
): AsyncGenerator<Uint8Array> {
    if (!response.body) throw new SidecarError("downloadFailed", "The server sent no data.");
    const reader = response.body.getReader();
    let received = 0;
    let stallTimer: ReturnType<typeof setTimeout> | undefined;
    const readOrStall = () =>
        Promise.race([
            reader.read(),
            new Promise<never>((_, reject) => {
                stallTimer = setTimeout(() => {
                    // Reject before cancelling: cancelling settles the pending read, which must not win.
                    reject(
                        new SidecarError(
                            "downloadStalled",
                            `The download stalled: no data for ${Math.round(stallTimeoutMs / 1000)} s. The connection is too slow or was lost; try again to resume.`,
                        ),
                    );
                    void reader.cancel();
                }, stallTimeoutMs);
            }),
        ]).finally(() => clearTimeout(stallTimer));
    for (;;) {
        const { done, value } = await readOrStall();
        if (done) return;
        received += value.byteLength;
        if (received > maxBytes) {
            void reader.cancel();
            throw new SidecarError(
                "downloadMismatch",
                `The server sent more than the ${maxBytes} bytes it announced; the download was stopped and what it sent deleted. Try again later or use another mirror.`,
            );
        }
        yield value;
    }
}

async function receive(
    response: Response,
    partPath: string,
    start: number,
    totalBytes: number,
    hash: ReturnType<typeof createHash>,
    onProgress: (progress: DownloadProgress) => void,
    signal: AbortSignal,
    stallTimeoutMs: number,
): Promise<void> {
    // A large buffer lets the disk writes run while the next chunks arrive and are hashed: with the
    // default 16 KiB, every 64 KiB chunk waited for its write (about 190 against 250-290 MB/s here).
    const out = createWriteStream(partPath, {
        flags: start > 0 ? "a" : "w",
        highWaterMark: 8 * 2 ** 20,
    });
    const started = performance.now();
    let received = start;
    let lastReport = 0;
    try {
        for await (const value of bodyChunks(response, totalBytes - start, stallTimeoutMs)) {
            hash.update(value);
            received += value.byteLength;
            if (!out.write(value))
                await new Promise<void>((resolve) => out.once("drain", () => resolve()));
            const now = performance.now();
            if (now - lastReport > 250 || received === totalBytes) {
                lastReport = now;
                onProgress({
                    receivedBytes: received,
                    totalBytes,
                    bytesPerSecond: ((received - start) * 1000) / Math.max(1, now - started),
                });
            }
        }
    } catch (error) {
        if (signal.aborted)
            throw new SidecarError(
                "cancelled",
                "Download cancelled; it resumes where it stopped next time.",
            );
        if (error instanceof SidecarError) throw error;
        throw networkError(error, new URL(response.url || "http://server").host);
    } finally {
        await new Promise<void>((resolve, reject) =>
            out.end((error?: Error | null) => (error ? reject(diskError(error)) : resolve())),
        );
    }
    if (received !== totalBytes) {
        throw new SidecarError(
            "downloadFailed",
            `The connection closed after ${received} of ${totalBytes} bytes. Try again to resume.`,
        );
    }
}

/**
 * Bytes `start` to `start + length - 1` of a remote file (for reading a model's header). The
 * server must send exactly that range.
 */
export async function fetchRange(
    url: string,
    start: number,
    length: number,
    signal?: AbortSignal,
): Promise<Buffer> {
    const { response } = await request(url, {
        headers: { range: `bytes=${start}-${start + length - 1}` },
        signal,
    });
    if (response.status !== 206 && !(response.status === 200 && start === 0)) {
        void response.body?.cancel();
        throw new SidecarError(
            "downloadFailed",
            `${new URL(url).host} answered HTTP ${response.status} to a request for part of the model file.`,
        );
    }
    if (response.status === 206) {
        const begins = /^bytes (\d+)-/.exec(response.headers.get("content-range") ?? "")?.[1];
        if (Number(begins) !== start) {
            void response.body?.cancel();
            throw new SidecarError(
                "downloadMismatch",
                `${new URL(url).host} sent the wrong part of the model file (asked from byte ${start}).`,
            );
        }
    }
    const chunks: Uint8Array[] = [];
    let received = 0;
    try {
        // A 200 is the whole file: take the start of it and hang up.
        for await (const chunk of bodyChunks(
            response,
            response.status === 200 ? Infinity : length,
            RESPONSE_TIMEOUT_MS,
        )) {
            chunks.push(chunk);
            received += chunk.byteLength;
            if (received >= length) {
                void response.body?.cancel();
                break;
            }
        }
    } catch (error) {
        if (signal?.aborted) throw new SidecarError("cancelled", "Cancelled.");
        if (error instanceof SidecarError) throw error;
        throw networkError(error, new URL(url).host);
    }
    return Buffer.concat(chunks).subarray(0, length);
}

async function checkDiskSpace(directory: string, neededBytes: number): Promise<void> {
    const fs = await statfs(directory).catch(() => undefined);
    if (!fs) return;
    const free = fs.bavail * fs.bsize;
    if (free < neededBytes) {
        throw new SidecarError(
            "diskFull",
            `Not enough disk space in ${directory}: ${gib(neededBytes)} needed, ${gib(free)} free.`,
        );
    }
}

/**
 * A request whose response must begin within RESPONSE_TIMEOUT_MS, over https (or to this machine),
 * following redirects only to https (unless `follow` is false: the first answer is returned).
 */
async function request(
    url: string,
    init: { method?: string; headers?: Record<string, string>; signal?: AbortSignal },
    follow = true,
): Promise<{ response: Response; url: string }> {
    let target = new URL(url);
    let from: URL | undefined;
    checkTransport(target);
    for (let hops = 0; ; hops++) {
        const timeout = new AbortController();
        const timer = setTimeout(() => timeout.abort(), RESPONSE_TIMEOUT_MS);
        let response: Response;
        try {
            response = await fetch(target, {
                ...init,
                redirect: "manual",
                signal: init.signal
                    ? AbortSignal.any([init.signal, timeout.signal])
                    : timeout.signal,
            });
        } catch (error) {
            if (init.signal?.aborted)
                throw new SidecarError(
                    "cancelled",
                    "Download cancelled; it resumes where it stopped next time.",
                );
            if (timeout.signal.aborted)
                throw new SidecarError(
                    "offline",
                    `${target.host} did not answer within ${RESPONSE_TIMEOUT_MS / 1000} s. ${OFFLINE_ADVICE}`,
                );
            throw networkError(error, target.host);
        } finally {
            clearTimeout(timer);
        }
        const location = response.headers.get("location");
        if (!follow || response.status < 300 || response.status >= 400 || !location)
            return { response, url: target.toString() };
        void response.body?.cancel();
        if (hops >= MAX_REDIRECTS)
            throw new SidecarError(
                "downloadFailed",
                `${target.host} redirected more than ${MAX_REDIRECTS} times.`,
            );
        from = target;
        target = new URL(location, target);
        checkTransport(target, from);
    }
}

function checkStatus(status: number, source: DownloadSource): void {
    if (status === 200 || status === 206) return;
    if (status === 401 || status === 403) {
        throw new SidecarError(
            "downloadFailed",
            `Access to ${source.repo} was refused (HTTP ${status}). The repository may be gated or private.`,
        );
    }
    if (status === 404)
        throw new SidecarError(
            "downloadFailed",
            `${source.file} was not found in ${source.repo} (HTTP 404).`,
        );
    throw new SidecarError(
        "downloadFailed",
        `The server answered HTTP ${status} for ${source.file}.`,
    );
}

function networkError(error: unknown, host: string): SidecarError {
    const cause =
        (error as { cause?: { code?: string } }).cause?.code ??
        (error as { code?: string }).code ??
        "";
    if (["ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ENETUNREACH", "EHOSTUNREACH"].includes(cause)) {
        const what =
            cause === "ENOTFOUND" || cause === "EAI_AGAIN"
                ? "the name could not be looked up"
                : cause === "ECONNREFUSED"
                  ? "the connection was refused"
                  : "the network is unreachable";
        return new SidecarError(
            "offline",
            `Cannot reach ${host}: ${what} (${cause}). ${OFFLINE_ADVICE}`,
        );
    }
    return new SidecarError(
        "downloadFailed",
        `The connection to ${host} was lost: ${(error as Error).message}${cause ? ` (${cause})` : ""}. Try again to resume.`,
    );
}

function diskError(error: Error & { code?: string }): SidecarError {
    if (error.code === "ENOSPC")
        return new SidecarError(
            "diskFull",
            "The disk filled up during the download; free some space and try again to resume.",
        );
    return new SidecarError("downloadFailed", `Could not write the model file: ${error.message}`);
}

function gib(bytes: number): string {
    return `${(bytes / 2 ** 30).toFixed(2)} GiB`;
}
