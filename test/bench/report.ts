// Turns the rounds into figures (median, min, max per side and the per-round product/baseline
// ratio), the target checks and the markdown that `npm run bench` prints.
import type { ProcessMemory } from "./machine.js";
import type { RoundResult, SideRound } from "./rounds.js";
import { MAX_DRAFT_TOKENS } from "../../sidecar/speculation.js";
import type { DraftCeiling } from "./draftCeiling.js";
import type { SpeculationResult } from "./speculation.js";
import { spread, type Spread } from "./stats.js";
import { SWEEP_DECODE_TOKENS, SWEEP_ROUNDS, type SweepProbe } from "./threadSweep.js";
import {
    decodeCpuMsPerToken,
    decodeRate,
    prefillRate,
    type StreamTraffic,
    type TurnMeasure,
} from "./workload.js";

const MIB = 2 ** 20;

type Better = "higher" | "lower" | "neither";

interface FigureDefinition {
    key: string;
    label: string;
    digits: number;
    better: Better;
    /** undefined: this side has no such figure. */
    value(side: SideRound, which: "baseline" | "product"): number | undefined;
}

export interface Figure {
    key: string;
    label: string;
    better: Better;
    digits: number;
    baseline?: Spread;
    product?: Spread;
    /** Product / baseline, computed within each round (both sides saw the same machine state). */
    ratio?: Spread;
}

export interface TargetCheck {
    target: string;
    pass: boolean;
    measured: string;
}

export interface SweepRow {
    threads: number;
    prefillTokensPerSecond?: Spread;
    decodeTokensPerSecond?: Spread;
    /** Sweep generations cut short by their time limit. */
    stoppedEarly: number;
}

export interface IdentityCheck {
    identical: boolean;
    /** Each difference found, empty when identical. */
    differences: string[];
}

export interface Summary {
    figures: Figure[];
    targets: TargetCheck[];
    identity: IdentityCheck;
    sweep: SweepRow[];
}

export interface SummaryInput {
    rounds: RoundResult[];
    modelBytes: number;
    promptTokens: number;
    decodeTokens: number;
    sweep: SweepProbe[];
}

function figureDefinitions(input: SummaryInput): FigureDefinition[] {
    const beyondModel = (memory: ProcessMemory) => (memory.rssBytes - input.modelBytes) / MIB;
    const productOnly =
        (read: (side: SideRound) => number | undefined) =>
        (side: SideRound, which: "baseline" | "product") =>
            which === "product" ? read(side) : undefined;
    const perStreamedToken = (pick: (traffic: StreamTraffic) => number) =>
        productOnly((side) => {
            const { traffic, completionTokens } = side.workload.first;
            return traffic && pick(traffic) / completionTokens;
        });
    return [
        {
            key: "prefillTokensPerSecond",
            label: `Prefill tok/s (${input.promptTokens}-token prompt ÷ TTFT)`,
            digits: 1,
            better: "higher",
            value: (side) => prefillRate(side.workload.first),
        },
        {
            key: "decodeTokensPerSecond",
            label: `Decode tok/s (${input.decodeTokens} tokens)`,
            digits: 2,
            better: "higher",
            value: (side) => decodeRate(side.workload.first),
        },
        {
            key: "cpuToFirstTokenMs",
            label: "CPU time to the first token, ms ²",
            digits: 0,
            better: "lower",
            value: (side) => side.workload.first.cpuToFirstTokenMs,
        },
        {
            key: "decodeCpuMsPerToken",
            label: "CPU time per decoded token, ms ²",
            digits: 1,
            better: "lower",
            value: (side) => decodeCpuMsPerToken(side.workload.first),
        },
        {
            key: "timeToFirstTokenMs",
            label: "Time to first token, ms",
            digits: 0,
            better: "lower",
            value: (side) => side.workload.first.timeToFirstTokenMs,
        },
        {
            key: "followUpTimeToFirstTokenMs",
            label: "Follow-up TTFT with KV reuse, ms",
            digits: 0,
            better: "lower",
            value: (side) => side.workload.followUp?.timeToFirstTokenMs,
        },
        {
            key: "followUpFromScratchTimeToFirstTokenMs",
            label: "Same follow-up from scratch, ms",
            digits: 0,
            better: "lower",
            value: (side) => side.workload.followUpFromScratch?.timeToFirstTokenMs,
        },
        {
            key: "followUpNewTokens",
            label: "Follow-up tokens evaluated (not reused)",
            digits: 0,
            better: "neither",
            value: (side) => newTokens(side.workload.followUp),
        },
        {
            key: "loadMs",
            label: "Model load, ms",
            digits: 0,
            better: "lower",
            value: (side) => side.loadMs,
        },
        {
            key: "initializeMs",
            label: "Sidecar spawn → `initialize` answered, ms",
            digits: 0,
            better: "lower",
            value: productOnly((side) => side.initializeMs),
        },
        {
            key: "rssBeforeLoadMiB",
            label: "Sidecar RSS before loading a model, MiB",
            digits: 0,
            better: "lower",
            value: productOnly(
                (side) => side.memoryBeforeLoad && side.memoryBeforeLoad.rssBytes / MIB,
            ),
        },
        {
            key: "rssBeyondModelAfterLoadMiB",
            label: "RSS beyond the model file after load, MiB ¹",
            digits: 0,
            better: "lower",
            value: (side) => beyondModel(side.memoryAfterLoad),
        },
        {
            key: "rssBeyondModelAfterWorkloadMiB",
            label: "RSS beyond the model file after the workload, MiB ¹",
            digits: 0,
            better: "lower",
            value: (side) => beyondModel(side.memoryAfterWorkload),
        },
        {
            key: "progressMessagesPerToken",
            label: "`$/progress` messages per token",
            digits: 2,
            better: "lower",
            value: perStreamedToken((traffic) => traffic.progressMessages),
        },
        {
            key: "progressBytesPerToken",
            label: "`$/progress` bytes per token",
            digits: 1,
            better: "lower",
            value: perStreamedToken((traffic) => traffic.progressBytes),
        },
    ];
}

function newTokens(turn: TurnMeasure | undefined): number | undefined {
    return turn && turn.promptTokens - turn.reusedTokens;
}

const defined = <T>(values: Array<T | undefined>): T[] =>
    values.filter((v): v is T => v !== undefined);

export function summarize(input: SummaryInput): Summary {
    const { rounds } = input;
    const figures = figureDefinitions(input).map((definition): Figure => {
        const baseline = rounds.map((r) => definition.value(r.baseline, "baseline"));
        const product = rounds.map((r) => definition.value(r.product, "product"));
        const ratios = rounds.map((_, i) => {
            const b = baseline[i];
            const p = product[i];
            return b !== undefined && p !== undefined && b !== 0 ? p / b : undefined;
        });
        return {
            key: definition.key,
            label: definition.label,
            better: definition.better,
            digits: definition.digits,
            baseline: spread(defined(baseline)),
            product: spread(defined(product)),
            ratio: definition.better === "neither" ? undefined : spread(defined(ratios)),
        };
    });
    return {
        figures,
        targets: checkTargets(figures, rounds),
        identity: checkIdentity(rounds),
        sweep: summarizeSweep(input.sweep),
    };
}

/** Follow-up TTFT over the time the measured prefill rate needs for just the tokens not reused. */
function followUpOverNewTokenPrefill(side: SideRound): number | undefined {
    const followUp = side.workload.followUp;
    const fresh = newTokens(followUp);
    if (!followUp || fresh === undefined) return undefined;
    const newTokenPrefillMs = (fresh / prefillRate(side.workload.first)) * 1000;
    return followUp.timeToFirstTokenMs / newTokenPrefillMs;
}

function checkTargets(figures: Figure[], rounds: RoundResult[]): TargetCheck[] {
    const figure = (key: string) => figures.find((f) => f.key === key);
    const percent = (s: Spread | undefined) =>
        s
            ? `${(s.median * 100).toFixed(1)}% (${(s.min * 100).toFixed(1)}–${(s.max * 100).toFixed(1)})`
            : "n/a";
    const targets: TargetCheck[] = [];
    for (const [key, cpuKey, name] of [
        [
            "decodeTokensPerSecond",
            "decodeCpuMsPerToken",
            "Decode through the sidecar ≥ 98% of baseline",
        ],
        [
            "prefillTokensPerSecond",
            "cpuToFirstTokenMs",
            "Prefill through the sidecar ≥ 98% of baseline",
        ],
    ] as const) {
        const ratio = figure(key)?.ratio;
        targets.push({
            target: name,
            pass: ratio !== undefined && ratio.median >= 0.98,
            measured: `median of per-round ratios ${percent(ratio)}; CPU time product/baseline ${percent(figure(cpuKey)?.ratio)} (less moved by other load than wall time)`,
        });
    }
    const product = spread(defined(rounds.map((r) => followUpOverNewTokenPrefill(r.product))));
    const baseline = spread(defined(rounds.map((r) => followUpOverNewTokenPrefill(r.baseline))));
    targets.push({
        target: "Follow-up TTFT within 20% of prefilling just the new tokens (at the measured prefill rate)",
        pass: product !== undefined && product.median <= 1.2,
        measured: `product ${percent(product)} of that time; baseline ${percent(baseline)}`,
    });
    const initialize = figure("initializeMs")?.product;
    targets.push({
        target: "Sidecar `initialize` < 500 ms",
        pass: initialize !== undefined && initialize.median < 500,
        measured: initialize
            ? `median ${initialize.median.toFixed(0)} ms (max ${initialize.max.toFixed(0)})`
            : "n/a",
    });
    const messages = figure("progressMessagesPerToken")?.product;
    targets.push({
        target: "Messages per token ≤ 1",
        pass: messages !== undefined && messages.max <= 1,
        measured: messages
            ? `max ${messages.max.toFixed(2)}, median ${messages.median.toFixed(2)}`
            : "n/a",
    });
    return targets;
}

/** Same tokens in and the same text out, on both sides, in every round. */
function checkIdentity(rounds: RoundResult[]): IdentityCheck {
    const differences: string[] = [];
    const reference = rounds[0]?.baseline.workload;
    for (const round of rounds) {
        for (const [sideName, side] of [
            ["baseline", round.baseline],
            ["product", round.product],
        ] as const) {
            for (const turn of ["warmUp", "first", "followUp", "followUpFromScratch"] as const) {
                const got = side.workload[turn];
                const want = reference?.[turn];
                if (!got || !want) continue;
                const where = `round ${round.round}, ${sideName}, ${turn}`;
                if (got.text !== want.text) differences.push(`${where}: text differs`);
                if (got.promptTokens !== want.promptTokens)
                    differences.push(
                        `${where}: ${got.promptTokens} prompt tokens, expected ${want.promptTokens}`,
                    );
                if (got.reusedTokens !== want.reusedTokens)
                    differences.push(
                        `${where}: ${got.reusedTokens} reused tokens, expected ${want.reusedTokens}`,
                    );
                if (got.completionTokens !== want.completionTokens) {
                    differences.push(
                        `${where}: ${got.completionTokens} completion tokens, expected ${want.completionTokens}`,
                    );
                }
            }
        }
    }
    return { identical: differences.length === 0, differences };
}

function summarizeSweep(probes: SweepProbe[]): SweepRow[] {
    return [...new Set(probes.map((probe) => probe.threads))]
        .sort((a, b) => a - b)
        .map((threads) => {
            const runs = probes.filter((probe) => probe.threads === threads);
            return {
                threads,
                prefillTokensPerSecond: spread(runs.map((run) => prefillRate(run.first))),
                decodeTokensPerSecond: spread(runs.map((run) => decodeRate(run.first))),
                stoppedEarly: runs.filter((run) => run.stoppedEarly).length,
            };
        });
}

export function formatSpread(s: Spread | undefined, digits: number): string {
    if (!s) return "—";
    return `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;
}

export function formatRatio(s: Spread | undefined): string {
    if (!s) return "—";
    const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
    return `${pct(s.median)} (${pct(s.min)}–${pct(s.max)})`;
}

export function markdown(summary: Summary, heading: string): string {
    const lines = [
        heading,
        "",
        "| Figure | Baseline: median (min–max) | Product: median (min–max) | Product / baseline, per round: median (min–max) |",
        "|---|---|---|---|",
        ...summary.figures.map(
            (f) =>
                `| ${f.label} | ${formatSpread(f.baseline, f.digits)} | ${formatSpread(f.product, f.digits)} | ${formatRatio(f.ratio)} |`,
        ),
        "",
        "¹ Product: the sidecar process (Node itself included). Baseline: what the benchmark process grew by.",
        "² User + system time of every process involved (product: sidecar and client). Wall time that grows while this does not is other work on the machine, not overhead.",
        "",
        ...summary.targets.map((t) => `- ${t.pass ? "PASS" : "FAIL"} ${t.target}: ${t.measured}`),
        `- ${summary.identity.identical ? "PASS" : "FAIL"} Same tokens in and identical text out on both sides in every round (greedy)` +
            (summary.identity.identical
                ? ""
                : `: ${summary.identity.differences.slice(0, 5).join("; ")}`),
    ];
    if (summary.sweep.length > 0) {
        const fastest = (pick: (row: SweepRow) => Spread | undefined) =>
            summary.sweep.reduce((best, row) =>
                (pick(row)?.median ?? 0) > (pick(best)?.median ?? 0) ? row : best,
            ).threads;
        lines.push(
            "",
            `Thread sweep (baseline only, first turn with a ${SWEEP_DECODE_TOKENS}-token decode, ${SWEEP_ROUNDS} alternating rounds on one loaded model):`,
            "",
            "| Threads | Prefill tok/s: median (min–max) | Decode tok/s: median (min–max) | Stopped by the time limit |",
            "|---|---|---|---|",
            ...summary.sweep.map(
                (row) =>
                    `| ${row.threads} | ${formatSpread(row.prefillTokensPerSecond, 1)} | ${formatSpread(row.decodeTokensPerSecond, 2)} | ${row.stoppedEarly} |`,
            ),
            "",
            `Fastest: ${fastest((row) => row.decodeTokensPerSecond)} thread(s) for decode, ${fastest((row) => row.prefillTokensPerSecond)} for prefill.`,
        );
    }
    return lines.join("\n");
}

export function speculationMarkdown(
    result: SpeculationResult,
    rounds: number,
    ceiling?: DraftCeiling,
): string {
    const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
    const verdicts = result.cases.flatMap((c) => {
        if (!c.target || !c.ratio) return [];
        const [goal, label] =
            c.target === "copying"
                ? [3, "a rewrite that copies its input ≥ 3× plain decoding, the same text"]
                : [1, "a rewrite that copies nothing ≥ 1× plain decoding, the same text"];
        const pass = c.ratio.median >= goal && c.identical;
        return [
            `- ${pass ? "PASS" : "FAIL"} Drafts: ${label}: median of per-round ratios ${formatRatio(c.ratio)}, ` +
                `${pct(c.acceptance)} of drafts accepted, ${c.identical ? "same text" : "TEXT DIFFERS"}`,
        ];
    });
    return [
        `Speculative rewrite (prompt lookup, drafts of up to ${MAX_DRAFT_TOKENS} tokens backing off when refuted) through the sidecar: ` +
            `${result.decodeTokens}-token answers, with drafts (the default) and with \`speculative: false\`, ${rounds} alternating rounds on one loaded model:`,
        "",
        "| Case | Drafts accepted | Decode tok/s, plain: median (min–max) | Decode tok/s, with drafts | With / plain, per round | Same answer |",
        "|---|---|---|---|---|---|",
        ...result.cases.map(
            (c) =>
                `| ${c.case} | ${pct(c.acceptance)} (${c.acceptedDraftTokens}/${c.draftTokens}) | ${formatSpread(c.plainTokensPerSecond, 2)} | ` +
                `${formatSpread(c.draftedTokensPerSecond, 2)} | ${formatRatio(c.ratio)} | ${c.sampled ? "— (sampled: drafts change the random draws, not the distribution)" : c.identical ? "yes" : "NO"} |`,
        ),
        "",
        ...verdicts,
        ...(ceiling?.ratio
            ? [
                  `- This machine's ceiling for drafts (node-llama-cpp alone, ${ceiling.draftTokens + 1} tokens in one batch with a token sampled at each, ` +
                      `${formatSpread(ceiling.batchMs, 0)} ms, against as many one-token steps of ${formatSpread(ceiling.stepMs, 1)} ms): ` +
                      `a draft accepted whole decodes at most ${formatRatio(ceiling.ratio)} of plain decoding`,
              ]
            : []),
    ].join("\n");
}
