// Memory estimates for the real 13B shape (a generated header-only file: tensor infos, no data)
// against the figures in reference/olmo2.md, and the verdicts for machines of several sizes.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { getLlama, GgufInsights, readGgufFileInfo, type Llama } from "node-llama-cpp";
import { affordableSequences, estimateFit } from "../../sidecar/fitEstimate.js";
import { ensureTestModel, OLMO2_13B_SHAPE } from "../support/models.js";
import type { Olmo2Shape } from "../support/olmo2-model.js";

const GiB = 2 ** 30;

describe("model: memory fit estimates on the 13B shape", () => {
    let llama: Llama;
    let insights: GgufInsights;
    before(async () => {
        llama = await getLlama({ gpu: false, build: "never", progressLogs: false });
        const path = await ensureTestModel(OLMO2_13B_SHAPE, { headerOnly: true });
        insights = await GgufInsights.from(await readGgufFileInfo(path), llama);
    });
    after(() => llama?.dispose());

    test("weights and KV cache match the reference figures", () => {
        const fit = estimateFit(insights, 4096, { freeVram: 80 * GiB, freeRam: 64 * GiB });
        assert.equal(fit.totalLayers, 41, "40 blocks and the output layer");
        // Reference: Q4_K_M weights 7.51 GiB on the GPU; this file is Q4_0 (7.85 GB vs 8.35 GB on disk).
        assert.ok(
            fit.modelBytes > 6.5 * GiB && fit.modelBytes < 7.6 * GiB,
            `weights ${(fit.modelBytes / GiB).toFixed(2)} GiB`,
        );
        // Reference: 800 KiB per token of KV = 3.1 GiB at 4096, plus compute buffers (about 3.2 in all).
        assert.ok(
            fit.contextBytes > 3.1 * GiB && fit.contextBytes < 4.3 * GiB,
            `context ${(fit.contextBytes / GiB).toFixed(2)} GiB`,
        );
        // Reference: about 11 GiB of VRAM with the full context.
        assert.ok(
            fit.fullGpuVramBytes > 10 * GiB && fit.fullGpuVramBytes < 12.5 * GiB,
            `full GPU ${(fit.fullGpuVramBytes / GiB).toFixed(2)} GiB`,
        );
        assert.equal(fit.verdict, "gpu");
    });

    test("an 8 GiB GPU holds part of the layers", () => {
        const fit = estimateFit(insights, 4096, { freeVram: 8 * GiB, freeRam: 32 * GiB });
        assert.equal(fit.verdict, "partial");
        assert.ok(fit.gpuLayers > 5 && fit.gpuLayers < 41, `${fit.gpuLayers} layers`);
        assert.match(fit.message, /of 41 layers on the GPU/);
    });

    test("a smaller context frees room for more layers", () => {
        const big = estimateFit(insights, 4096, { freeVram: 8 * GiB, freeRam: 32 * GiB });
        const small = estimateFit(insights, 1024, { freeVram: 8 * GiB, freeRam: 32 * GiB });
        assert.ok(small.gpuLayers > big.gpuLayers);
    });

    test("no GPU but enough RAM runs on the CPU; too little RAM says it does not fit, with a suggestion", () => {
        assert.equal(
            estimateFit(insights, 4096, { freeVram: 0, freeRam: 32 * GiB }).verdict,
            "cpu",
        );
        const none = estimateFit(insights, 4096, { freeVram: 0, freeRam: 4 * GiB });
        assert.equal(none.verdict, "none");
        assert.match(none.message, /smaller quantization/);
    });

    test("a second conversation's KV cache counts, and is kept only where it fits the free memory", () => {
        const one = estimateFit(insights, 4096, { freeVram: 80 * GiB, freeRam: 64 * GiB });
        const two = estimateFit(insights, 4096, { freeVram: 80 * GiB, freeRam: 64 * GiB }, 2);
        assert.ok(
            two.contextBytes > one.contextBytes + 3 * GiB,
            `two contexts ${(two.contextBytes / GiB).toFixed(2)} GiB, one ${(one.contextBytes / GiB).toFixed(2)} GiB`,
        );
        const onGpu = { contextSize: 4096, gpuLayers: 41 };
        assert.equal(
            affordableSequences(insights, onGpu, { freeVram: 20 * GiB, freeRam: 8 * GiB }, 2),
            2,
        );
        assert.equal(
            affordableSequences(insights, onGpu, { freeVram: 4 * GiB, freeRam: 64 * GiB }, 2),
            1,
        );
        const onCpu = { contextSize: 4096, gpuLayers: 0 };
        assert.equal(
            affordableSequences(insights, onCpu, { freeVram: 0, freeRam: 16 * GiB }, 2),
            2,
        );
        assert.equal(affordableSequences(insights, onCpu, { freeVram: 0, freeRam: 4 * GiB }, 2), 1);
    });
});

describe("model: the fit estimate counts OLMo 3's small sliding-window cache", () => {
    // OLMo 3 7B's layout (32 x 4096, 32/32 heads, FFN 11008), header only: with and without the window.
    const olmo3: Olmo2Shape = {
        layers: 32,
        width: 4096,
        ffn: 11008,
        heads: 32,
        kvHeads: 32,
        contextLength: 65536,
        type: "Q4_0",
        seed: 1,
        name: "olmo3-test-7b",
        family: "olmo3",
        slidingWindow: 4096,
    };
    let llama: Llama;
    const insightsOf = async (shape: Olmo2Shape) =>
        GgufInsights.from(
            await readGgufFileInfo(await ensureTestModel(shape, { headerOnly: true })),
            llama,
        );
    before(async () => {
        llama = await getLlama({ gpu: false, build: "never", progressLogs: false });
    });
    after(() => llama?.dispose());

    test("at 32k tokens the windowed cache is a fraction of the full one", async () => {
        const memory = { freeVram: 80 * GiB, freeRam: 64 * GiB };
        const windowed = estimateFit(await insightsOf(olmo3), 32768, memory);
        const full = estimateFit(
            await insightsOf({
                ...olmo3,
                family: "olmo2",
                slidingWindow: undefined,
                name: "olmo2-test-7b-65k",
            }),
            32768,
            memory,
        );
        // Full attention: 512 KiB a token = 16 GiB; windowed: 8 full layers (4 GiB) + 24 layers x 4096
        // tokens (1.5 GiB); both plus the same compute buffers (about 2 GiB).
        assert.ok(full.contextBytes > 16 * GiB, `full ${(full.contextBytes / GiB).toFixed(2)} GiB`);
        assert.ok(
            windowed.contextBytes < 0.5 * full.contextBytes,
            `windowed ${(windowed.contextBytes / GiB).toFixed(2)} GiB of ${(full.contextBytes / GiB).toFixed(2)}`,
        );
    });
});
