// Command line of the benchmark: `node --import tsx test/bench/bench.ts [options]`.
import { parseArgs } from "node:util";
import type { Olmo2Shape } from "../support/olmo2-model.js";
import { OLMO2_13B_SHAPE, OLMO2_1B_SHAPE, SMALL_SHAPE, TINY_SHAPE } from "../support/models.js";

export const SHAPES = {
    tiny: TINY_SHAPE,
    small: SMALL_SHAPE,
    "1b": OLMO2_1B_SHAPE,
    "13b": OLMO2_13B_SHAPE,
} as const satisfies Record<string, Olmo2Shape>;
export type ShapeName = keyof typeof SHAPES;

/** The protocol's GPU choices that make sense on a benchmark machine (metal: none here). */
export const GPU_CHOICES = ["auto", "cpu", "cuda", "vulkan"] as const;
export type BenchGpu = (typeof GPU_CHOICES)[number];

export interface BenchOptions {
    shape: ShapeName;
    rounds: number;
    /** Compute threads, the same for both sides. */
    threads: number;
    gpu: BenchGpu;
    contextSize: number;
    promptTokens: number;
    decodeTokens: number;
    /** Thread counts the baseline-only thread sweep compares (empty: no sweep). */
    sweepThreads: number[];
    /** Rounds of the speculative rewrite section (0: none). */
    speculationRounds: number;
    out: string;
}

const USAGE = `usage: bench.ts [--shape tiny|small|1b|13b] [--rounds N] [--threads N] [--gpu auto|cpu|cuda|vulkan]
                [--context N] [--prompt-tokens N] [--decode-tokens N] [--sweep-threads 1,2|none]
                [--speculation-rounds N] [--out file]`;

function fail(message: string): never {
    console.error(`${message}\n${USAGE}`);
    process.exit(2);
}

function positiveInt(name: string, value: string): number {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1)
        fail(`--${name} must be a positive integer, not ${JSON.stringify(value)}`);
    return n;
}

function isOneOf<T extends string>(choices: readonly T[], value: string): value is T {
    return (choices as readonly string[]).includes(value);
}

export function parseBenchOptions(argv: string[]): BenchOptions {
    const { values } = parseArgs({
        args: argv,
        options: {
            shape: { type: "string", default: "1b" },
            rounds: { type: "string", default: "5" },
            threads: { type: "string", default: "1" },
            gpu: { type: "string", default: "cpu" },
            context: { type: "string", default: "4096" },
            // The issue asks for 512; 256 keeps five rounds of the 1B shape on a 2-core CPU near five minutes.
            "prompt-tokens": { type: "string", default: "256" },
            "decode-tokens": { type: "string", default: "128" },
            "sweep-threads": { type: "string", default: "1,2" },
            "speculation-rounds": { type: "string", default: "3" },
            out: { type: "string", default: "bench-results/bench.json" },
            help: { type: "boolean", default: false },
        },
        strict: true,
    });
    if (values.help) {
        console.log(USAGE);
        process.exit(0);
    }
    if (!isOneOf(Object.keys(SHAPES) as ShapeName[], values.shape))
        fail(`unknown shape ${values.shape}`);
    if (!isOneOf(GPU_CHOICES, values.gpu)) fail(`unknown gpu ${values.gpu}`);
    const threads = positiveInt("threads", values.threads);
    const sweepThreads =
        values["sweep-threads"] === "none"
            ? []
            : values["sweep-threads"].split(",").map((t) => positiveInt("sweep-threads", t.trim()));
    return {
        shape: values.shape,
        rounds: positiveInt("rounds", values.rounds),
        threads,
        gpu: values.gpu,
        contextSize: positiveInt("context", values.context),
        promptTokens: positiveInt("prompt-tokens", values["prompt-tokens"]),
        decodeTokens: positiveInt("decode-tokens", values["decode-tokens"]),
        sweepThreads: [...new Set(sweepThreads)].sort((a, b) => a - b),
        speculationRounds:
            values["speculation-rounds"] === "0"
                ? 0
                : positiveInt("speculation-rounds", values["speculation-rounds"]),
        out: values.out,
    };
}
