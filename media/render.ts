// Markdown -> sanitized DOM for the chat view. Model text (and the user's) is untrusted input:
// markdown-it renders it with raw HTML off, then DOMPurify keeps only an allow-list of the tags and
// attributes our own rendering produces. Code blocks get highlight.js classes, and their toolbar
// buttons are added after sanitizing.
import DOMPurify, { type Config, type WindowLike } from "dompurify";
import hljs from "highlight.js/lib/common";
import MarkdownIt from "markdown-it";
import { isOpenableLink } from "./protocol.js";

/** The actions of a code block's toolbar; chat.ts reads them from `data-action`. */
export type CodeAction = "copy" | "insert" | "apply";

const codeActions: Array<{ action: CodeAction; icon: string; label: string; text: string }> = [
    { action: "copy", icon: "copy", label: "Copy code", text: "Copy" },
    { action: "insert", icon: "insert", label: "Insert code at the cursor", text: "Insert" },
    {
        action: "apply",
        icon: "replace",
        label: "Apply code to the editor selection",
        text: "Apply",
    },
];

const sanitizeConfig: Config = {
    ALLOWED_TAGS: [
        "p",
        "br",
        "hr",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "blockquote",
        "ul",
        "ol",
        "li",
        "strong",
        "em",
        "s",
        "code",
        "pre",
        "a",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "span",
        "div",
    ],
    ALLOWED_ATTR: ["href", "title", "class", "start", "aria-label", "role"],
    // DOMPurify tests every attribute outside this list against ALLOWED_URI_REGEXP.
    ADD_URI_SAFE_ATTR: ["start", "aria-label"],
    ALLOWED_URI_REGEXP: /^https?:\/\//i,
    ALLOW_DATA_ATTR: false,
    ALLOW_ARIA_ATTR: false,
    FORBID_ATTR: ["style"],
};

export interface Renderer {
    /** Renders markdown to sanitized DOM nodes, code blocks with their toolbars. */
    render(markdown: string): DocumentFragment;
    /** The second layer alone: HTML in, allow-listed nodes out. */
    sanitize(html: string): DocumentFragment;
}

/** `window` is the browser's, or a jsdom window in tests. */
export function createRenderer(window: WindowLike & { document: Document }): Renderer {
    const purify = DOMPurify(window);
    const markdown = new MarkdownIt({ html: false, linkify: true, breaks: false });
    // Remote images would leak that a message was read (the CSP blocks them too); links stay as text.
    markdown.disable("image");
    markdown.validateLink = isOpenableLink;
    markdown.renderer.rules.fence = (tokens, index) => {
        const token = tokens[index];
        return codeBlockHtml(
            token.content,
            token.info.trim().split(/\s+/)[0] ?? "",
            markdown.utils.escapeHtml,
        );
    };
    markdown.renderer.rules.code_block = (tokens, index) =>
        codeBlockHtml(tokens[index].content, "", markdown.utils.escapeHtml);
    const sanitize = (html: string) =>
        purify.sanitize(html, { ...sanitizeConfig, RETURN_DOM_FRAGMENT: true });
    return {
        render(text) {
            const fragment = sanitize(markdown.render(text));
            // The buttons are added after sanitizing, so the allow-list needs no buttons at all.
            for (const toolbar of fragment.querySelectorAll(".code-toolbar"))
                toolbar.append(...toolbarButtons(window.document));
            return fragment;
        },
        sanitize,
    };
}

function codeBlockHtml(
    code: string,
    language: string,
    escapeHtml: (text: string) => string,
): string {
    const known = language !== "" && hljs.getLanguage(language) !== undefined;
    const body = known
        ? hljs.highlight(code, { language, ignoreIllegals: true }).value
        : escapeHtml(code);
    const languageClass = known ? ` language-${escapeHtml(language)}` : "";
    const toolbarLabel = language ? `${escapeHtml(language)} code` : "Code";
    return (
        `<div class="code-block"><div class="code-toolbar" role="toolbar" aria-label="${toolbarLabel}">` +
        `<span class="code-language">${escapeHtml(language)}</span></div>` +
        `<pre><code class="hljs${languageClass}">${body}</code></pre></div>\n`
    );
}

function toolbarButtons(document: Document): HTMLButtonElement[] {
    return codeActions.map(({ action, icon, label, text }) => {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "code-action";
        button.dataset.action = action;
        button.title = label;
        button.setAttribute("aria-label", label);
        const iconSpan = document.createElement("span");
        iconSpan.className = `codicon codicon-${icon}`;
        iconSpan.setAttribute("aria-hidden", "true");
        const textSpan = document.createElement("span");
        textSpan.className = "code-action-text";
        textSpan.textContent = text;
        button.append(iconSpan, textSpan);
        return button;
    });
}
