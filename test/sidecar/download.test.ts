// Model download against a local stand-in for the hub: resume, hash check, and every failure's message.
import { after, before, beforeEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { createServer } from "node:http";
import { createServer as createTcpServer, type AddressInfo, type Socket } from "node:net";
import { join } from "node:path";
import { ProgressType, ResponseError } from "vscode-jsonrpc/node";
import { ErrorCodes } from "../../sidecar/protocol.js";
import { stringLengthBomb } from "../support/hostileModels.js";
import {
    downloadModel,
    type DownloadProgress,
    type DownloadSource,
} from "../../sidecar/download.js";
import { SidecarProcess } from "../support/sidecarProcess.js";
import { SidecarError } from "../../sidecar/errors.js";
import { ensureTestModel } from "../support/models.js";
import { ModelServer } from "../support/modelServer.js";

const repo = "allenai/OLMo-2-test-GGUF";
const file = "olmo-2-test-Q4_0.gguf";

describe("sidecar: model download", () => {
    let server: ModelServer;
    let dir: string;
    let source: DownloadSource;

    before(async () => {
        server = await ModelServer.start({ repo, file, path: await ensureTestModel("tiny") });
        source = { endpoint: server.endpoint, repo, file };
    });
    after(() => server?.stop());
    beforeEach(async () => {
        server.faults = {};
        server.bytesSent = 0;
        server.rangeRequests.length = 0;
        dir = await mkdtemp(join(tmpdir(), "olmo-download-"));
    });

    const fetchModel = (
        signal = new AbortController().signal,
        progress: DownloadProgress[] = [],
        options: { stallTimeoutMs?: number; allowUnverified?: boolean } = {},
    ) => downloadModel(source, dir, (p) => progress.push(p), signal, options);

    /** Every byte in the models folder, whatever the file. */
    async function bytesOnDisk(): Promise<number> {
        let total = 0;
        for (const name of await readdir(dir)) total += (await stat(join(dir, name))).size;
        return total;
    }

    async function expectFailure(
        promise: Promise<unknown>,
        code: string,
        message: RegExp,
    ): Promise<void> {
        await assert.rejects(promise, (error: unknown) => {
            assert.ok(error instanceof SidecarError, String(error));
            assert.equal(error.code, code);
            assert.match(error.message, message);
            return true;
        });
    }

    test("a full download is verified against the hub's SHA-256 and renamed into place", async () => {
        const progress: DownloadProgress[] = [];
        const outcome = await fetchModel(undefined, progress);
        assert.equal(outcome.path, join(dir, file));
        assert.equal(outcome.sha256, server.sha256);
        assert.equal(outcome.resumedFromBytes, 0);
        const bytes = await readFile(outcome.path);
        assert.equal(createHash("sha256").update(bytes).digest("hex"), server.sha256);
        assert.ok(
            !existsSync(`${outcome.path}.part`) && !existsSync(`${outcome.path}.part.json`),
            "no leftovers",
        );
        assert.equal(progress.at(-1)?.receivedBytes, server.size);
        assert.ok(
            progress.every((p, i) => i === 0 || p.receivedBytes >= progress[i - 1].receivedBytes),
        );
        await rm(dir, { recursive: true, force: true });
    });

    test("cancel, then resume: bytes already fetched are not fetched again", async () => {
        const abort = new AbortController();
        server.faults = { stallAfterBytes: Math.floor(server.size / 2) };
        const first = fetchModel(abort.signal, [], { stallTimeoutMs: 60_000 });
        // Cancel once half the file is on disk.
        const partPath = join(dir, `${file}.part`);
        for (;;) {
            const size = (await stat(partPath).catch(() => undefined))?.size ?? 0;
            if (size >= Math.floor(server.size / 2)) break;
            await new Promise((resolve) => setImmediate(resolve));
        }
        abort.abort();
        await expectFailure(first, "cancelled", /resumes where it stopped/);
        const kept = (await stat(partPath)).size;
        assert.ok(kept > 0);

        server.faults = {};
        server.bytesSent = 0;
        const outcome = await fetchModel();
        assert.equal(outcome.resumedFromBytes, kept);
        assert.deepEqual(server.rangeRequests, [`bytes=${kept}-`]);
        assert.equal(server.bytesSent, server.size - kept, "only the missing bytes were sent");
        assert.equal(outcome.sha256, server.sha256);
        await rm(dir, { recursive: true, force: true });
    });

    test("corrupted bytes: the hash mismatch is reported and the file removed", async () => {
        server.faults = { corruptAt: 1000 };
        await expectFailure(fetchModel(), "checksumMismatch", /corrupt .* deleted/);
        assert.ok(!existsSync(join(dir, file)) && !existsSync(join(dir, `${file}.part`)));
        await rm(dir, { recursive: true, force: true });
    });

    test("404 says the file was not found", async () => {
        server.faults = { notFound: true };
        await expectFailure(
            fetchModel(),
            "downloadFailed",
            /not found in allenai\/OLMo-2-test-GGUF \(HTTP 404\)/,
        );
        await rm(dir, { recursive: true, force: true });
    });

    test("a connection dropped mid-file keeps what arrived, and the next try resumes", async () => {
        server.faults = { dropAfterBytes: 4096 };
        await expectFailure(fetchModel(), "downloadFailed", /connection .* Try again to resume/);
        const kept = (await stat(join(dir, `${file}.part`))).size;
        assert.ok(kept > 0 && kept <= 4096);
        server.faults = {};
        const outcome = await fetchModel();
        assert.equal(outcome.resumedFromBytes, kept);
        assert.equal(outcome.sha256, server.sha256);
        await rm(dir, { recursive: true, force: true });
    });

    test("a server too slow gives a timeout message", async () => {
        server.faults = { stallAfterBytes: 1024 };
        await expectFailure(
            fetchModel(undefined, [], { stallTimeoutMs: 300 }),
            "downloadStalled",
            /stalled: no data for \d+ s/,
        );
        await rm(dir, { recursive: true, force: true });
    });

    test("a server that ignores ranges makes the download start over instead of corrupting it", async () => {
        server.faults = { dropAfterBytes: 2048 };
        await fetchModel().catch(() => undefined);
        server.faults = { ignoreRange: true };
        const outcome = await fetchModel();
        assert.equal(outcome.sha256, server.sha256);
        await rm(dir, { recursive: true, force: true });
    });

    test("offline: a clear message", async () => {
        const closed = createServer();
        await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
        const port = (closed.address() as AddressInfo).port;
        await new Promise<void>((resolve) => closed.close(() => resolve()));
        await expectFailure(
            downloadModel(
                { endpoint: `http://127.0.0.1:${port}`, repo, file },
                dir,
                () => undefined,
                new AbortController().signal,
            ),
            "offline",
            new RegExp(
                `Cannot reach 127\\.0\\.0\\.1:${port}: the connection was refused .*olmo\\.hubEndpoint .*HF_ENDPOINT.* a \\.gguf file already on this computer`,
            ),
        );
        await rm(dir, { recursive: true, force: true });
    });

    test("a server that says 10 bytes and streams on is cut off, and nothing it sent stays on disk", async () => {
        server.faults = { announceBytes: 10, streamOnBytes: 64 * 2 ** 20 };
        await expectFailure(
            fetchModel(),
            "downloadMismatch",
            /more than the 10 bytes it announced; .* deleted/,
        );
        const left = await bytesOnDisk();
        console.log(
            `# overrun: server wrote ${server.bytesSent} bytes, ${left} bytes left on disk`,
        );
        assert.equal(left, 0);
        assert.ok(server.bytesSent < 64 * 2 ** 20, `the server was stopped (${server.bytesSent})`);
        await rm(dir, { recursive: true, force: true });
    });

    test("a 206 that does not start where the resume asked is refused, and the part dropped", async () => {
        server.faults = { dropAfterBytes: 4096 };
        await expectFailure(fetchModel(), "downloadFailed", /Try again to resume/);
        server.faults = { rangeFromStart: true };
        await expectFailure(
            fetchModel(),
            "downloadMismatch",
            /the wrong part of the file \(asked from byte \d+, got "bytes 0-/,
        );
        assert.equal(await bytesOnDisk(), 0);
        await rm(dir, { recursive: true, force: true });
    });

    test("a file whose SHA-256 the hub does not publish is refused unless the user chose it", async () => {
        server.faults = { noHash: true };
        await expectFailure(
            fetchModel(),
            "unverifiable",
            /publishes no SHA-256 for olmo-2-test-Q4_0\.gguf, so the download could not be checked/,
        );
        assert.equal(server.bytesSent, 0, "nothing downloaded");
        const outcome = await fetchModel(undefined, [], { allowUnverified: true });
        assert.equal(outcome.verified, false);
        assert.equal(outcome.sha256, server.sha256, "the hash of what arrived, for the log");
        await rm(dir, { recursive: true, force: true });
    });

    test("http is refused for any host but this machine, and so is a redirect to http", async () => {
        await expectFailure(
            downloadModel(
                { endpoint: "http://hub.example.invalid", repo, file },
                dir,
                () => undefined,
                new AbortController().signal,
            ),
            "downloadFailed",
            /http:\/\/hub\.example\.invalid is not https .*olmo\.hubEndpoint/,
        );
        server.faults = { redirectTo: "http://cdn.example.invalid/model.gguf" };
        await expectFailure(
            fetchModel(),
            "downloadFailed",
            /redirected the download to http:\/\/cdn\.example\.invalid, which is not https/,
        );
        await rm(dir, { recursive: true, force: true });
    });

    test("a file name that is not a plain .gguf name is refused before any request", async () => {
        for (const name of [
            "../evil.gguf",
            "..\\evil.gguf",
            "sub/model.gguf",
            "model.bin",
            ".gguf",
        ]) {
            await expectFailure(
                downloadModel(
                    { ...source, file: name },
                    dir,
                    () => undefined,
                    new AbortController().signal,
                ),
                "invalidParams",
                /is not a plain \.gguf file name/,
            );
        }
        await expectFailure(
            downloadModel(
                { ...source, repo: "../x" },
                dir,
                () => undefined,
                new AbortController().signal,
            ),
            "invalidParams",
            /not a Hugging Face repository name/,
        );
        assert.equal(server.bytesSent + server.rangeRequests.length, 0);
        await rm(dir, { recursive: true, force: true });
    });

    test("a hub name that does not resolve: a clear message naming the host", async () => {
        await expectFailure(
            downloadModel(
                { endpoint: "https://hub.example.invalid", repo, file },
                dir,
                () => undefined,
                new AbortController().signal,
            ),
            "offline",
            /hub\.example\.invalid.*olmo\.hubEndpoint .*HF_ENDPOINT.* a \.gguf file already on this computer/,
        );
        await rm(dir, { recursive: true, force: true });
    });

    test("a server that accepts the connection and never answers: a clear message naming it", async () => {
        const sockets: Socket[] = [];
        const silent = createTcpServer((socket) => void sockets.push(socket));
        await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
        const port = (silent.address() as AddressInfo).port;
        try {
            await expectFailure(
                downloadModel(
                    { endpoint: `http://127.0.0.1:${port}`, repo, file },
                    dir,
                    () => undefined,
                    new AbortController().signal,
                ),
                "offline",
                new RegExp(
                    `127\\.0\\.0\\.1:${port} did not answer within 10 s\\. Check the connection`,
                ),
            );
            assert.ok(sockets.length > 0, "the connection was accepted");
        } finally {
            for (const socket of sockets) socket.destroy();
            silent.close();
        }
        await rm(dir, { recursive: true, force: true });
    });
});

describe("sidecar: olmo/inspectModel and olmo/download over stdio", () => {
    let server: ModelServer;
    let sidecar: SidecarProcess;
    let dir: string;
    before(async () => {
        server = await ModelServer.start({ repo, file, path: await ensureTestModel("tiny") });
        ({ sidecar } = await SidecarProcess.start());
        dir = await mkdtemp(join(tmpdir(), "olmo-download-rpc-"));
    });
    after(async () => {
        await sidecar?.stop();
        await server?.stop();
        await rm(dir, { recursive: true, force: true });
    });

    test("inspecting the remote file reads only its header and says whether it fits", async () => {
        const fit = await sidecar.request("olmo/inspectModel", {
            source: { endpoint: server.endpoint, repo, file },
            contextSize: 1024,
        });
        assert.equal(fit.architecture, "olmo2");
        // The tiny model fits any machine: on the GPU where there is one, else on the CPU.
        assert.equal(
            fit.verdict,
            fit.backend === "cpu" ? "cpu" : "gpu",
            `${fit.backend}: ${fit.message}`,
        );
        assert.ok(fit.modelBytes > 0 && fit.contextBytes > 0);
        assert.ok(
            server.bytesSent < server.size / 2,
            `read ${server.bytesSent} of ${server.size} bytes`,
        );
    });

    async function inspectFailure(source: {
        endpoint: string;
        repo: string;
        file: string;
    }): Promise<{ error: unknown; ms: number }> {
        const started = performance.now();
        const error: unknown = await sidecar
            .request("olmo/inspectModel", { source, contextSize: 1024 })
            .then(
                () => undefined,
                (failure: unknown) => failure,
            );
        return { error, ms: performance.now() - started };
    }

    test("a remote header whose one string claims 1.5 GB: modelInvalid, within the file or the cap", async () => {
        const bombDir = await mkdtemp(join(tmpdir(), "olmo-remote-bomb-"));
        const bombPath = join(bombDir, file);
        await writeFile(bombPath, stringLengthBomb());
        const bombServer = await ModelServer.start({ repo, file, path: bombPath });
        try {
            const source = { endpoint: bombServer.endpoint, repo, file };
            const small = await inspectFailure(source);
            bombServer.faults = { announceBytes: 2e9 };
            const large = await inspectFailure(source);
            for (const { error } of [small, large]) {
                assert.ok(error instanceof ResponseError, String(error));
                assert.equal(error.code, ErrorCodes.modelInvalid, error.message);
            }
            assert.match(
                (small.error as Error).message,
                /olmo-2-test-Q4_0\.gguf on 127\.0\.0\.1:\d+ is not a valid GGUF model \(the value of a at byte 45 claims 1500000000 bytes, but only 0 remain/,
            );
            assert.match(
                (large.error as Error).message,
                /claims 1500000000 bytes, past the 64 MiB a model header may take/,
            );
        } finally {
            await bombServer.stop();
            await rm(bombDir, { recursive: true, force: true });
        }
    });

    test("first use without a network: inspecting ends with a message naming the host", async () => {
        const unresolvable = await inspectFailure({
            endpoint: "https://hub.example.invalid",
            repo,
            file,
        });
        const sockets: Socket[] = [];
        const silent = createTcpServer((socket) => void sockets.push(socket));
        await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
        const port = (silent.address() as AddressInfo).port;
        let unanswered: { error: unknown; ms: number };
        try {
            unanswered = await inspectFailure({ endpoint: `http://127.0.0.1:${port}`, repo, file });
        } finally {
            for (const socket of sockets) socket.destroy();
            silent.close();
        }
        console.log(
            `# time to the message: unresolvable name ${unresolvable.ms.toFixed(0)} ms, silent server ${unanswered.ms.toFixed(0)} ms`,
        );
        for (const { error } of [unresolvable, unanswered]) {
            assert.ok(error instanceof ResponseError, String(error));
            assert.equal(error.code, ErrorCodes.offline, error.message);
            assert.match(
                error.message,
                /olmo\.hubEndpoint .*HF_ENDPOINT.* a \.gguf file already on this computer/,
            );
        }
        assert.match((unresolvable.error as Error).message, /hub\.example\.invalid/);
        assert.match(
            (unanswered.error as Error).message,
            new RegExp(`127\\.0\\.0\\.1:${port} did not answer within 10 s`),
        );
    });

    test("download streams progress and lands a verified file", async () => {
        const progress: DownloadProgress[] = [];
        const token = "dl-1";
        const subscription = sidecar.connection.onProgress(
            new ProgressType<DownloadProgress>(),
            token,
            (p) => {
                progress.push(p);
            },
        );
        const result = await sidecar.request("olmo/download", {
            endpoint: server.endpoint,
            repo,
            file,
            directory: dir,
            partialResultToken: token,
        });
        subscription.dispose();
        assert.equal(result.sha256, server.sha256);
        assert.equal(result.verified, true);
        assert.equal(result.path, join(dir, file));
        assert.ok(progress.length >= 1 && progress.at(-1)!.receivedBytes === server.size);
    });
});
