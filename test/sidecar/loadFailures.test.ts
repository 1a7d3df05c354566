// Loading what should not load, and loading with too little memory, through the real sidecar.
// Damaged headers: copies of the tiny model with one header value patched in place. Several of
// these make llama.cpp abort the whole process (an assertion, a division by zero), so the sidecar
// must refuse them itself, with a message naming the value, and stay usable.
// Memory: the process runs under RLIMIT_DATA, a real ceiling its allocations hit as on a machine
// that is out of memory; the context that fits below it is found by halving.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ResponseError } from "vscode-jsonrpc/node";
import { ErrorCodes } from "../../sidecar/protocol.js";
import { SidecarProcess } from "../support/sidecarProcess.js";
import { ensureTestModel } from "../support/models.js";
import { stringLengthBomb } from "../support/hostileModels.js";

/** A copy of a GGUF with one metadata value overwritten (same type, same size). */
function patchMetadata(
    gguf: Buffer,
    key: string,
    write: (copy: Buffer, valueAt: number) => void,
): Buffer {
    const copy = Buffer.from(gguf);
    const name = Buffer.from(key, "utf8");
    // A key is stored as u64 length + bytes, then its u32 type and the value; skip longer keys it prefixes.
    for (let at = copy.indexOf(name); at >= 0; at = copy.indexOf(name, at + 1)) {
        if (copy.readBigUInt64LE(at - 8) === BigInt(name.length)) {
            write(copy, at + name.length + 4);
            return copy;
        }
    }
    throw new Error(`no metadata key ${key}`);
}

const u32 = (value: number) => (copy: Buffer, at: number) => copy.writeUInt32LE(value, at);
const f32 = (value: number) => (copy: Buffer, at: number) => copy.writeFloatLE(value, at);

describe("sidecar: damaged headers and memory fallback", () => {
    let sidecar: SidecarProcess;
    let modelPath: string;
    let dir: string;
    let original: Buffer;

    before(async () => {
        modelPath = await ensureTestModel("tiny");
        original = await readFile(modelPath);
        dir = await mkdtemp(join(tmpdir(), "olmo-load-failures-"));
        ({ sidecar } = await SidecarProcess.start());
    });
    after(async () => {
        await sidecar?.stop();
        await rm(dir, { recursive: true, force: true });
    });

    const damaged: Array<[string, () => Buffer, RegExp]> = [
        [
            "a header claiming one more tensor than there is",
            () => withCount(8, original.readBigUInt64LE(8) + 1n),
            /not a valid GGUF/,
        ],
        [
            "a header claiming 2^64-1 tensors",
            () => withCount(8, 2n ** 64n - 1n),
            /claims 18446744073709551615 tensors/,
        ],
        [
            "a header claiming 10^12 metadata entries",
            () => withCount(16, 10n ** 12n),
            /claims 1000000000000 metadata entries/,
        ],
        [
            "olmo2.block_count = 0",
            () => patchMetadata(original, "olmo2.block_count", u32(0)),
            /olmo2\.block_count is 0 \(expected a whole number from 1 to 512\)/,
        ],
        [
            "olmo2.block_count = 4294967295",
            () => patchMetadata(original, "olmo2.block_count", u32(0xffffffff)),
            /olmo2\.block_count is 4294967295/,
        ],
        [
            "olmo2.embedding_length = 0",
            () => patchMetadata(original, "olmo2.embedding_length", u32(0)),
            /olmo2\.embedding_length is 0/,
        ],
        [
            "olmo2.feed_forward_length = 0",
            () => patchMetadata(original, "olmo2.feed_forward_length", u32(0)),
            /olmo2\.feed_forward_length is 0/,
        ],
        [
            "olmo2.attention.head_count = 0",
            () => patchMetadata(original, "olmo2.attention.head_count", u32(0)),
            /olmo2\.attention\.head_count is 0/,
        ],
        [
            "olmo2.attention.head_count_kv = 0",
            () => patchMetadata(original, "olmo2.attention.head_count_kv", u32(0)),
            /olmo2\.attention\.head_count_kv is 0/,
        ],
        [
            "olmo2.context_length = 0",
            () => patchMetadata(original, "olmo2.context_length", u32(0)),
            /olmo2\.context_length is 0/,
        ],
        [
            "a NaN norm epsilon",
            () => patchMetadata(original, "olmo2.attention.layer_norm_rms_epsilon", f32(NaN)),
            /layer_norm_rms_epsilon is NaN/,
        ],
    ];
    function withCount(offset: number, count: bigint): Buffer {
        const copy = Buffer.from(original);
        copy.writeBigUInt64LE(count, offset);
        return copy;
    }

    for (const [name, make, message] of damaged) {
        test(`${name}: a specific modelInvalid, and the process stays usable`, async () => {
            const path = join(dir, `${name.replace(/\W+/g, "-")}.gguf`);
            await writeFile(path, make());
            await assert.rejects(
                sidecar.request("olmo/load", {
                    modelPath: path,
                    gpu: "cpu",
                    contextSize: 512,
                    threads: 1,
                }),
                (error: unknown) => {
                    assert.ok(error instanceof ResponseError, String(error));
                    assert.equal(error.code, ErrorCodes.modelInvalid, error.message);
                    assert.match(error.message, message);
                    return true;
                },
            );
            assert.equal(sidecar.child.exitCode, null, "still running");
            assert.equal(sidecar.child.signalCode, null);
        });
    }

    test("after all of them, the good model loads and answers in the same process", async () => {
        const info = await sidecar.request("olmo/load", {
            modelPath,
            gpu: "cpu",
            contextSize: 512,
            threads: 1,
        });
        assert.equal(info.fallback, undefined, "nothing reduced with memory to spare");
        const { result } = await sidecar.chat({
            conversationId: "after",
            messages: [{ role: "user", content: "hi" }],
            sampling: { maxTokens: 4 },
        });
        assert.equal(result.usage.completionTokens, 4);
    });

    // Limits are set from what a sidecar holds loaded at 512 tokens x 256 sequences (the KV cache
    // of 4096 x 256 is 512 MiB, of 512 x 256 64 MiB; the compute buffer is ~200 MiB at any size).
    // Not every failing allocation in llama.cpp fails cleanly: a small one (ggml_init) aborts the
    // process, so the two limits sit where, found by a sweep, only the large ones fail.
    let floorBytes: number | undefined;
    async function floor(): Promise<number> {
        if (floorBytes === undefined) {
            const probe = await SidecarProcess.start();
            try {
                await probe.sidecar.request("olmo/load", {
                    modelPath,
                    gpu: "cpu",
                    contextSize: 512,
                    sequences: 256,
                    threads: 1,
                });
                floorBytes = await dataBytes(probe.sidecar.pid);
            } finally {
                await probe.sidecar.stop();
            }
        }
        return floorBytes;
    }

    test("out of memory at the requested context: retried smaller, and the fallback is reported", async () => {
        // 4096 tokens fail; a smaller context fits, even with what the failed attempts leave allocated.
        const limit = (await floor()) + 250 * 2 ** 20;
        const { sidecar: limited } = await SidecarProcess.start({ dataLimitBytes: limit });
        try {
            const info = await limited.request("olmo/load", {
                modelPath,
                gpu: "cpu",
                contextSize: 4096,
                sequences: 256,
                threads: 1,
            });
            assert.ok(
                info.contextSize === 512 || info.contextSize === 1024,
                `context ${info.contextSize}`,
            );
            assert.equal(
                info.fallback,
                `reduced to fit in memory: context 4096 → ${info.contextSize} tokens`,
            );
            assert.match(
                limited.stderr,
                /out of memory \(.*(allocate|memory).*\); retrying with a context of 2048 tokens/,
            );
            const { result } = await limited.chat({
                conversationId: "small",
                messages: [{ role: "user", content: "hi" }],
                sampling: { maxTokens: 4 },
            });
            assert.equal(result.contextSize, info.contextSize);
            console.log(
                `# memory fallback under a ${(limit / 2 ** 20).toFixed(0)} MiB data limit: ${info.fallback}`,
            );
        } finally {
            await limited.stop();
        }
    });

    test("out of memory even at the smallest context: outOfMemory, with what to lower", async () => {
        const limit = (await floor()) - 110 * 2 ** 20;
        const { sidecar: starved } = await SidecarProcess.start({ dataLimitBytes: limit });
        try {
            await assert.rejects(
                starved.request("olmo/load", {
                    modelPath,
                    gpu: "cpu",
                    contextSize: 4096,
                    sequences: 256,
                    threads: 1,
                }),
                (error: unknown) => {
                    assert.ok(
                        error instanceof ResponseError && error.code === ErrorCodes.outOfMemory,
                        String(error),
                    );
                    assert.match(error.message, /Lower olmo\.contextSize/);
                    return true;
                },
            );
            assert.match(
                starved.stderr,
                /a context of 512 tokens/,
                "tried down to the smallest context",
            );
            assert.equal(starved.child.exitCode, null, "refused, not crashed");
            assert.equal(await starved.request("olmo/modelInfo", {}), null, "and answering");
        } finally {
            await starved.stop();
        }
    });
});

describe("sidecar: a GGUF whose length fields lie", () => {
    let dir: string;
    before(async () => (dir = await mkdtemp(join(tmpdir(), "olmo-bomb-"))));
    after(() => rm(dir, { recursive: true, force: true }));

    /** Loads `modelPath` in a fresh sidecar: the error, and the process's peak resident memory. */
    async function loadInFreshSidecar(
        modelPath: string,
    ): Promise<{ error: unknown; peakBytes: number }> {
        const { sidecar } = await SidecarProcess.start();
        try {
            const error: unknown = await sidecar
                .request("olmo/load", { modelPath, gpu: "cpu", contextSize: 512, threads: 1 })
                .then(
                    () => undefined,
                    (failure: unknown) => failure,
                );
            return { error, peakBytes: await peakResidentBytes(sidecar.pid) };
        } finally {
            await sidecar.stop();
        }
    }

    test("a 45-byte file whose one string claims 1.5 GB: modelInvalid, in the memory of a missing file", async () => {
        const bombPath = join(dir, "bomb.gguf");
        await writeFile(bombPath, stringLengthBomb());
        const missing = await loadInFreshSidecar(join(dir, "missing.gguf"));
        const bomb = await loadInFreshSidecar(bombPath);
        console.log(
            `# peak RSS (VmHWM) of the sidecar: missing file ${mib(missing.peakBytes)} MiB, 1.5 GB string bomb ${mib(bomb.peakBytes)} MiB`,
        );
        assert.ok(missing.error instanceof ResponseError, String(missing.error));
        assert.equal(missing.error.code, ErrorCodes.modelMissing);
        assert.ok(bomb.error instanceof ResponseError, String(bomb.error));
        assert.equal(bomb.error.code, ErrorCodes.modelInvalid, bomb.error.message);
        assert.match(
            bomb.error.message,
            /bomb\.gguf is not a valid GGUF model \(the value of a at byte 45 claims 1500000000 bytes, but only 0 remain in the file\)/,
        );
        assert.ok(
            bomb.peakBytes - missing.peakBytes < 200 * 2 ** 20,
            `${mib(bomb.peakBytes - missing.peakBytes)} MiB more than for a missing file`,
        );
    });
});

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

/** VmHWM of a process: the most resident memory it has had. */
async function peakResidentBytes(pid: number): Promise<number> {
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    return Number(/^VmHWM:\s+(\d+) kB/m.exec(status)![1]) * 1024;
}

/** VmData of a process: what RLIMIT_DATA limits. */
async function dataBytes(pid: number): Promise<number> {
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    return Number(/^VmData:\s+(\d+) kB/m.exec(status)![1]) * 1024;
}
