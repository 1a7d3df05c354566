// The sidecar on a team server: a real llama-server (built from the llama.cpp source node-llama-cpp
// ships, test/support/llamaServer.ts) on 127.0.0.1 with a generated OLMo-2 model, driven through
// the real sidecar process. What llama-server cannot be made to answer (404 model, 429/503 with
// Retry-After, chat completions only, vLLM's context error, another family) comes from a small
// HTTP server in this file that answers as those servers do.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { basename } from "node:path";
import { ResponseError } from "vscode-jsonrpc/node";
import {
    ErrorCodes,
    type ChatMessage,
    type ErrorCode,
    type ErrorData,
    type ModelInfo,
} from "../../sidecar/protocol.js";
import { SidecarProcess } from "../support/sidecarProcess.js";
import { ensureTestModel } from "../support/models.js";
import { freePort, startLlamaServer, type RunningLlamaServer } from "../support/llamaServer.js";

const user = (content: string): ChatMessage => ({ role: "user", content });
/** Greedy without "~" (after which this generated model ends the text): runs to its limit. */
const endless = (maxTokens: number) => ({ temperature: 0, maxTokens, tokenBias: { "~": -100 } });
const API_KEY = "test-key-7f3a9c";
/** The model id the test's llama-server answers to (`--alias`), as a team's server would name it. */
const SERVED_AS = "olmo-2-small";

async function expectRpcError(
    promise: Promise<unknown>,
    code: ErrorCode,
    message?: RegExp,
): Promise<ResponseError<ErrorData>> {
    try {
        await promise;
    } catch (error) {
        assert.ok(
            error instanceof ResponseError,
            `expected a JSON-RPC error, got ${String(error)}`,
        );
        assert.equal(error.code, ErrorCodes[code], `code for ${code}: ${error.message}`);
        if (message) assert.match(error.message, message);
        return error as ResponseError<ErrorData>;
    }
    assert.fail(`expected error ${code}`);
}

/** Time to the first streamed token of a raw llama-server `/completion`, and its timings. */
async function rawCompletion(
    url: string,
    body: Record<string, unknown>,
): Promise<{ ttftMs: number; cacheN: number; promptN: number }> {
    const started = performance.now();
    const response = await fetch(`${url}/completion`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ ...body, stream: true }),
    });
    assert.equal(response.status, 200, await response.clone().text());
    let ttftMs = -1;
    let text = "";
    for await (const chunk of response.body!) {
        if (ttftMs < 0) ttftMs = performance.now() - started;
        text += new TextDecoder().decode(chunk as Uint8Array);
    }
    const final = text
        .split("\n")
        .filter((line) => line.startsWith("data: "))
        .map(
            (line) =>
                JSON.parse(line.slice(6)) as { stop?: boolean; timings?: Record<string, number> },
        )
        .find((chunk) => chunk.stop);
    assert.ok(final?.timings, `no final chunk with timings in ${text.slice(-500)}`);
    return { ttftMs, cacheN: final.timings.cache_n!, promptN: final.timings.prompt_n! };
}

type Route = (request: IncomingMessage, body: string, response: ServerResponse) => void;

/** An HTTP server on 127.0.0.1 answering each path with its route, 404 elsewhere. */
async function fakeServer(
    routes: Record<string, Route>,
): Promise<{ url: string; server: Server; seen: string[] }> {
    const seen: string[] = [];
    const server = createServer((request, response) => {
        let body = "";
        request.on("data", (chunk: Buffer) => (body += chunk.toString()));
        request.on("end", () => {
            seen.push(`${request.method} ${request.url} ${request.headers.authorization ?? ""}`);
            const route = routes[`${request.method} ${request.url}`];
            if (route) route(request, body, response);
            else json(response, 404, { error: { message: "Not Found" } });
        });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address() as { port: number };
    return { url: `http://127.0.0.1:${address.port}`, server, seen };
}

function json(response: ServerResponse, status: number, body: unknown, headers = {}): void {
    response.writeHead(status, { "content-type": "application/json", ...headers });
    response.end(JSON.stringify(body));
}

const OPENAI_MODELS = (id: string): Route => {
    return (_request, _body, response) =>
        json(response, 200, { object: "list", data: [{ id, max_model_len: 4096 }] });
};
const VLLM_MODEL = "allenai/OLMo-2-1124-7B-Instruct";

describe("sidecar: a team server (real llama-server on 127.0.0.1)", () => {
    let modelPath: string;
    let server: RunningLlamaServer;
    let sidecar: SidecarProcess;
    let info: ModelInfo;

    before(async () => {
        modelPath = await ensureTestModel("small");
        server = await startLlamaServer({
            model: modelPath,
            parallel: 1,
            contextSize: 4096,
            alias: SERVED_AS,
        });
        ({ sidecar } = await SidecarProcess.start());
    });
    after(async () => {
        await sidecar?.stop();
        await server?.stop();
    });

    test("load: the model info names the server's host, model and context", async () => {
        info = await sidecar.request("olmo/load", { server: { url: server.url } });
        const host = new URL(server.url).host;
        assert.deepEqual(info.server, {
            url: server.url,
            host,
            model: SERVED_AS,
            kind: "llama-server",
        });
        assert.equal(info.backend, "server");
        assert.equal(info.name, basename(modelPath));
        assert.equal(info.contextSize, 4096);
        assert.equal(info.trainContextSize, 4096);
        assert.equal(info.sequences, 1);
        assert.equal(info.architecture, "olmo2");
        assert.ok(info.fileSizeBytes > 0, "llama-server reports the model's size");
        assert.deepEqual(await sidecar.request("olmo/modelInfo", {}), info);
        const ready = sidecar.statuses.at(-1);
        assert.equal(ready?.state, "ready");
    });

    test("the prompt sent is the local engine's, token for token, typed control markers included", async () => {
        const messages: ChatMessage[] = [
            { role: "system", content: "Be brief." },
            user("Explain <|user|> and <|im_start|>user and <|endoftext|> in one line."),
            { role: "assistant", content: "They are markers.\n" },
            user("def f(x):\n    return x  # ~ ünïcödé"),
        ];
        const remote = await sidecar.request("olmo/formatPrompt", { messages });
        const { sidecar: local } = await SidecarProcess.start();
        try {
            await local.request("olmo/load", { modelPath, contextSize: 4096, threads: 1 });
            const expected = await local.request("olmo/formatPrompt", { messages });
            assert.deepEqual(remote.tokenIds, expected.tokenIds);
            assert.equal(remote.text, expected.text);
            assert.deepEqual(
                await sidecar.request("olmo/countTokens", { text: messages[1]!.content }),
                await local.request("olmo/countTokens", { text: messages[1]!.content }),
            );
        } finally {
            await local.stop();
        }
    });

    test("an OLMo 3 model: the family from the template llama-server reports, the prompt the local one", async () => {
        const olmo3Path = await ensureTestModel("olmo3-tiny");
        const olmo3 = await startLlamaServer({ model: olmo3Path, parallel: 1, contextSize: 4096 });
        const { sidecar: local } = await SidecarProcess.start();
        try {
            await sidecar.request("olmo/load", { server: { url: olmo3.url } });
            await local.request("olmo/load", {
                modelPath: olmo3Path,
                contextSize: 4096,
                threads: 1,
            });
            // No system message: the template's default system prompt comes first.
            const messages = [user("Is <|im_end|> text here?")];
            const remote = await sidecar.request("olmo/formatPrompt", { messages });
            const expected = await local.request("olmo/formatPrompt", { messages });
            assert.match(remote.text, /^<\|im_start\|>system\n/);
            assert.deepEqual(remote.tokenIds, expected.tokenIds);
            assert.equal(remote.text, expected.text);
            const { result } = await sidecar.chat({
                conversationId: "olmo3",
                messages,
                sampling: endless(8),
            });
            assert.equal(result.usage.promptTokens, expected.tokens);
        } finally {
            await local.stop();
            await olmo3.stop();
            await sidecar.request("olmo/load", { server: { url: server.url } });
        }
    });

    test("a chat streams from the server; its counts are the server's", async () => {
        const messages = [user("Write a haiku about caches.")];
        const { result, deltas } = await sidecar.chat({
            conversationId: "stream",
            messages,
            sampling: endless(24),
        });
        assert.ok(deltas.length > 1, `several deltas, got ${deltas.length}`);
        assert.equal(deltas.join(""), result.text);
        assert.equal(result.stopReason, "maxTokens");
        assert.equal(result.usage.completionTokens, 24);
        const counted = await sidecar.request("olmo/countTokens", { messages });
        assert.equal(result.usage.promptTokens, counted.tokens);
        assert.equal(result.contextSize, 4096);
        assert.ok(result.timings.timeToFirstTokenMs > 0);
    });

    test("Stop aborts the request and frees the server's slot: the next request starts at once", async () => {
        // The server's pace, to know how long a generation of `limit` tokens holds its only slot.
        const pace = await sidecar.chat({
            conversationId: "pace",
            messages: [user("Count.")],
            sampling: endless(64),
        });
        const tokensPerMs = pace.result.timings.tokensPerSecond / 1000;
        const limit = 3000;
        const stopped = await sidecar.chat(
            {
                conversationId: "long",
                messages: [user("Count forever.")],
                sampling: endless(limit),
            },
            (_text, all, cancel) => {
                if (all.length === 8) cancel.cancel();
            },
        );
        assert.equal(stopped.result.stopReason, "cancelled");
        const { tokens: generated } = await sidecar.request("olmo/countTokens", {
            text: stopped.result.text,
        });
        assert.ok(
            generated > 0 && generated < limit / 4,
            `stopped after about ${generated} tokens`,
        );
        // Twice the tokens its text has, to be safe: the stopped one would have run this much longer.
        const wouldRunMs = (limit - 2 * generated) / tokensPerMs;
        const next = await sidecar.chat({
            conversationId: "next",
            messages: [user("Hello?")],
            sampling: endless(4),
        });
        assert.equal(next.result.stopReason, "maxTokens");
        console.log(
            `# after Stop at about ${generated} tokens: the next request's first token in ` +
                `${next.result.timings.timeToFirstTokenMs.toFixed(0)} ms; the stopped one would have run about ${(wouldRunMs / 1000).toFixed(1)} s more`,
        );
        assert.ok(
            next.result.timings.timeToFirstTokenMs < wouldRunMs,
            "the next request waited for the stopped generation",
        );
    });

    test("a load replacing the server ends a running answer with modelNotLoaded, not as stopped", async () => {
        let reload: Promise<ModelInfo> | undefined;
        const answer = sidecar.chat(
            {
                conversationId: "replaced",
                messages: [user("Count forever.")],
                sampling: endless(3000),
            },
            (_text, all) => {
                if (all.length === 8)
                    reload = sidecar.request("olmo/load", { server: { url: server.url } });
            },
        );
        await expectRpcError(answer, "modelNotLoaded", /unloaded while answering/);
        assert.ok(reload, "the load was sent while the answer streamed");
        const again = await reload;
        assert.deepEqual({ ...again, loadMs: 0 }, { ...info, loadMs: 0 }, "the same server again");
        info = again;
    });

    test("a follow-up hits the server's prefix cache; TTFT with and without cache_prompt", async () => {
        const code = Array.from(
            { length: 60 },
            (_, i) => `function f${i}(a, b) { return a * ${i} + b; }`,
        ).join("\n");
        const first = [user(`Review this code:\n${code}`)];
        const turn1 = await sidecar.chat({
            conversationId: "follow",
            messages: first,
            sampling: endless(16),
        });
        const followUp = [
            ...first,
            { role: "assistant" as const, content: turn1.result.text },
            user("And the second function?"),
        ];
        const turn2 = await sidecar.chat({
            conversationId: "follow",
            messages: followUp,
            sampling: endless(4),
        });
        const { promptTokens, reusedTokens } = turn2.result.usage;
        assert.ok(
            reusedTokens >= turn1.result.usage.promptTokens,
            `the follow-up reused ${reusedTokens} of ${promptTokens} tokens; the first turn's prompt alone was ${turn1.result.usage.promptTokens}`,
        );
        // The same follow-up, straight to the server, without its prefix cache.
        const prompt = (await sidecar.request("olmo/formatPrompt", { messages: followUp }))
            .tokenIds;
        assert.equal(prompt.length, promptTokens);
        const uncached = await rawCompletion(server.url, {
            prompt,
            n_predict: 4,
            temperature: 0,
            cache_prompt: false,
        });
        assert.equal(uncached.cacheN, 0);
        assert.equal(uncached.promptN, promptTokens);
        console.log(
            `# follow-up of ${promptTokens} tokens: TTFT ${turn2.result.timings.timeToFirstTokenMs.toFixed(0)} ms ` +
                `with the prefix cache (${reusedTokens} reused), ${uncached.ttftMs.toFixed(0)} ms without (cache_prompt: false)`,
        );
    });

    test("a rewrite and an explain run on the server too", async () => {
        const rewrite = await sidecar.task("olmo/rewrite", {
            code: "let x = 1;",
            language: "javascript",
            instruction: "Use const.",
            sampling: endless(8),
        });
        assert.equal(rewrite.result.usage.completionTokens, 8);
        const explain = await sidecar.task("olmo/explain", {
            conversationId: "explain",
            code: "let x = 1;",
            language: "javascript",
            sampling: endless(8),
        });
        assert.equal(explain.shown, explain.result.text);
        assert.match(explain.result.prompt, /let x = 1;/);
    });

    test("a message too long for the server's context is refused before it is sent", async () => {
        await expectRpcError(
            sidecar.chat({
                conversationId: "huge",
                messages: [user("word ".repeat(5000))],
                sampling: { maxTokens: 16 },
            }),
            "contextOverflow",
            /only \d+ fit in the context/,
        );
    });

    test("an unreachable port, a missing host and plain http to another host are refused naming the server", async () => {
        const port = await freePort();
        const refused = await expectRpcError(
            sidecar.request("olmo/load", { server: { url: `http://127.0.0.1:${port}` } }),
            "serverUnreachable",
            new RegExp(
                `^Cannot reach the OLMo server at 127\\.0\\.0\\.1:${port}: it refused the connection`,
            ),
        );
        assert.deepEqual(refused.data, { code: "serverUnreachable" });
        assert.equal(sidecar.statuses.at(-1)?.state, "error");
        await expectRpcError(
            sidecar.request("olmo/load", { server: { url: "https://olmo-gpu.invalid:8443" } }),
            "serverUnreachable",
            /^Cannot reach the OLMo server at olmo-gpu\.invalid:8443: no such host/,
        );
        await expectRpcError(
            sidecar.request("olmo/load", { server: { url: "http://example.com:8080" } }),
            "serverUnreachable",
            /^The OLMo server at example\.com:8080 is plain http: .* Use https:\/\/example\.com:8080/,
        );
        await expectRpcError(
            sidecar.request("olmo/chat", { conversationId: "c", messages: [user("hi")] }),
            "modelNotLoaded",
        );
    });

    test("an API key: refused without it or with a wrong one (401), used when right, never logged", async () => {
        const guarded = await startLlamaServer({
            model: modelPath,
            parallel: 1,
            contextSize: 2048,
            apiKey: API_KEY,
        });
        try {
            const host = new URL(guarded.url).host;
            await expectRpcError(
                sidecar.request("olmo/load", { server: { url: guarded.url } }),
                "serverUnauthorized",
                new RegExp(
                    `^The OLMo server at ${host} refused the request without an API key \\(401`,
                ),
            );
            await expectRpcError(
                sidecar.request("olmo/load", { server: { url: guarded.url, apiKey: "wrong" } }),
                "serverUnauthorized",
                new RegExp(`^The OLMo server at ${host} refused the API key \\(401`),
            );
            const keyed = await sidecar.request("olmo/load", {
                server: { url: guarded.url, apiKey: API_KEY },
            });
            assert.equal(keyed.contextSize, 2048);
            const { result } = await sidecar.chat({
                conversationId: "keyed",
                messages: [user("hi")],
                sampling: endless(4),
            });
            assert.equal(result.usage.completionTokens, 4);
            assert.ok(
                !sidecar.stderr.includes(API_KEY),
                "the API key appears in the sidecar's log",
            );
        } finally {
            await guarded.stop();
        }
        // Back to the open server for the tests that follow.
        await sidecar.request("olmo/load", { server: { url: server.url } });
    });
});

describe("sidecar: what other servers answer (an HTTP server in the test)", () => {
    let sidecar: SidecarProcess;
    const servers: Server[] = [];
    before(async () => {
        ({ sidecar } = await SidecarProcess.start());
    });
    after(async () => {
        await sidecar?.stop();
        for (const server of servers) server.close();
    });
    async function fake(routes: Record<string, Route>) {
        const made = await fakeServer(routes);
        servers.push(made.server);
        return { ...made, host: new URL(made.url).host };
    }
    const completionsProbe: Route = (_request, body, response) => {
        const request = JSON.parse(body) as { stream?: boolean };
        if (!request.stream)
            json(response, 200, { choices: [{ text: "\n", finish_reason: "length" }] });
        else response.destroy();
    };

    test("an OpenAI-compatible server (vLLM): the exact prompt as text, streamed back in pieces", async () => {
        let sentPrompt = "";
        const events =
            'data: {"choices":[{"text":"Hel","finish_reason":null}]}\n\n' +
            'data: {"choices":[{"text":"lo","finish_reason":null}]}\r\n\r\n' +
            'data: {"choices":[{"text":"!","finish_reason":"stop"}]}\n\n' +
            'data: {"choices":[],"usage":{"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":5}}}\n\n' +
            "data: [DONE]\n\n";
        const { url, host, seen } = await fake({
            "GET /v1/models": OPENAI_MODELS(VLLM_MODEL),
            "POST /v1/completions": (request, body, response) => {
                const parsed = JSON.parse(body) as { stream?: boolean; prompt: string };
                if (!parsed.stream) return completionsProbe(request, body, response);
                sentPrompt = parsed.prompt;
                response.writeHead(200, { "content-type": "text/event-stream" });
                // Split at awkward places, as a proxy may.
                let at = 0;
                for (const size of [7, 1, 30, 2, 50, 5, 1000]) {
                    response.write(events.slice(at, at + size));
                    at += size;
                }
                response.end();
            },
        });
        const loaded = await sidecar.request("olmo/load", {
            server: { url: `${url}/v1/`, apiKey: API_KEY },
        });
        assert.deepEqual(loaded.server, {
            url: `${url}/v1`,
            host,
            model: VLLM_MODEL,
            kind: "openai",
        });
        assert.equal(loaded.contextSize, 4096);
        assert.ok(
            seen.every((line) => line.endsWith(`Bearer ${API_KEY}`)),
            seen.join("\n"),
        );
        const { result, deltas } = await sidecar.chat({
            conversationId: "vllm",
            messages: [user("hi")],
            sampling: { temperature: 0 },
        });
        assert.equal(deltas.join(""), "Hello!");
        assert.equal(result.text, "Hello!");
        assert.equal(result.stopReason, "eos");
        assert.equal(result.usage.completionTokens, 3);
        assert.equal(result.usage.reusedTokens, 5);
        assert.equal(sentPrompt, "<|endoftext|><|user|>\nhi\n<|assistant|>\n");
    });

    test("a server with chat completions only is refused, saying why", async () => {
        const { url, host } = await fake({
            "GET /v1/models": OPENAI_MODELS(VLLM_MODEL),
            "POST /v1/chat/completions": (_request, _body, response) =>
                json(response, 400, { error: { message: "messages is required" } }),
        });
        await expectRpcError(
            sidecar.request("olmo/load", { server: { url } }),
            "serverUnsupported",
            new RegExp(
                `^The OLMo server at ${host} offers only chat completions \\(/v1/chat/completions\\)`,
            ),
        );
    });

    test("a model the server does not serve is refused naming what it serves (404 model)", async () => {
        const { url, host } = await fake({ "GET /v1/models": OPENAI_MODELS(VLLM_MODEL) });
        await expectRpcError(
            sidecar.request("olmo/load", { server: { url, model: "olmo-13b" } }),
            "serverModelNotFound",
            new RegExp(
                `^The OLMo server at ${host} does not serve the model "olmo-13b"; it serves "allenai/OLMo-2-1124-7B-Instruct"`,
            ),
        );
        const { url: bare, host: bareHost } = await fake({});
        await expectRpcError(
            sidecar.request("olmo/load", { server: { url: bare } }),
            "serverModelNotFound",
            new RegExp(`^The OLMo server at ${bareHost} has no /v1/models`),
        );
    });

    test("another family is refused: the prompt format cannot be told", async () => {
        const { url, host } = await fake({
            "GET /v1/models": OPENAI_MODELS("meta-llama/Llama-3.1-8B"),
        });
        await expectRpcError(
            sidecar.request("olmo/load", { server: { url } }),
            "serverUnsupported",
            new RegExp(
                `^The OLMo server at ${host} serves "meta-llama/Llama-3.1-8B", whose prompt format OLMo Local cannot tell`,
            ),
        );
    });

    test("overloaded (429 and 503 with Retry-After) says when to retry", async () => {
        const loading = await fake({
            "GET /props": (_request, _body, response) =>
                json(
                    response,
                    503,
                    { error: { message: "Loading model", type: "unavailable_error" } },
                    {
                        "retry-after": "12",
                    },
                ),
        });
        const busy = await expectRpcError(
            sidecar.request("olmo/load", { server: { url: loading.url } }),
            "serverOverloaded",
            new RegExp(
                `^The OLMo server at ${loading.host} is overloaded \\(503: Loading model\\); try again in 12 s\\.`,
            ),
        );
        assert.deepEqual(busy.data, { code: "serverOverloaded", retryAfterMs: 12_000 });

        const { url, host } = await fake({
            "GET /v1/models": OPENAI_MODELS(VLLM_MODEL),
            "POST /v1/completions": (request, body, response) => {
                if (!(JSON.parse(body) as { stream?: boolean }).stream)
                    return completionsProbe(request, body, response);
                json(response, 429, { error: "rate limited" }, { "retry-after": "7" });
            },
        });
        await sidecar.request("olmo/load", { server: { url } });
        const limited = await expectRpcError(
            sidecar.chat({ conversationId: "busy", messages: [user("hi")] }),
            "serverOverloaded",
            new RegExp(
                `^The OLMo server at ${host} is overloaded \\(429: rate limited\\); try again in 7 s\\.`,
            ),
        );
        assert.deepEqual(limited.data, { code: "serverOverloaded", retryAfterMs: 7000 });
    });

    test("the server's own context error (vLLM's 400) is contextOverflow naming the server", async () => {
        const { url, host } = await fake({
            "GET /v1/models": OPENAI_MODELS(VLLM_MODEL),
            "POST /v1/completions": (request, body, response) => {
                if (!(JSON.parse(body) as { stream?: boolean }).stream)
                    return completionsProbe(request, body, response);
                json(response, 400, {
                    object: "error",
                    message:
                        "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.",
                    type: "BadRequestError",
                    code: 400,
                });
            },
        });
        await sidecar.request("olmo/load", { server: { url } });
        await expectRpcError(
            sidecar.chat({ conversationId: "ctx", messages: [user("hi")] }),
            "contextOverflow",
            new RegExp(
                `^The prompt is too large for the context of the OLMo server at ${host}: This model's maximum context length is 4096`,
            ),
        );
    });

    test("a stream cut off before its end is an error, not an answer", async () => {
        const { url, host } = await fake({
            "GET /v1/models": OPENAI_MODELS(VLLM_MODEL),
            "POST /v1/completions": (request, body, response) => {
                if (!(JSON.parse(body) as { stream?: boolean }).stream)
                    return completionsProbe(request, body, response);
                response.writeHead(200, { "content-type": "text/event-stream" });
                // The connection drops after one chunk: no finish reason, no [DONE].
                response.end('data: {"choices":[{"text":"Hal","finish_reason":null}]}\n\n');
            },
        });
        await sidecar.request("olmo/load", { server: { url } });
        const deltas: string[] = [];
        await expectRpcError(
            sidecar.chat({ conversationId: "cut", messages: [user("hi")] }, (text) =>
                deltas.push(text),
            ),
            "serverUnreachable",
            new RegExp(
                `^The OLMo server at ${host} stopped answering mid-way: the stream ended without the end of the answer`,
            ),
        );
        assert.deepEqual(deltas, ["Hal"]);
    });

    test("an error event in the middle of a stream ends the request with the server's message", async () => {
        const { url, host } = await fake({
            "GET /v1/models": OPENAI_MODELS(VLLM_MODEL),
            "POST /v1/completions": (request, body, response) => {
                if (!(JSON.parse(body) as { stream?: boolean }).stream)
                    return completionsProbe(request, body, response);
                response.writeHead(200, { "content-type": "text/event-stream" });
                response.end(
                    'data: {"choices":[{"text":"Hi"}]}\n\ndata: {"error":{"message":"slot crashed","type":"server_error"}}\n\n',
                );
            },
        });
        await sidecar.request("olmo/load", { server: { url } });
        await expectRpcError(
            sidecar.chat({ conversationId: "err", messages: [user("hi")] }),
            "serverUnsupported",
            new RegExp(`^The OLMo server at ${host} stopped with an error: slot crashed`),
        );
    });
});
