// Downloading a model file: resumable (HTTP ranges into a `.part` file that survives cancel, crash
// and reload), verified by SHA-256 against the hash the hub publishes, renamed into place only
// when verified. Every failure says what happened in words a user can act on.
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readFile, rename, rm, stat, statfs, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { SidecarError } from "./errors.js";
import type { DownloadProgress, DownloadResult } from "./protocol.js";

/** A download that receives nothing for this long is abandoned with a "too slow" message. */
export const STALL_TIMEOUT_MS = 30_000;

export interface DownloadSource {
    /** Hub endpoint; the HF_ENDPOINT convention lets tests and mirrors point elsewhere. */
    endpoint: string;
    repo: string;
    file: string;
    revision?: string;
}

export type { DownloadProgress };
type DownloadOutcome = DownloadResult;

export function resolveUrl(source: DownloadSource): string {
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
    const response = await request(url, { method: "HEAD", redirect: "manual", signal });
    const location = response.headers.get("location");
    let totalBytes = Number(response.headers.get("x-linked-size") ?? NaN);
    const sha256 = parseSha256(
        response.headers.get("x-linked-etag") ?? response.headers.get("etag"),
    );
    if (response.status >= 300 && response.status < 400 && location) {
        if (!Number.isFinite(totalBytes)) {
            const target = await request(new URL(location, url).toString(), {
                method: "HEAD",
                signal,
            });
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
 */
export async function downloadModel(
    source: DownloadSource,
    directory: string,
    onProgress: (progress: DownloadProgress) => void,
    signal: AbortSignal,
    stallTimeoutMs = STALL_TIMEOUT_MS,
): Promise<DownloadOutcome> {
    await mkdir(directory, { recursive: true });
    const remote = await inspectRemote(source, signal);
    const name = source.file.split("/").pop()!;
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

    const response = await request(remote.url, {
        headers: existing > 0 ? { range: `bytes=${existing}-` } : {},
        signal,
    });
    if (existing > 0 && response.status === 200) {
        // The server ignored the range: start over rather than append the whole file again.
        await response.body?.cancel();
        await rm(partPath, { force: true });
        return downloadModel(source, directory, onProgress, signal, stallTimeoutMs);
    }
    checkStatus(response.status, source);
    const resumedFromBytes = existing;
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
    return { path: finalPath, sha256, totalBytes: remote.totalBytes, resumedFromBytes };
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
    if (!response.body) throw new SidecarError("downloadFailed", "The server sent no data.");
    // A large buffer lets the disk writes run while the next chunks arrive and are hashed: with the
    // default 16 KiB, every 64 KiB chunk waited for its write (about 190 against 250-290 MB/s here).
    const out = createWriteStream(partPath, {
        flags: start > 0 ? "a" : "w",
        highWaterMark: 8 * 2 ** 20,
    });
    const started = performance.now();
    let received = start;
    let lastReport = 0;
    const reader = response.body.getReader();
    let stallTimer: ReturnType<typeof setTimeout> | undefined;
    // Each read must bring data in time, or the download is abandoned as too slow.
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
    try {
        for (;;) {
            const { done, value } = await readOrStall();
            if (done) break;
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
        throw networkError(error);
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

async function request(url: string, init: RequestInit): Promise<Response> {
    try {
        return await fetch(url, init);
    } catch (error) {
        if ((error as Error).name === "AbortError")
            throw new SidecarError(
                "cancelled",
                "Download cancelled; it resumes where it stopped next time.",
            );
        throw networkError(error);
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

function networkError(error: unknown): SidecarError {
    const cause =
        (error as { cause?: { code?: string } }).cause?.code ??
        (error as { code?: string }).code ??
        "";
    if (["ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ENETUNREACH", "EHOSTUNREACH"].includes(cause)) {
        return new SidecarError(
            "offline",
            `Cannot reach the model server (${cause}). Check the connection, or pick a .gguf file you already have.`,
        );
    }
    return new SidecarError(
        "downloadFailed",
        `The connection was lost: ${(error as Error).message}${cause ? ` (${cause})` : ""}. Try again to resume.`,
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
