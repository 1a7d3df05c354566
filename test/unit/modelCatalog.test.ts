// Which OLMo model set-up recommends for a machine, and why (extension/modelCatalog.ts).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
    CATALOG,
    canHold,
    kvBytes,
    largestContext,
    recommend,
    type Machine,
} from "../../extension/modelCatalog.js";

const GB = 1e9;
const machine = (vram: number, ram: number, disk = 500 * GB): Machine => ({
    freeVramBytes: vram * GB,
    freeRamBytes: ram * GB,
    freeDiskBytes: disk,
});

describe("model catalog: the right model for the machine", () => {
    test("every entry names a repository, a .gguf file, a license and where it was verified", () => {
        for (const model of Object.values(CATALOG)) {
            assert.match(model.repo, /^[\w.-]+\/[\w.-]+-GGUF$/);
            assert.match(model.file, /Q4_K_M\.gguf$/);
            assert.equal(model.license, "Apache-2.0");
            assert.ok(model.verifiedIn.length > 20);
        }
    });

    test("the 13B's KV cache is 800 KiB a token; OLMo 3's sliding layers stop growing at the window", () => {
        assert.equal(kvBytes(CATALOG["olmo-2-13b"]!, 1), 800 * 1024);
        const olmo3 = CATALOG["olmo-3-7b"]!;
        const growth = kvBytes(olmo3, 65536) - kvBytes(olmo3, 32768);
        assert.equal(
            growth,
            olmo3.fullKvBytesPerToken * 32768,
            "past the window only full layers grow",
        );
        assert.ok(kvBytes(olmo3, 65536) < kvBytes(CATALOG["olmo-2-7b"]!, 32768) / 1.5);
    });

    test("no GPU: a 7B, because the 13B is slow on the CPU", () => {
        const advice = recommend(machine(0, 20));
        assert.equal(advice.id, "olmo-3-7b");
        assert.match(advice.reason, /no GPU found/);
    });

    test("an 8 GB GPU: OLMo 3 7B, with the context it leaves room for", () => {
        const advice = recommend(machine(8, 16));
        assert.equal(advice.id, "olmo-3-7b");
        assert.equal(advice.reason, "fits your 8 GB GPU with a 4k context");
    });

    test("a 12 GB GPU: still a 7B, with a long context (the 13B needs about 12.8 GB)", () => {
        const advice = recommend(machine(12, 32));
        assert.equal(advice.id, "olmo-3-7b");
        assert.equal(advice.reason, "fits your 12 GB GPU with a 32k context");
    });

    test("a 16 GB GPU: the 13B with its whole 4k context", () => {
        const advice = recommend(machine(16, 32));
        assert.equal(advice.id, "olmo-2-13b");
        assert.equal(advice.reason, "fits your 16 GB GPU with a 4k context");
    });

    test("a 24 GB GPU holds the 32B", () => {
        const advice = recommend(machine(24, 64));
        assert.equal(advice.id, "olmo-3-32b");
        assert.match(advice.reason, /^fits your 24 GB GPU with a \d+k context$/);
    });

    test("too little disk for the 32B: the next that fits", () => {
        assert.equal(recommend(machine(24, 64, 15 * GB)).id, "olmo-2-13b");
    });

    test("a GPU too small for any: says the 13B would run mostly or half on the CPU", () => {
        const advice = recommend(machine(4, 24));
        assert.equal(advice.id, "olmo-3-7b");
        assert.match(advice.reason, /^the OLMo-2 13B would run (half|mostly) on the CPU here$/);
    });

    test("the 32B is offered only where it can run", () => {
        const big = CATALOG["olmo-3-32b"]!;
        assert.equal(canHold(big, machine(0, 16)), false);
        assert.equal(canHold(big, machine(8, 24)), true);
        assert.equal(canHold(big, machine(24, 64, 10 * GB)), false, "not on a nearly full disk");
    });

    test("the largest context steps down to what fits, 0 when even 4k does not", () => {
        const model = CATALOG["olmo-3-7b"]!;
        assert.equal(largestContext(model, 100 * GB), 65536);
        assert.equal(largestContext(model, 3 * GB), 0);
        assert.equal(largestContext(CATALOG["olmo-2-13b"]!, 100 * GB), 4096, "capped at training");
    });
});
