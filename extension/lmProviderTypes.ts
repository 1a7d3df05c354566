// The language model chat provider API, final since VS Code 1.104. The extension builds against
// @types/vscode 1.100 (the oldest VS Code it supports), which lacks it, so the part lmProvider.ts
// uses is declared here with the shapes of vscode.d.ts 1.104, and looked up at run time before use.
// Only difference: `unknown` where vscode.d.ts says `any` (values from other extensions are checked).
import type * as vscode from "vscode";

/** A model as the provider describes it to VS Code. */
export interface LanguageModelChatInformation {
    readonly id: string;
    readonly name: string;
    readonly family: string;
    readonly tooltip?: string;
    readonly detail?: string;
    readonly version: string;
    readonly maxInputTokens: number;
    readonly maxOutputTokens: number;
    readonly capabilities: {
        readonly imageInput?: boolean;
        readonly toolCalling?: boolean | number;
    };
}

export type LanguageModelInputPart =
    | vscode.LanguageModelTextPart
    | vscode.LanguageModelToolResultPart
    | vscode.LanguageModelToolCallPart;
export type LanguageModelResponsePart =
    | vscode.LanguageModelTextPart
    | vscode.LanguageModelToolResultPart
    | vscode.LanguageModelToolCallPart;

/** The provider's view of a `LanguageModelChatMessage`. */
export interface LanguageModelChatRequestMessage {
    readonly role: vscode.LanguageModelChatMessageRole;
    readonly content: ReadonlyArray<LanguageModelInputPart | unknown>;
    readonly name: string | undefined;
}

export interface ProvideLanguageModelChatResponseOptions {
    readonly modelOptions?: { readonly [name: string]: unknown };
    readonly tools?: readonly vscode.LanguageModelChatTool[];
    readonly toolMode: vscode.LanguageModelChatToolMode;
    /**
     * The extension that sent the request ("core" for the editor's own features); from
     * vscode.proposed.chatProvider.d.ts, which VS Code 1.139 fills in for every provider.
     */
    readonly requestInitiator?: string;
}

export interface PrepareLanguageModelChatModelOptions {
    /** True when the provider must not ask the user anything. */
    readonly silent: boolean;
}

export interface LanguageModelChatProvider<
    T extends LanguageModelChatInformation = LanguageModelChatInformation,
> {
    readonly onDidChangeLanguageModelChatInformation?: vscode.Event<void>;
    provideLanguageModelChatInformation(
        options: PrepareLanguageModelChatModelOptions,
        token: vscode.CancellationToken,
    ): vscode.ProviderResult<T[]>;
    provideLanguageModelChatResponse(
        model: T,
        messages: readonly LanguageModelChatRequestMessage[],
        options: ProvideLanguageModelChatResponseOptions,
        progress: vscode.Progress<LanguageModelResponsePart>,
        token: vscode.CancellationToken,
    ): Thenable<void>;
    provideTokenCount(
        model: T,
        text: string | LanguageModelChatRequestMessage,
        token: vscode.CancellationToken,
    ): Thenable<number>;
}

/** What `vscode.lm` gains in 1.104. */
export interface LanguageModelChatProviderApi {
    registerLanguageModelChatProvider(
        vendor: string,
        provider: LanguageModelChatProvider,
    ): vscode.Disposable;
}
