// Which thread count is fastest here: the baseline's first turn (the long prompt, then a short
// decode) at each count, on one loaded model, alternating the order round by round.
import type { Llama } from "node-llama-cpp";
import { BaselineSide, type SideSettings } from "./baselineSide.js";
import { runWorkloads, type ChatRequest, type TurnMeasure } from "./workload.js";

export const SWEEP_ROUNDS = 3;
/** Fewer tokens than the main decode, and a time limit: two threads on two busy cores can collapse. */
export const SWEEP_DECODE_TOKENS = 32;
const SWEEP_DECODE_TIME_LIMIT_MS = 15_000;

export interface SweepProbe {
    round: number;
    threads: number;
    first: TurnMeasure;
    /** Cut short by the time limit. */
    stoppedEarly: boolean;
}

export async function runThreadSweep(
    llama: Llama,
    settings: SideSettings,
    prompt: string,
    threadCounts: number[],
    log: (line: string) => void,
): Promise<SweepProbe[]> {
    const probes: SweepProbe[] = [];
    const model = await llama.loadModel({ modelPath: settings.modelPath, gpuLayers: "auto" });
    try {
        for (let round = 1; round <= SWEEP_ROUNDS; round++) {
            const order = round % 2 === 1 ? threadCounts : [...threadCounts].reverse();
            for (const threads of order) {
                const side = await BaselineSide.onModel(model, { ...settings, threads });
                try {
                    const limited = {
                        chat: (request: ChatRequest) =>
                            side.chat(request, SWEEP_DECODE_TIME_LIMIT_MS),
                    };
                    const [{ first }] = await runWorkloads(
                        [limited],
                        prompt,
                        SWEEP_DECODE_TOKENS,
                        true,
                    );
                    probes.push({
                        round,
                        threads,
                        first,
                        stoppedEarly: first.completionTokens < SWEEP_DECODE_TOKENS,
                    });
                    log(`sweep round ${round}: ${threads} thread(s) done`);
                } finally {
                    await side.stop();
                }
            }
        }
    } finally {
        await model.dispose();
    }
    return probes;
}
