// The speculation section of `npm run bench`: olmo/rewrite through the sidecar with prompt-lookup
// drafts (the default) and without (`speculative: false`), on one loaded model, the order
// alternating round by round. It reports how many drafts the model accepted, the decode speed with
// drafts over the speed without, and whether both gave the same answer (greedy cases).
//
// A random-weight model does not copy its input the way a real rewrite does, so the cases are
// built to make the answer overlap the code, or not: a continuation forced by a token bias that
// the code already holds (a rewrite that copies its input: every draft accepted), the model's own
// earlier answer appended to the code (the realistic case: it partly repeats it, some drafts
// accepted, some refuted), and a forced continuation that the code never holds (every draft
// wrong: what backing off costs). The realistic and copying cases run sampled as well.
import type { RewriteParams, RewriteResult } from "../../sidecar/protocol.js";
import { SidecarProcess } from "../support/sidecarProcess.js";
import type { SideSettings } from "./baselineSide.js";
import { spread, type Spread } from "./stats.js";

export const SPECULATION_DECODE_TOKENS = 96;

const SNIPPET = `export function parseDuration(text: string): number {
    const match = /^(\\d+)(ms|s|m|h)$/.exec(text.trim());
    if (!match) throw new Error(\`not a duration: \${text}\`);
    const units = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
    return Number(match[1]) * units[match[2] as keyof typeof units];
}
`;
/** "~" is the generated model's only way to EOS: banned, every answer runs to the token limit. */
const NO_EOS = { "~": -100 };

type RewriteRequest = Omit<RewriteParams, "partialResultToken" | "speculative">;

/** Which target a case's ratio is held to in the report. */
export type SpeculationTarget = "copying" | "nothingCopied";

interface SpeculationCase {
    name: string;
    request: RewriteRequest;
    target?: SpeculationTarget;
}

export interface RewriteMeasure {
    speculative: boolean;
    text: string;
    completionTokens: number;
    tokensPerSecond: number;
    timeToFirstTokenMs: number;
    totalMs: number;
    draftTokens: number;
    acceptedDraftTokens: number;
}

export interface SpeculationRound {
    round: number;
    case: string;
    plain: RewriteMeasure;
    drafted: RewriteMeasure;
}

export interface SpeculationCaseSummary {
    case: string;
    target?: SpeculationTarget;
    sampled: boolean;
    draftTokens: number;
    acceptedDraftTokens: number;
    /** Accepted over checked, all rounds together. */
    acceptance: number;
    plainTokensPerSecond?: Spread;
    draftedTokensPerSecond?: Spread;
    /** With drafts / without, within each round. */
    ratio?: Spread;
    /** Same text and token count with and without drafts, in every round (greedy cases). */
    identical: boolean;
}

export interface SpeculationResult {
    decodeTokens: number;
    cases: SpeculationCaseSummary[];
    rounds: SpeculationRound[];
}

export async function runSpeculation(
    settings: SideSettings,
    rounds: number,
    log: (line: string) => void,
): Promise<SpeculationResult> {
    const { sidecar } = await SidecarProcess.start();
    try {
        await sidecar.request("olmo/load", { ...settings, gpuLayers: "auto", sequences: 1 });
        const rewrite = async (
            request: RewriteRequest,
            speculative: boolean,
        ): Promise<RewriteMeasure> => {
            const { result } = await sidecar.task("olmo/rewrite", { ...request, speculative });
            return measure(result, speculative);
        };
        const sampling = { maxTokens: SPECULATION_DECODE_TOKENS, tokenBias: NO_EOS };
        const base: RewriteRequest = {
            code: SNIPPET,
            language: "typescript",
            instruction: "Add JSDoc comments",
            sampling,
        };
        const earlier = await rewrite(base, false);
        const forced = { ...sampling, tokenBias: { ...NO_EOS, " x": 50 } };
        const copying: RewriteRequest = {
            ...base,
            // Longer than the answer: past the run's end the lookup would propose what follows it.
            code: " x".repeat(SPECULATION_DECODE_TOKENS + 16),
            language: "plaintext",
            sampling: forced,
        };
        const realistic: RewriteRequest = { ...base, code: `${SNIPPET}\n${earlier.text}` };
        const sampled = (request: RewriteRequest): RewriteRequest => ({
            ...request,
            sampling: { ...request.sampling, temperature: 0.7, topP: 0.9 },
        });
        const cases: SpeculationCase[] = [
            {
                name: 'copying rewrite (bias on " x", the code a run of " x")',
                request: copying,
                target: "copying",
            },
            { name: "code + the model's earlier answer (realistic)", request: realistic },
            {
                name: 'copies nothing (bias on " x", the code a run of " x y": every draft wrong)',
                request: { ...copying, code: " x y".repeat(SPECULATION_DECODE_TOKENS) },
                target: "nothingCopied",
            },
            { name: "copying rewrite, sampled (temperature 0.7)", request: sampled(copying) },
            { name: "realistic, sampled (temperature 0.7)", request: sampled(realistic) },
        ];
        const results: SpeculationRound[] = [];
        for (let round = 1; round <= rounds; round++) {
            for (const { name, request } of cases) {
                const order = round % 2 === 1 ? [false, true] : [true, false];
                // A sampled case: the same seed on both sides within a round, another each round.
                const seeded: RewriteRequest =
                    request.sampling?.temperature !== undefined
                        ? { ...request, sampling: { ...request.sampling, seed: round } }
                        : request;
                const [first, second] = [
                    await rewrite(seeded, order[0]),
                    await rewrite(seeded, order[1]),
                ];
                const [plain, drafted] = order[0] ? [second, first] : [first, second];
                results.push({ round, case: name, plain, drafted });
            }
            log(`speculation round ${round} done`);
        }
        return {
            decodeTokens: SPECULATION_DECODE_TOKENS,
            cases: cases.map((c) =>
                summarizeCase(
                    c,
                    results.filter((r) => r.case === c.name),
                ),
            ),
            rounds: results,
        };
    } catch (error) {
        throw new Error(`speculation: ${String(error)}\n${sidecar.stderr}`, { cause: error });
    } finally {
        await sidecar.stop();
    }
}

function measure(result: RewriteResult, speculative: boolean): RewriteMeasure {
    return {
        speculative,
        text: result.text,
        completionTokens: result.usage.completionTokens,
        tokensPerSecond: result.timings.tokensPerSecond,
        timeToFirstTokenMs: result.timings.timeToFirstTokenMs,
        totalMs: result.timings.totalMs,
        draftTokens: result.usage.draftTokens ?? 0,
        acceptedDraftTokens: result.usage.acceptedDraftTokens ?? 0,
    };
}

function summarizeCase(
    { name, target, request }: SpeculationCase,
    rounds: SpeculationRound[],
): SpeculationCaseSummary {
    const draftTokens = rounds.reduce((sum, r) => sum + r.drafted.draftTokens, 0);
    const acceptedDraftTokens = rounds.reduce((sum, r) => sum + r.drafted.acceptedDraftTokens, 0);
    return {
        case: name,
        target,
        sampled: (request.sampling?.temperature ?? 0) > 0,
        draftTokens,
        acceptedDraftTokens,
        acceptance: draftTokens > 0 ? acceptedDraftTokens / draftTokens : 0,
        plainTokensPerSecond: spread(rounds.map((r) => r.plain.tokensPerSecond)),
        draftedTokensPerSecond: spread(rounds.map((r) => r.drafted.tokensPerSecond)),
        ratio: spread(rounds.map((r) => r.drafted.tokensPerSecond / r.plain.tokensPerSecond)),
        identical: rounds.every(
            (r) =>
                r.drafted.text === r.plain.text &&
                r.drafted.completionTokens === r.plain.completionTokens,
        ),
    };
}
