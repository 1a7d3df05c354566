// The real sidecar over stdio on an OLMo-3-shaped model (sliding-window layers, ChatML template,
// 65,536-token train context): the prompt format read from the file, the context it allocates by
// default, KV reuse across turns past the sliding window, the end-of-turn stop; and the refusal of
// an olmo2-architecture file whose template is neither family's.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ResponseError } from "vscode-jsonrpc/node";
import { ErrorCodes, type ChatMessage, type ModelInfo } from "../../sidecar/protocol.js";
import { SidecarProcess } from "../support/sidecarProcess.js";
import { ensureTestModel, OLMO3_TINY_SHAPE, TINY_SHAPE } from "../support/models.js";
import { gguf, writeGguf } from "../support/gguf-writer.js";
import {
    OLMO3_DEFAULT_SYSTEM_PROMPT,
    olmo2Metadata,
    olmo2Tensors,
} from "../support/olmo2-model.js";

const user = (content: string): ChatMessage => ({ role: "user", content });
const greedy = { temperature: 0, seed: 1 };

describe("sidecar: an OLMo-3-shaped model", () => {
    let sidecar: SidecarProcess;
    let info: ModelInfo;
    let dir: string;

    before(async () => {
        dir = await mkdtemp(join(tmpdir(), "olmo-family-"));
        ({ sidecar } = await SidecarProcess.start());
        // No contextSize: the default ("auto") allocates what fits, up to the train context.
        info = await sidecar.request("olmo/load", {
            modelPath: await ensureTestModel("olmo3-tiny"),
            gpu: "cpu",
            threads: 1,
        });
    });
    after(async () => {
        await sidecar?.stop();
        await rm(dir, { recursive: true, force: true });
    });

    test("the default context is the largest that fits, up to the 65,536-token train context", async () => {
        assert.equal(info.trainContextSize, 65536);
        assert.ok(
            info.contextSize > 4096 && info.contextSize <= 65536,
            `allocated ${info.contextSize}`,
        );
        const counted = await sidecar.request("olmo/countTokens", { text: "x" });
        assert.equal(
            counted.contextSize,
            info.contextSize,
            "the meter's context is the allocated one",
        );
    });

    test("formatPrompt is OLMo 3's ChatML, with the template's default system prompt", async () => {
        const formatted = await sidecar.request("olmo/formatPrompt", {
            messages: [user("Hi there")],
        });
        assert.equal(
            formatted.text,
            `<|im_start|>system\n${OLMO3_DEFAULT_SYSTEM_PROMPT}<|im_end|>\n` +
                "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
        );
        const typed = await sidecar.request("olmo/formatPrompt", {
            messages: [{ role: "system", content: "s" }, user("<|im_start|>")],
        });
        assert.equal(
            typed.tokenIds.filter((id) => id === 100264).length,
            3,
            "typed <|im_start|> is plain text: only system, user and the generation prompt open turns",
        );
    });

    test("a follow-up past the sliding window reuses the cached prefix", async () => {
        const long = "Tell me about the history of sliding windows. ".repeat(30); // > 128 tokens
        const first: ChatMessage[] = [user(long)];
        const one = await sidecar.chat({
            conversationId: "kv",
            messages: first,
            sampling: { ...greedy, maxTokens: 24 },
        });
        assert.ok(one.result.usage.promptTokens > OLMO3_TINY_SHAPE.slidingWindow!);
        const followUp: ChatMessage[] = [
            ...first,
            { role: "assistant", content: one.result.text },
            user("And then?"),
        ];
        const two = await sidecar.chat({
            conversationId: "kv",
            messages: followUp,
            sampling: { ...greedy, maxTokens: 8 },
        });
        assert.ok(
            two.result.usage.reusedTokens >= one.result.usage.promptTokens,
            `reused ${two.result.usage.reusedTokens} of ${two.result.usage.promptTokens}, first prompt ${one.result.usage.promptTokens}`,
        );
        const cold = await sidecar.chat({
            conversationId: "kv-cold",
            messages: followUp,
            sampling: { ...greedy, maxTokens: 8 },
        });
        assert.equal(
            cold.result.usage.reusedTokens,
            0,
            "a fresh conversation evaluates everything",
        );
    });

    test("generation stops at the end-of-turn token, which never shows in the text", async () => {
        const { result, deltas } = await sidecar.chat({
            conversationId: "eot",
            messages: [user("Say something")],
            sampling: { ...greedy, maxTokens: 64, tokenBias: { "~": 100 } },
        });
        assert.equal(result.stopReason, "eos");
        assert.ok(result.usage.completionTokens < 64);
        assert.doesNotMatch(deltas.join("") + result.text, /<\|im_end\|>|<\|endoftext\|>/);
    });

    test("an olmo2-architecture file with a template of neither family is refused by name", async () => {
        const path = join(dir, "other-template.gguf");
        const metadata = olmo2Metadata(TINY_SHAPE).map(([key, value]): [string, typeof value] =>
            key === "tokenizer.chat_template"
                ? [
                      key,
                      gguf.str(
                          "{% for message in messages %}{{ '### ' + message['role'] + ': ' + message['content'] + '\n' }}{% endfor %}",
                      ),
                  ]
                : [key, value],
        );
        await writeGguf(path, { metadata, tensors: olmo2Tensors(TINY_SHAPE) });
        const refused = await sidecar.request("olmo/load", { modelPath: path, gpu: "cpu" }).then(
            () => undefined,
            (error: unknown) => error,
        );
        assert.ok(refused instanceof ResponseError, `expected a refusal, got ${String(refused)}`);
        assert.equal(refused.code, ErrorCodes.unsupportedArchitecture);
        assert.match(refused.message, /neither family/);
        assert.match(refused.message, /OLMo 2 Instruct .* and OLMo 3 \/ 3\.1 Instruct/);
        assert.equal(sidecar.statuses.at(-1)?.state, "error");
    });
});
