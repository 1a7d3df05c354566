// One round: the baseline and the product each load the model, run the workload and unload. The
// order flips every round, so that a machine getting busier or quieter during the run weighs on
// both sides alike.
import type { Llama } from "node-llama-cpp";
import { BaselineSide, type SideSettings } from "./baselineSide.js";
import { memoryGrowth, processMemory, type ProcessMemory } from "./machine.js";
import { ProductSide } from "./productSide.js";
import { runWorkload, type WorkloadResult } from "./workload.js";

export interface SideRound {
    workload: WorkloadResult;
    loadMs: number;
    /** Product only: the engine's share of `loadMs`, the rest is importing node-llama-cpp and checking the file. */
    engineLoadMs?: number;
    /** Product only: spawn until `initialize` is answered. */
    initializeMs?: number;
    /** Product only: the sidecar before it loads a model. */
    memoryBeforeLoad?: ProcessMemory;
    /** Product: the whole sidecar process. Baseline: what this process grew by. */
    memoryAfterLoad: ProcessMemory;
    memoryAfterWorkload: ProcessMemory;
}

export interface RoundResult {
    round: number;
    order: string[];
    baseline: SideRound;
    product: SideRound;
}

export interface RoundPlan {
    llama: Llama;
    settings: SideSettings;
    prompt: string;
    decodeTokens: number;
    log: (line: string) => void;
}

export async function runRound(round: number, plan: RoundPlan): Promise<RoundResult> {
    let baseline: SideRound | undefined;
    let product: SideRound | undefined;
    const runs: Array<{ name: string; run: () => Promise<void> }> = [
        { name: "baseline", run: async () => { baseline = await runBaseline(plan); } },
        { name: "product", run: async () => { product = await runProduct(plan); } },
    ];
    if (round % 2 === 1) runs.reverse();
    for (const { name, run } of runs) {
        const started = performance.now();
        await run();
        plan.log(`round ${round + 1}: ${name} done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    }
    if (!baseline || !product) throw new Error("a side did not run");
    return { round: round + 1, order: runs.map(({ name }) => name), baseline, product };
}

async function runBaseline(plan: RoundPlan): Promise<SideRound> {
    const before = await processMemory("self");
    const side = await BaselineSide.start(plan.llama, plan.settings);
    try {
        const memoryAfterLoad = memoryGrowth(await processMemory("self"), before);
        const workload = await runWorkload(side, plan.prompt, plan.decodeTokens);
        const memoryAfterWorkload = memoryGrowth(await processMemory("self"), before);
        return { workload, loadMs: side.loadMs, memoryAfterLoad, memoryAfterWorkload };
    } finally {
        await side.stop();
    }
}

async function runProduct(plan: RoundPlan): Promise<SideRound> {
    const side = await ProductSide.start(plan.settings);
    try {
        const memoryAfterLoad = await processMemory(side.pid);
        const workload = await runWorkload(side, plan.prompt, plan.decodeTokens);
        const memoryAfterWorkload = await processMemory(side.pid);
        return {
            workload,
            loadMs: side.loadMs,
            engineLoadMs: side.engineLoadMs,
            initializeMs: side.initializeMs,
            memoryBeforeLoad: side.memoryBeforeLoad,
            memoryAfterLoad,
            memoryAfterWorkload,
        };
    } finally {
        await side.stop();
    }
}
