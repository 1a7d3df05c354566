// OLMo Local in VS Code's own model list (VS Code 1.104+): a language model chat provider, so the
// chat model picker and any extension (`vscode.lm.selectChatModels({ vendor: "olmo-local" })`) can
// use the local model. On older VS Code nothing is registered. The model's description comes from
// settings until the model is loaded: only a request or a token count starts the model process.
// Requests from here wait behind the user's own chat, explain and rewrite, and each calling
// extension may have two waiting (the sidecar's scheduler.ts); more get a clear `busy` error.
import { createHash } from "node:crypto";
import * as path from "node:path";
import * as vscode from "vscode";
import { answerReserve, BASELINE_CONTEXT_SIZE, DEFAULT_MAX_TOKENS } from "../sidecar/defaults.js";
import { MAX_TEXT_CHARS, type ChatMessage, type Sampling } from "../sidecar/protocol.js";
import type {
    LanguageModelChatInformation,
    LanguageModelChatProvider,
    LanguageModelChatProviderApi,
    LanguageModelChatRequestMessage,
    LanguageModelResponsePart,
    PrepareLanguageModelChatModelOptions,
    ProvideLanguageModelChatResponseOptions,
} from "./lmProviderTypes.js";
import { OlmoError, type ModelHost } from "./modelHost.js";
import { modelTargetFromSettings, openModelPathSetting, samplingFromSettings } from "./settings.js";

/** As in package.json's `contributes.languageModelChatProviders`. */
export const LM_VENDOR = "olmo-local";
/** Stable across model loads, so that a caller's chosen model stays valid. */
export const LM_MODEL_ID = "olmo-2-instruct";
const DEFAULT_NAME = "OLMo-2 13B Instruct";
/** Settings that change what the model list says. */
const INFO_SETTINGS = [
    "olmo.modelPath",
    "olmo.server.url",
    "olmo.server.model",
    "olmo.contextSize",
    "olmo.maxTokens",
];

export function registerLanguageModelProvider(host: ModelHost): vscode.Disposable[] {
    const lm: typeof vscode.lm & Partial<LanguageModelChatProviderApi> = vscode.lm;
    if (typeof lm.registerLanguageModelChatProvider !== "function") {
        host.log.info(
            `VS Code ${vscode.version} has no language model provider API (1.104+): OLMo Local is not in its model list.`,
        );
        return [];
    }
    const provider = new OlmoChatProvider(host);
    return [lm.registerLanguageModelChatProvider(LM_VENDOR, provider), provider];
}

class OlmoChatProvider implements LanguageModelChatProvider, vscode.Disposable {
    private readonly changed = new vscode.EventEmitter<void>();
    readonly onDidChangeLanguageModelChatInformation = this.changed.event;
    /** What VS Code was last told, to ask it again only when that is out of date. */
    private reported?: string;
    private requests = 0;
    private readonly subscriptions: vscode.Disposable[];

    constructor(private readonly host: ModelHost) {
        this.subscriptions = [
            this.changed,
            // Loading replaces the defaults with the real name and the context actually allocated.
            host.onDidChangeState(() => this.refresh()),
            vscode.workspace.onDidChangeConfiguration((e) => {
                if (INFO_SETTINGS.some((s) => e.affectsConfiguration(s))) this.refresh();
            }),
        ];
    }

    provideLanguageModelChatInformation(
        options: PrepareLanguageModelChatModelOptions,
    ): LanguageModelChatInformation[] {
        const info = this.modelInfo();
        this.reported = JSON.stringify(info ?? null);
        this.host.log.debug(
            `lm: model list asked for${options.silent ? " (silent)" : ""}: ${this.reported}`,
        );
        if (!info && !options.silent) void askForModelPath();
        return info ? [info] : [];
    }

    async provideLanguageModelChatResponse(
        _model: LanguageModelChatInformation,
        messages: readonly LanguageModelChatRequestMessage[],
        options: ProvideLanguageModelChatResponseOptions,
        progress: vscode.Progress<LanguageModelResponsePart>,
        token: vscode.CancellationToken,
    ): Promise<void> {
        if (
            options.tools?.length &&
            options.toolMode === vscode.LanguageModelChatToolMode.Required
        ) {
            throw new Error("OLMo Local cannot call tools, and this request requires a tool call.");
        }
        const n = ++this.requests;
        const chatMessages = toChatMessages(messages);
        const sampling: Sampling = {
            ...samplingFromSettings(),
            ...samplingFromModelOptions(options.modelOptions),
        };
        const caller = options.requestInitiator ?? "vscode.lm";
        const log = this.host.log;
        log.info(
            `lm: request ${n}: ${chatMessages.length} messages, up to ${sampling.maxTokens} tokens, from ${caller}`,
        );
        const chars = chatMessages.reduce((sum, m) => sum + m.content.length, 0);
        if (chars > MAX_TEXT_CHARS) {
            // The sidecar would refuse it too; saying so here sends no megabytes over the pipe.
            const message = `OLMo Local: this request carries ${megabytes(chars)} of text; the local model accepts at most ${megabytes(MAX_TEXT_CHARS)} per request (its context holds far less). Send less text.`;
            log.warn(`lm: request ${n} refused: ${message}`);
            throw new Error(message);
        }
        try {
            const result = await this.host.chat(
                {
                    conversationId: conversationIdFor(chatMessages),
                    messages: chatMessages,
                    sampling,
                    caller,
                },
                (text) => {
                    if (text) progress.report(new vscode.LanguageModelTextPart(text));
                },
                token,
            );
            log.info(
                `lm: request ${n} ended (${result.stopReason}): ${result.usage.completionTokens} tokens, ${result.text.length} characters in ${result.timings.totalMs} ms`,
            );
            log.debug(`lm: request ${n} text ${JSON.stringify(result.text)}`);
            if (result.dropped)
                log.warn(
                    `lm: request ${n}: ${result.dropped.messageIndices.length} old messages left out to fit the context`,
                );
        } catch (error) {
            // A cancelled request ends quietly with what was streamed; the sidecar has stopped.
            if (token.isCancellationRequested) {
                log.info(`lm: request ${n} ended (cancelled)`);
                return;
            }
            log.warn(
                `lm: request ${n} failed: ${error instanceof Error ? error.message : String(error)}`,
            );
            throw toLanguageModelError(error);
        }
    }

    /**
     * The model's own tokenizer. A message counts with its chat-template markers plus the start and
     * answer markers of a prompt, so that budgets summed over messages err a few tokens high, never low.
     */
    async provideTokenCount(
        _model: LanguageModelChatInformation,
        text: string | LanguageModelChatRequestMessage,
        token: vscode.CancellationToken,
    ): Promise<number> {
        const params = typeof text === "string" ? { text } : { messages: toChatMessages([text]) };
        try {
            return (await this.host.request("olmo/countTokens", params, token)).tokens;
        } catch (error) {
            throw toLanguageModelError(error);
        }
    }

    /** Undefined while no model file or team server is set: the list is then empty. */
    private modelInfo(): LanguageModelChatInformation | undefined {
        const target = modelTargetFromSettings();
        if (!target) return undefined;
        const loaded = this.host.state.kind === "ready" ? this.host.state.model : undefined;
        const configuredContext =
            target.kind === "file"
                ? target.params.contextSize
                : target.kind === "server"
                  ? target.contextSize
                  : undefined;
        const contextSize = loaded?.contextSize ?? configuredContext ?? BASELINE_CONTEXT_SIZE;
        const maxTokens = Math.min(
            samplingFromSettings().maxTokens ?? DEFAULT_MAX_TOKENS,
            contextSize,
        );
        return {
            id: LM_MODEL_ID,
            name: loaded?.name ?? DEFAULT_NAME,
            family: "olmo2",
            ...whereItRuns(target),
            // What the sidecar keeps free for the answer when it fits the conversation.
            maxInputTokens: contextSize - answerReserve(maxTokens, contextSize),
            maxOutputTokens: maxTokens,
            capabilities: {},
        };
    }

    private refresh(): void {
        if (
            this.reported !== undefined &&
            this.reported !== JSON.stringify(this.modelInfo() ?? null)
        )
            this.changed.fire();
    }

    dispose(): void {
        for (const s of this.subscriptions) s.dispose();
    }
}

/** The model list's version and tooltip: the file on this machine, or the team server. */
function whereItRuns(
    target: NonNullable<ReturnType<typeof modelTargetFromSettings>>,
): Pick<LanguageModelChatInformation, "version" | "tooltip"> {
    switch (target.kind) {
        case "file":
            return {
                version: path.basename(target.params.modelPath),
                tooltip: `Runs on this machine: ${target.params.modelPath}`,
            };
        case "server":
            return {
                version: target.model ?? target.server.host,
                tooltip: `Runs on the team server ${target.server.url}`,
            };
        case "invalidServerUrl":
            return { version: "team server", tooltip: target.message };
    }
}

/** The protocol's messages: text parts joined; tool calls, tool results and data are not for OLMo. */
function toChatMessages(messages: readonly LanguageModelChatRequestMessage[]): ChatMessage[] {
    return messages.map((m) => ({
        role: m.role === vscode.LanguageModelChatMessageRole.Assistant ? "assistant" : "user",
        content: m.content
            .filter(
                (part): part is vscode.LanguageModelTextPart =>
                    part instanceof vscode.LanguageModelTextPart,
            )
            .map((part) => part.value)
            .join(""),
    }));
}

/** `modelOptions` a caller may pass: temperature, topP, maxTokens and seed, as numbers; others are ignored. */
function samplingFromModelOptions(
    options: { readonly [name: string]: unknown } | undefined,
): Sampling {
    const sampling: Sampling = {};
    for (const key of ["temperature", "topP", "maxTokens", "seed"] as const) {
        const value = options?.[key];
        if (typeof value === "number" && Number.isFinite(value)) sampling[key] = value;
    }
    return sampling;
}

/**
 * Requests that begin with the same message share a conversation: a chat's next turn then finds its
 * earlier turns in the sidecar's KV cache, and turns of one conversation run in order.
 */
function conversationIdFor(messages: readonly ChatMessage[]): string {
    return `lm-${createHash("sha256")
        .update(JSON.stringify(messages[0] ?? null))
        .digest("hex")
        .slice(0, 16)}`;
}

function megabytes(chars: number): string {
    return `${(chars / 1024 / 1024).toFixed(1)} MB`;
}

function toLanguageModelError(error: unknown): Error {
    if (
        error instanceof OlmoError &&
        ["noModel", "modelMissing", "serverModelNotFound"].includes(error.code)
    )
        return vscode.LanguageModelError.NotFound(error.message);
    if (error instanceof Error) return new Error(`OLMo Local: ${error.message}`);
    return new Error(`OLMo Local: ${String(error)}`);
}

async function askForModelPath(): Promise<void> {
    const choice = await vscode.window.showInformationMessage(
        "OLMo Local needs a model: set olmo.modelPath to an OLMo .gguf file, or olmo.server.url to a team server.",
        "Open Settings",
    );
    if (choice) await openModelPathSetting();
}
