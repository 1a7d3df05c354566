// OLMo Local as a language model provider (VS Code 1.104+), used the way any extension uses it: a
// throwaway consumer extension, built here and installed next to the packaged VSIX, selects the
// model through vscode.lm, streams an answer, cancels one mid-stream and counts tokens, and writes
// what it saw to a JSON file in the workspace. On VS Code 1.100 the same consumer finds no model
// and the extension works as before.
// Run: node --import tsx --test test/e2e/lmProvider.test.ts (after `node --import tsx test/prepare.ts`).
import assert from "node:assert/strict";
import * as fs from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import { Tiktoken } from "js-tiktoken/lite";
import cl100kBase from "js-tiktoken/ranks/cl100k_base";
import { ensureTestModel, TINY_SHAPE } from "../support/models.js";
import type { VSCodeSession } from "./harness.js";
import { requireVsix } from "./product.js";
import { packageThrowawayExtension } from "./throwaway.js";
import { forEachVSCode } from "./versions.js";

const VENDOR = "olmo-local";
const MODEL_ID = "olmo-2-instruct";
const CONTEXT_SIZE = 1024;
const MAX_TOKENS = 64;
const CODE = "function add(a, b) {\n    return a + b;\n}\n";

const consumerManifest = {
    name: "lm-consumer",
    displayName: "LM Consumer",
    description: "Throwaway extension that uses OLMo Local through vscode.lm",
    publisher: "olmo-test",
    version: "0.0.1",
    // vscode.lm.selectChatModels is in 1.100, so the same consumer runs on both releases.
    engines: { vscode: "^1.100.0" },
    main: "./extension.js",
    contributes: {
        commands: [
            { command: "lmConsumer.select", title: "Select OLMo", category: "LM Consumer" },
            { command: "lmConsumer.ask", title: "Ask OLMo", category: "LM Consumer" },
        ],
    },
};

// Each command writes <name>.json into the workspace, then says "done" or "failed" in the status bar.
const consumerJs = String.raw`
const vscode = require("vscode");
const fs = require("fs");
const path = require("path");
const { User, Assistant } = vscode.LanguageModelChatMessage;

const describeModel = (m) => m && { id: m.id, vendor: m.vendor, family: m.family, name: m.name, version: m.version, maxInputTokens: m.maxInputTokens };

async function collect(response, onChunk) {
  const chunks = [];
  for await (const chunk of response.text) {
    chunks.push(chunk);
    if (onChunk) onChunk(chunks);
  }
  return chunks;
}

const steps = {
  async select() {
    const models = await vscode.lm.selectChatModels({ vendor: ${JSON.stringify(VENDOR)} });
    const active = vscode.extensions.getExtension("olmo-local.olmo-local").isActive;
    return { active, models: models.map(describeModel) };
  },
  async ask() {
    const [model] = await vscode.lm.selectChatModels({ vendor: ${JSON.stringify(VENDOR)} });
    const conversation = [User("Hello"), Assistant("Hi. How can I help?"), User("Tell me a story.")];
    const answer = await collect(await model.sendRequest(conversation, { modelOptions: { temperature: 0, seed: 1, maxTokens: 24 } }));

    const cts = new vscode.CancellationTokenSource();
    const started = Date.now();
    const long = await model.sendRequest([User("Write a very long essay.")], { modelOptions: { temperature: 0, maxTokens: 900 } }, cts.token);
    const cancelled = { chunks: [], error: undefined, ms: 0 };
    try {
      cancelled.chunks = await collect(long, (chunks) => chunks.length === 1 && cts.cancel());
    } catch (e) {
      cancelled.error = String(e);
    }
    cancelled.ms = Date.now() - started;

    const tokens = {
      helloWorld: await model.countTokens("hello world"),
      code: await model.countTokens(${JSON.stringify(CODE)}),
      message: await model.countTokens(User("hello world")),
    };

    let refused;
    try {
      await collect(await model.sendRequest([User("Hi"), Assistant("Hello")]));
    } catch (e) {
      refused = { name: e.name, code: e.code, message: e.message };
    }
    let oversized;
    try {
      await collect(await model.sendRequest([User("x".repeat(2 * 1024 * 1024))]));
    } catch (e) {
      oversized = { message: e.message };
    }
    const [afterLoad] = await vscode.lm.selectChatModels({ vendor: ${JSON.stringify(VENDOR)} });
    return { answer, cancelled, tokens, refused, oversized, afterLoad: describeModel(afterLoad) };
  },
};

exports.activate = function (context) {
  const item = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Left, 100);
  item.text = "LM consumer: idle";
  item.show();
  context.subscriptions.push(item);
  const folder = vscode.workspace.workspaceFolders[0].uri.fsPath;
  for (const [name, step] of Object.entries(steps)) {
    context.subscriptions.push(vscode.commands.registerCommand("lmConsumer." + name, async () => {
      item.text = "LM consumer: " + name + " running";
      let result, outcome = "done";
      try {
        result = await step();
      } catch (e) {
        result = { error: String((e && e.stack) || e) };
        outcome = "failed";
      }
      fs.writeFileSync(path.join(folder, name + ".json"), JSON.stringify(result, null, 2));
      item.text = "LM consumer: " + name + " " + outcome;
    }));
  }
};

exports.deactivate = function () {};
`;

interface ModelSeen {
    id: string;
    vendor: string;
    family: string;
    name: string;
    version: string;
    maxInputTokens: number;
}
interface SelectSeen {
    /** Whether OLMo Local was active after the selection. */
    active: boolean;
    models: ModelSeen[];
}
interface AskSeen {
    answer: string[];
    cancelled: { chunks: string[]; error?: string; ms: number };
    tokens: { helloWorld: number; code: number; message: number };
    refused?: { name: string; code: string; message: string };
    oversized?: { message: string };
    afterLoad: ModelSeen;
}

/** Runs a consumer command from the palette and returns what it wrote. */
async function consumer<T>(
    vscode: VSCodeSession,
    name: "select" | "ask",
    title: string,
): Promise<T> {
    await vscode.runCommand(`LM Consumer: ${title}`);
    const outcome = vscode.statusBarItem(new RegExp(`LM consumer: ${name} (done|failed)`));
    await outcome.waitFor({ state: "visible", timeout: 180_000 });
    const seen = JSON.parse(
        await fs.readFile(path.join(vscode.dirs.workspace, `${name}.json`), "utf8"),
    ) as T & { error?: string };
    assert.equal(seen.error, undefined, `the consumer's ${name} failed`);
    return seen;
}

/** The "OLMo Local" LogOutputChannel's file. */
const OLMO_LOG = /OLMo Local/;

/** Its error lines, but for the sidecar's stderr, which vscode-languageclient relays at error level. */
const errorLines = (log: string) =>
    log
        .split("\n")
        .filter((line) => line.includes("[error]") && !line.includes("[error] [sidecar]"));

let consumerDir: string;
let consumerVsix: string;
let modelPath: string;
const settings = () => ({
    "olmo.modelPath": modelPath,
    "olmo.gpu": "cpu",
    "olmo.threads": 1,
    "olmo.contextSize": CONTEXT_SIZE,
    "olmo.maxTokens": MAX_TOKENS,
});

before(async () => {
    modelPath = await ensureTestModel("tiny");
    consumerDir = await fs.mkdtemp(path.join(os.tmpdir(), "lm-consumer-"));
    consumerVsix = await packageThrowawayExtension(consumerDir, {
        "package.json": JSON.stringify(consumerManifest, null, 2),
        "extension.js": consumerJs,
        "README.md": "# LM Consumer\n\nThrowaway extension for the language model provider test.\n",
    });
});
after(() => fs.rm(consumerDir, { recursive: true, force: true }));

forEachVSCode(
    (vs) =>
        describe(`e2e: language model provider (VS Code ${vs.label})`, () => {
            test(
                "another extension selects OLMo, streams an answer, cancels one mid-stream, counts tokens",
                { timeout: 10 * 60_000 },
                async () => {
                    // Debug level: the extension logs the sidecar's full answer there, to compare with what streamed.
                    await vs.withVSCode(
                        {
                            name: "lm-provider",
                            vsix: requireVsix(),
                            alsoInstall: [consumerVsix],
                            settings: settings(),
                            logLevel: "debug",
                        },
                        async (vscode) => {
                            const selected = await consumer<SelectSeen>(
                                vscode,
                                "select",
                                "Select OLMo",
                            );
                            // The provider is up: by the contribution's implied activation event,
                            // or by onStartupFinished (which takes out proposals a reload left) if
                            // that came first.
                            assert.equal(selected.active, true);
                            await vscode.waitForExtensionLog(
                                /remoteexthost\.log$/,
                                /_doActivateExtension olmo-local\.olmo-local, .*activationEvent: '(onLanguageModelChatProvider:olmo-local|onStartupFinished)'/,
                            );
                            assert.deepEqual(selected.models, [
                                {
                                    id: MODEL_ID,
                                    vendor: VENDOR,
                                    family: "olmo2",
                                    name: "OLMo-2 13B Instruct",
                                    version: path.basename(modelPath),
                                    // The sidecar keeps maxTokens of the context for the answer.
                                    maxInputTokens: CONTEXT_SIZE - MAX_TOKENS,
                                },
                            ]);
                            // Describing the model started nothing.
                            await vscode.page
                                .locator(
                                    '.part.statusbar .statusbar-item[aria-label="OLMo Local: idle"]',
                                )
                                .waitFor({ state: "visible" });

                            const seen = await consumer<AskSeen>(vscode, "ask", "Ask OLMo");
                            // Request 2's end is logged when its cancellation lands, which may be after request 3 failed.
                            await vscode.waitForExtensionLog(OLMO_LOG, /lm: request 2 text/);
                            const log = await vscode.waitForExtensionLog(
                                OLMO_LOG,
                                /lm: request 3 failed/,
                            );

                            // The streamed chunks add up to exactly the text the sidecar returned.
                            const sidecarText = (n: number) => {
                                const logged = new RegExp(
                                    `lm: request ${n} text (".*")$`,
                                    "m",
                                ).exec(log)?.[1];
                                assert.ok(
                                    logged,
                                    `the extension logged the sidecar's answer to request ${n}`,
                                );
                                return JSON.parse(logged) as string;
                            };
                            assert.ok(seen.answer.length > 0);
                            assert.equal(seen.answer.join(""), sidecarText(1));
                            // Sent as the consumer's: it waits behind the user's own requests.
                            assert.match(
                                log,
                                /lm: request 1: 3 messages, up to 24 tokens, from olmo-test\.lm-consumer$/m,
                            );

                            // Cancelled after its first chunk: the sidecar stopped early, and the stream ended quietly.
                            assert.equal(seen.cancelled.error, undefined);
                            assert.ok(seen.cancelled.chunks.length >= 1);
                            assert.ok(
                                sidecarText(2).startsWith(seen.cancelled.chunks.join("")),
                                "what arrived is the start of the sidecar's partial answer",
                            );
                            const cancelled =
                                /lm: request 2 ended \(cancelled\)(?:: (\d+) tokens)?/.exec(log);
                            assert.ok(cancelled, "request 2 ended as cancelled");
                            if (cancelled[1] !== undefined)
                                assert.ok(
                                    Number(cancelled[1]) < 900,
                                    `stopped after ${cancelled[1]} of 900 tokens`,
                                );

                            // Token counts are the model's tokenizer (OLMo-2's is cl100k_base for plain text).
                            const cl100k = new Tiktoken(cl100kBase);
                            assert.equal(seen.tokens.helloWorld, 2);
                            assert.equal(
                                seen.tokens.helloWorld,
                                cl100k.encode("hello world").length,
                            );
                            assert.equal(seen.tokens.code, cl100k.encode(CODE).length);
                            assert.ok(
                                seen.tokens.message > seen.tokens.helloWorld,
                                "a message counts with its chat markers",
                            );

                            // A request the model cannot answer fails with the sidecar's reason.
                            assert.match(
                                seen.refused?.message ?? "",
                                /OLMo Local: .*last message must be the user's/,
                            );
                            // More text than the sidecar accepts is refused here, with the reason.
                            assert.match(
                                seen.oversized?.message ?? "",
                                /OLMo Local: this request carries 2\.0 MB of text; the local model accepts at most 1\.0 MB per request/,
                            );
                            assert.match(log, /lm: request 4 refused: /);

                            // Once loaded, the list shows the model's own name and the context actually allocated.
                            assert.equal(seen.afterLoad.name, TINY_SHAPE.name);
                            assert.equal(seen.afterLoad.maxInputTokens, CONTEXT_SIZE - MAX_TOKENS);
                            assert.deepEqual(errorLines(log), []);
                        },
                    );
                },
            );
        }),
    { from: "1.104" },
);

forEachVSCode(
    (vs) =>
        describe(`e2e: without the language model provider API (VS Code ${vs.label})`, () => {
            test(
                "the extension activates and loads its model; vscode.lm offers no OLMo model",
                { timeout: 10 * 60_000 },
                async () => {
                    await vs.withVSCode(
                        {
                            name: "lm-provider-absent",
                            vsix: requireVsix(),
                            alsoInstall: [consumerVsix],
                            settings: settings(),
                        },
                        async (vscode) => {
                            const selected = await consumer<SelectSeen>(
                                vscode,
                                "select",
                                "Select OLMo",
                            );
                            assert.deepEqual(selected.models, []);

                            await vscode.runCommand("OLMo: Load Model");
                            await vscode.page
                                .locator(
                                    '.part.statusbar .statusbar-item[aria-label^="OLMo Local: ready"]',
                                )
                                .waitFor({ state: "visible", timeout: 120_000 });
                            const log = await vscode.waitForExtensionLog(
                                OLMO_LOG,
                                /loaded .* on cpu/,
                            );
                            assert.match(log, /has no language model provider API/);
                            assert.deepEqual(errorLines(log), []);
                        },
                    );
                },
            );
        }),
    { before: "1.104" },
);
