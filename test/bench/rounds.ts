// One round: the baseline and the product each load the model, then run the workload turn by turn
// (each request on one side, then on the other), then unload. The order flips every round.
import type { Llama } from "node-llama-cpp";
import { BaselineSide, type SideSettings } from "./baselineSide.js";
import { memoryGrowth, processMemory, type ProcessMemory } from "./machine.js";
import { ProductSide } from "./productSide.js";
import { runWorkloads, type WorkloadResult } from "./workload.js";

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
    const order = round % 2 === 1 ? ["product", "baseline"] : ["baseline", "product"];
    const started = performance.now();
    let baseline: BaselineSide | undefined;
    let product: ProductSide | undefined;
    try {
        // Both sides load in the round's order and stay loaded, then take turns request by request.
        let baselineMemory: ProcessMemory | undefined;
        for (const name of order) {
            if (name === "baseline") {
                const before = await processMemory("self");
                baseline = await BaselineSide.start(plan.llama, plan.settings);
                baselineMemory = memoryGrowth(await processMemory("self"), before);
            } else {
                product = await ProductSide.start(plan.settings);
            }
        }
        if (!baseline || !product || !baselineMemory) throw new Error("a side did not start");
        const productMemory = await processMemory(product.pid);
        const memoryBefore = await processMemory("self");
        const sides = { baseline, product };
        const [first, second] = await runWorkloads(
            order.map((name) => sides[name as keyof typeof sides]),
            plan.prompt,
            plan.decodeTokens,
        );
        const workloads = { [order[0]]: first, [order[1]]: second } as Record<
            "baseline" | "product",
            WorkloadResult
        >;
        plan.log(
            `round ${round + 1}: ${order.join(" then ")}, turn by turn, done in ${((performance.now() - started) / 1000).toFixed(1)} s`,
        );
        return {
            round: round + 1,
            order,
            baseline: {
                workload: workloads.baseline,
                loadMs: baseline.loadMs,
                memoryAfterLoad: baselineMemory,
                // What this process grew by during the workload, added to what the load took.
                memoryAfterWorkload: addMemory(
                    baselineMemory,
                    memoryGrowth(await processMemory("self"), memoryBefore),
                ),
            },
            product: {
                workload: workloads.product,
                loadMs: product.loadMs,
                engineLoadMs: product.engineLoadMs,
                initializeMs: product.initializeMs,
                memoryBeforeLoad: product.memoryBeforeLoad,
                memoryAfterLoad: productMemory,
                memoryAfterWorkload: await processMemory(product.pid),
            },
        };
    } finally {
        await baseline?.stop();
        await product?.stop();
    }
}

function addMemory(a: ProcessMemory, b: ProcessMemory): ProcessMemory {
    return {
        rssBytes: a.rssBytes + b.rssBytes,
        anonBytes: a.anonBytes + b.anonBytes,
        fileBytes: a.fileBytes + b.fileBytes,
    };
}
