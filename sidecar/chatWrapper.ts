// The chat formats of the OLMo family, written out by hand so that they are exact (llama.cpp's own
// template detection mistakes OLMo-2's for another family), and chatFormatOf(), which tells from
// the file's own Jinja template which one a GGUF needs. Both `olmo2`-architecture families:
//
// OLMo 2 Instruct (1124: 7B, 13B):
//   <|endoftext|><|system|>\nSYS\n<|user|>\nQ1\n<|assistant|>\nA1<|endoftext|>\n<|user|>\nQ2\n<|assistant|>\n
//
// Only BOS/EOS (both `<|endoftext|>`, id 100257) are control tokens. Message content is always
// plain text: a user who types `<|endoftext|>` gets the characters, never the control token.
// The role markers are plain text in OLMo-2's vocabulary, so a typed `<|user|>` would tokenize
// exactly like a real turn boundary; content() splits typed markers so that they never do
// (same characters, different tokens), and no text can fake a turn.
//
// OLMo 3 / 3.1 Instruct (7B, 32B; llama.cpp's converter writes Olmo3ForCausalLM as `olmo2` with
// sliding-window keys), ChatML over the same dolma2 vocabulary, no BOS:
//   <|im_start|>system\nSYS<|im_end|>\n<|im_start|>user\nQ1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n
//   <|im_start|>user\nQ2<|im_end|>\n<|im_start|>assistant\n
// Without a system message the template writes its own default one (Olmo-3-7B-Instruct: "You are
// a helpful function-calling AI assistant. You do not currently have access to any functions.
// <functions></functions>"; Olmo 3.1 adds the Olmo identity). Generation stops at `<|im_end|>`
// (100265). Here `<|im_start|>` / `<|im_end|>` ARE special tokens, so message text is tokenized
// without special tokens: typed markers stay plain text.
// Sources: huggingface/transformers tests/models/olmo3/test_modeling_olmo3.py (the rendered
// Olmo-3-7B-Instruct prompt), ollama model/renderers/olmo3.go (the 3 and 3.1 default system
// prompts, no BOS, the generation prompt), allenai/open-instruct docs/olmo3.md (which tokenizer
// template each Instruct release carries), llama.cpp conversion/olmo.py (the sliding-window keys).
// The default system prompt is not hard-coded: chatFormatOf() reads it from the file's template.
import { Template } from "@huggingface/jinja";
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

export type ChatFamily = "olmo2" | "olmo3";

export type ChatFormat =
    | { readonly family: "olmo2" }
    | { readonly family: "olmo3"; readonly defaultSystemPrompt: string };

/** What the refusal of an unknown template names as supported. */
export const SUPPORTED_CHAT_FORMATS =
    "OLMo 2 Instruct (<|user|> / <|assistant|> markers) and OLMo 3 / 3.1 Instruct (ChatML: <|im_start|> / <|im_end|>)";

export class UnsupportedChatFormatError extends Error {}

/** What chatFormatOf() reads from a GGUF header. */
export interface ChatFormatEvidence {
    /** `tokenizer.chat_template`, if any. */
    readonly template?: string;
    readonly bosText: string;
    readonly eosText: string;
    /** Whether the file has `olmo2.attention.sliding_window` (only OLMo 3 conversions write it). */
    readonly slidingWindow: boolean;
}

/**
 * The chat format a file needs, from its own template: the template is rendered (@huggingface/jinja)
 * on a probe conversation and must give exactly one family's layout, else the file is refused with
 * the reason. A file without a template is OLMo 2 unless it has sliding-window layers (then the
 * format cannot be known: refused, never guessed).
 */
export function chatFormatOf(evidence: ChatFormatEvidence): ChatFormat {
    const { template, bosText, eosText } = evidence;
    if (template === undefined || template.trim() === "") {
        if (!evidence.slidingWindow) return { family: "olmo2" };
        throw new UnsupportedChatFormatError(
            "it has sliding-window layers (OLMo 3) but no chat template to say its prompt format",
        );
    }
    let render: (messages: ChatMessage[]) => string;
    try {
        const jinja = new Template(template);
        render = (messages) =>
            jinja.render({
                messages,
                bos_token: bosText,
                eos_token: eosText,
                add_generation_prompt: true,
            });
    } catch (error) {
        throw new UnsupportedChatFormatError(`its chat template cannot be read (${String(error)})`);
    }
    const probe: ChatMessage[] = [
        { role: "system", content: "S" },
        { role: "user", content: "U1" },
        { role: "assistant", content: "A1" },
        { role: "user", content: "U2" },
    ];
    let rendered: string;
    let userOnly: string;
    try {
        rendered = render(probe);
        userOnly = render([{ role: "user", content: "U1" }]);
    } catch (error) {
        throw new UnsupportedChatFormatError(
            `its chat template fails to render (${String(error)})`,
        );
    }
    const olmo2 =
        `${bosText}<|system|>\nS\n<|user|>\nU1\n<|assistant|>\nA1${eosText}\n` +
        "<|user|>\nU2\n<|assistant|>\n";
    if (rendered === olmo2) return { family: "olmo2" };
    const chatMlTurns =
        "<|im_start|>user\nU1<|im_end|>\n<|im_start|>assistant\nA1<|im_end|>\n" +
        "<|im_start|>user\nU2<|im_end|>\n<|im_start|>assistant\n";
    const defaultSystem =
        /^<\|im_start\|>system\n([^]*)<\|im_end\|>\n<\|im_start\|>user\nU1<\|im_end\|>\n<\|im_start\|>assistant\n$/.exec(
            userOnly,
        );
    if (
        rendered === `<|im_start|>system\nS<|im_end|>\n${chatMlTurns}` &&
        defaultSystem !== null &&
        !/<\|[^|\s]+\|>/.test(defaultSystem[1]!)
    ) {
        return { family: "olmo3", defaultSystemPrompt: defaultSystem[1]! };
    }
    const shown = rendered.length > 160 ? `${rendered.slice(0, 160)}…` : rendered;
    throw new UnsupportedChatFormatError(
        `its chat template is neither family's (a probe conversation renders as ${JSON.stringify(shown)})`,
    );
}

export function chatWrapperFor(format: ChatFormat): ChatWrapper {
    return format.family === "olmo2"
        ? new Olmo2ChatWrapper()
        : new Olmo3ChatWrapper(format.defaultSystemPrompt);
}

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

const IM_START = "<|im_start|>";
const IM_END = "<|im_end|>";

/** OLMo 3 / 3.1 Instruct: ChatML, the template's default system prompt when there is none. */
export class Olmo3ChatWrapper extends ChatWrapper {
    public readonly wrapperName = "OLMo3";
    public override readonly settings: ChatWrapperSettings = {
        ...ChatWrapper.defaultSettings,
        supportsSystemMessages: true,
    };

    constructor(private readonly defaultSystemPrompt: string) {
        super();
    }

    public override generateContextState({
        chatHistory,
    }: ChatWrapperGenerateContextStateOptions): ChatWrapperGeneratedContextState {
        // Control tokens come only from here; every text, the default prompt too, is plain text.
        const turn = (role: string, text: string, open = false): LlamaText =>
            LlamaText([
                new SpecialTokensText(IM_START),
                `${role}\n${text}`,
                ...(open ? [] : [new SpecialTokensText(IM_END), "\n"]),
            ]);
        const parts: LlamaText[] = [];
        if (chatHistory[0]?.type !== "system") parts.push(turn("system", this.defaultSystemPrompt));
        chatHistory.forEach((item, index) => {
            if (item.type === "system") parts.push(turn("system", plainText(item.text)));
            else if (item.type === "user") parts.push(turn("user", item.text));
            // The last model item is the one being generated: it stays open.
            else
                parts.push(
                    turn(
                        "assistant",
                        responseText(item.response),
                        index === chatHistory.length - 1,
                    ),
                );
        });
        return {
            contextText: LlamaText(parts),
            stopGenerationTriggers: [
                LlamaText(new SpecialTokensText(IM_END)),
                LlamaText(new SpecialToken("EOS")),
                LlamaText(new SpecialToken("EOT")),
            ],
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
