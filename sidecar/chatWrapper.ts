// The OLMo-2 chat format, written out by hand so that it is exact whatever template the GGUF
// carries (llama.cpp's own template detection mistakes it for another family).
//
//   <|endoftext|><|system|>\nSYS\n<|user|>\nQ1\n<|assistant|>\nA1<|endoftext|>\n<|user|>\nQ2\n<|assistant|>\n
//
// Only BOS/EOS (both `<|endoftext|>`, id 100257) are control tokens. Message content is always
// plain text: a user who types `<|endoftext|>` gets the characters, never the control token.
// The role markers are plain text in OLMo-2's vocabulary, so a typed `<|user|>` would tokenize
// exactly like a real turn boundary; content() splits typed markers so that they never do
// (same characters, different tokens), and no text can fake a turn.
import {
    ChatWrapper,
    LlamaText,
    SpecialToken,
    SpecialTokensText,
    type ChatHistoryItem,
    type ChatModelResponse,
    type ChatWrapperGenerateContextStateOptions,
    type ChatWrapperGeneratedContextState,
    type ChatWrapperSettings,
} from "node-llama-cpp";
import type { ChatMessage } from "./protocol.js";

export class Olmo2ChatWrapper extends ChatWrapper {
    public readonly wrapperName = "OLMo2";
    public override readonly settings: ChatWrapperSettings = {
        ...ChatWrapper.defaultSettings,
        supportsSystemMessages: true,
    };

    public override generateContextState({
        chatHistory,
    }: ChatWrapperGenerateContextStateOptions): ChatWrapperGeneratedContextState {
        const parts: LlamaText[] = [LlamaText(new SpecialToken("BOS"))];
        chatHistory.forEach((item, index) => {
            const isLast = index === chatHistory.length - 1;
            if (item.type === "system") {
                parts.push(LlamaText(["<|system|>\n", content(plainText(item.text)), "\n"]));
            } else if (item.type === "user") {
                parts.push(LlamaText(["<|user|>\n", content(item.text), "\n"]));
            } else {
                const text = content(responseText(item.response));
                // The last model item is the one being generated: it stays open (no EOS).
                parts.push(
                    isLast
                        ? LlamaText(["<|assistant|>\n", text])
                        : LlamaText(["<|assistant|>\n", text, new SpecialToken("EOS"), "\n"]),
                );
            }
        });
        return {
            contextText: LlamaText(parts),
            stopGenerationTriggers: [LlamaText(new SpecialToken("EOS"))],
        };
    }
}

const ROLE_MARKER = /<\|(system|user|assistant)\|>/g;

/**
 * Message text as LlamaText: plain text, except that a typed role marker is cut inside its role
 * word ("<|us" + "er|>"), so it can never produce the template's whole-word "user" token.
 * The second piece is its own tokenization unit; as SpecialTokensText it still cannot hold a
 * control token, since it never contains a whole `<|...|>`.
 */
export function content(text: string): LlamaText {
    const pieces: Array<string | SpecialTokensText> = [];
    let from = 0;
    for (const match of text.matchAll(ROLE_MARKER)) {
        const cut = match.index + 4; // after "<|" and two letters of the role
        pieces.push(
            text.slice(from, cut),
            new SpecialTokensText(text.slice(cut, match.index + match[0].length)),
        );
        from = match.index + match[0].length;
    }
    pieces.push(text.slice(from));
    return LlamaText(pieces);
}

/** System text arrives as LlamaText JSON; flatten it so that it can never smuggle in a special token. */
function plainText(
    text: ChatHistoryItem & { type: "system" } extends { text: infer T } ? T : never,
): string {
    return LlamaText.fromJSON(text).toString();
}

function responseText(response: ChatModelResponse["response"]): string {
    return response.filter((part): part is string => typeof part === "string").join("");
}

/**
 * The protocol's messages as node-llama-cpp history. With `openAssistantTurn` an empty model item
 * is appended: that is the turn the model writes (the template's generation prompt).
 */
export function toChatHistory(
    messages: readonly ChatMessage[],
    openAssistantTurn: boolean,
): ChatHistoryItem[] {
    const history: ChatHistoryItem[] = messages.map((m): ChatHistoryItem => {
        if (m.role === "system") return { type: "system", text: m.content };
        if (m.role === "user") return { type: "user", text: m.content };
        return { type: "model", response: [m.content] };
    });
    if (openAssistantTurn) history.push({ type: "model", response: [] });
    return history;
}
