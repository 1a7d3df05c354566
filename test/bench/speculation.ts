// The speculation section of `npm run bench`: requests through the sidecar with prompt-lookup
// drafts (rewrites' default) and without (`speculative: false`), on one loaded model, the order
// alternating round by round. It reports how many drafts the model accepted, the decode speed with
// drafts over the speed without, and whether both gave the same answer (greedy cases).
//
// A random-weight model does not copy its input the way a real rewrite does, so the cases are
// built to make the answer overlap the code, or not: a continuation forced by a token bias that
// the code already holds (a rewrite that copies its input: every draft accepted), the model's own
// earlier answer appended to the code (the realistic case: it partly repeats it, some drafts
// accepted, some refuted), and a forced continuation that the code never holds (every draft
// wrong: what backing off costs). The realistic and copying cases run sampled as well. Explain
// and chat have drafts only when asked (`speculative: true`): two cases measure what they would
// gain, an Explain whose code holds the model's earlier explanation and a chat follow-up.
import type {
    ChatParams,
    ChatResult,
    ExplainParams,
    RewriteParams,
} from "../../sidecar/protocol.js";
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
type ExplainRequest = Omit<ExplainParams, "partialResultToken" | "speculative" | "conversationId">;
type ChatRequest = Omit<ChatParams, "partialResultToken" | "speculative" | "conversationId">;

/** Which target a case's ratio is held to in the report. */
export type SpeculationTarget = "copying" | "nothingCopied";

/** What one case sends: a rewrite, an Explain or a chat turn, each with drafts or without. */
type CaseRequest =
    | { method: "olmo/rewrite"; params: RewriteRequest }
    | { method: "olmo/explain"; params: ExplainRequest }
    | { method: "olmo/chat"; params: ChatRequest };

interface SpeculationCase {
    name: string;
    request: CaseRequest;
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
        let conversations = 0;
        const send = async (
            request: CaseRequest,
            speculative: boolean,
        ): Promise<RewriteMeasure> => {
            // Explain and chat: a new conversation each time, so both sides start from scratch.
            const conversationId = `speculation-${++conversations}`;
            const result: ChatResult =
                request.method === "olmo/rewrite"
                    ? (await sidecar.task("olmo/rewrite", { ...request.params, speculative }))
                          .result
                    : request.method === "olmo/explain"
                      ? (
                            await sidecar.task("olmo/explain", {
                                ...request.params,
                                conversationId,
                                speculative,
                            })
                        ).result
                      : (await sidecar.chat({ ...request.params, conversationId, speculative }))
                            .result;
            return measure(result, speculative);
        };
        const rewrite = (params: RewriteRequest): CaseRequest => ({
            method: "olmo/rewrite",
            params,
        });
        const sampling = { maxTokens: SPECULATION_DECODE_TOKENS, tokenBias: NO_EOS };
        const base: RewriteRequest = {
            code: SNIPPET,
            language: "typescript",
            instruction: "Add JSDoc comments",
            sampling,
        };
        const earlier = await send(rewrite(base), false);
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
        const greedy = { ...sampling, temperature: 0 };
        const explained = await send(
            {
                method: "olmo/explain",
                params: { code: SNIPPET, language: "typescript", sampling: greedy },
            },
            false,
        );
        const cases: SpeculationCase[] = [
            {
                name: 'copying rewrite (bias on " x", the code a run of " x")',
                request: rewrite(copying),
                target: "copying",
            },
            { name: "code + the model's earlier answer (realistic)", request: rewrite(realistic) },
            {
                name: 'copies nothing (bias on " x", the code a run of " x y": every draft wrong)',
                request: rewrite({ ...copying, code: " x y".repeat(SPECULATION_DECODE_TOKENS) }),
                target: "nothingCopied",
            },
            {
                name: "copying rewrite, sampled (temperature 0.7)",
                request: rewrite(sampled(copying)),
            },
            { name: "realistic, sampled (temperature 0.7)", request: rewrite(sampled(realistic)) },
            {
                name: "Explain of the code + the model's earlier explanation (an answer that quotes)",
                request: {
                    method: "olmo/explain",
                    params: {
                        code: `${SNIPPET}\n${explained.text}`,
                        language: "typescript",
                        sampling: greedy,
                    },
                },
            },
            {
                name: "chat follow-up after that explanation (prose about the code)",
                request: {
                    method: "olmo/chat",
                    params: {
                        messages: [
                            { role: "user", content: `Explain this code:\n${SNIPPET}` },
                            { role: "assistant", content: explained.text },
                            { role: "user", content: "What does it do with an unknown unit?" },
                        ],
                        sampling: greedy,
                    },
                },
            },
        ];
        const results: SpeculationRound[] = [];
        for (let round = 1; round <= rounds; round++) {
            for (const { name, request } of cases) {
                const order = round % 2 === 1 ? [false, true] : [true, false];
                // A sampled case: the same seed on both sides within a round, another each round.
                const seeded: CaseRequest = request.params.sampling?.temperature
                    ? ({
                          ...request,
                          params: {
                              ...request.params,
                              sampling: { ...request.params.sampling, seed: round },
                          },
                      } as CaseRequest)
                    : request;
                const [first, second] = [
                    await send(seeded, order[0]),
                    await send(seeded, order[1]),
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

function measure(result: ChatResult, speculative: boolean): RewriteMeasure {
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
        sampled: (request.params.sampling?.temperature ?? 0) > 0,
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
