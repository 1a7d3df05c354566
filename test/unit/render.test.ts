import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { JSDOM } from "jsdom";
import { createRenderer } from "../../media/render.js";
import { XSS_PAYLOADS } from "../support/xssPayloads.js";

const { window } = new JSDOM("<!DOCTYPE html><body></body>");
const renderer = createRenderer(window);

/** Renders into a container, as the webview does. */
function rendered(markdown: string): HTMLElement {
    const container = window.document.createElement("div");
    container.append(renderer.render(markdown));
    return container;
}

function html(markdown: string): string {
    return rendered(markdown).innerHTML;
}

const EXECUTABLE_TAGS = new Set([
    "script",
    "iframe",
    "frame",
    "frameset",
    "object",
    "embed",
    "applet",
    "style",
    "link",
    "meta",
    "base",
    "form",
    "input",
    "textarea",
    "select",
    "option",
    "svg",
    "math",
    "img",
    "image",
    "video",
    "audio",
    "source",
    "track",
    "template",
    "noscript",
    "xmp",
    "noembed",
    "noframes",
    "portal",
    "isindex",
    "animate",
    "set",
    "foreignobject",
    "use",
    "details",
    "dialog",
    "marquee",
]);
const URL_ATTRIBUTES = new Set([
    "src",
    "srcdoc",
    "srcset",
    "action",
    "formaction",
    "data",
    "poster",
    "background",
    "xlink:href",
    "ping",
    "lowsrc",
    "dynsrc",
    "codebase",
]);

/** Why this HTML could run something or leave the page, or undefined when it is inert. */
function dangerIn(container: HTMLElement): string | undefined {
    for (const element of container.querySelectorAll("*")) {
        const tag = element.tagName.toLowerCase();
        if (EXECUTABLE_TAGS.has(tag)) return `<${tag}> element`;
        if (tag === "button" && !element.closest(".code-toolbar"))
            return "a button outside a code toolbar";
        for (const attribute of element.attributes) {
            const name = attribute.name.toLowerCase();
            if (name.startsWith("on")) return `${name} handler on <${tag}>`;
            if (name === "style") return `style attribute on <${tag}>`;
            if (URL_ATTRIBUTES.has(name)) return `${name} attribute on <${tag}>`;
            if (name === "href" && !/^https?:\/\//i.test(attribute.value))
                return `non-http(s) link ${attribute.value}`;
            if (name === "target" || name === "http-equiv" || name === "id" || name === "name")
                return `${name} attribute on <${tag}>`;
        }
    }
    return undefined;
}

describe("unit: chat markdown rendering", () => {
    test("renders common markdown", () => {
        const output = html(
            "# Title\n\nSome *emphasis*, **strong** and `inline code`.\n\n- one\n- two\n\n1. first\n\n> quoted\n\n| a | b |\n|---|---|\n| 1 | 2 |",
        );
        for (const fragment of [
            "<h1>Title</h1>",
            "<em>emphasis</em>",
            "<strong>strong</strong>",
            "<code>inline code</code>",
            "<li>one</li>",
            "<ol>",
            "<blockquote>",
            "<table>",
            "<td>2</td>",
        ]) {
            assert.ok(output.includes(fragment), `expected ${fragment} in ${output}`);
        }
    });

    test("raw HTML in model text is shown as text, not parsed", () => {
        const container = rendered("Use <b>bold</b> and <script>alert(1)</script>");
        assert.equal(container.querySelector("b, script"), null);
        assert.match(container.textContent ?? "", /<b>bold<\/b> and <script>alert\(1\)<\/script>/);
    });

    test("a fenced block with a known language is highlighted and gets the toolbar", () => {
        const container = rendered("```typescript\nconst answer: number = 42;\n```");
        const code = container.querySelector(".code-block pre code.hljs.language-typescript");
        assert.ok(code, container.innerHTML);
        assert.equal(
            code.textContent,
            "const answer: number = 42;\n",
            "highlighting keeps the code text exact",
        );
        assert.ok(code.querySelector("span.hljs-keyword"), "keywords are highlighted");
        assert.ok(code.querySelector("span.hljs-number"), "numbers are highlighted");
        const buttons = [...container.querySelectorAll<HTMLButtonElement>(".code-toolbar button")];
        assert.deepEqual(
            buttons.map((b) => b.dataset.action),
            ["copy", "insert", "apply"],
        );
        for (const b of buttons)
            assert.ok(b.getAttribute("aria-label"), "every toolbar button has an aria-label");
        assert.equal(container.querySelector(".code-toolbar")?.getAttribute("role"), "toolbar");
        assert.equal(container.querySelector(".code-language")?.textContent, "typescript");
    });

    test("unknown languages and indented code are escaped, not highlighted", () => {
        const container = rendered(
            "```nosuchlang\nif (a < b && c > d) {}\n```\n\n    <i>indented</i>\n",
        );
        const blocks = container.querySelectorAll(".code-block code");
        assert.equal(blocks.length, 2);
        assert.equal(blocks[0].textContent, "if (a < b && c > d) {}\n");
        assert.equal(blocks[0].querySelector("span"), null);
        assert.equal(blocks[1].textContent, "<i>indented</i>\n");
        assert.equal(container.querySelector("i"), null);
    });

    test("code text survives exactly, backticks and HTML included", () => {
        const code =
            'const html = `<div class="x">${a && b}</div>`;\nconsole.log("</code></pre><script>");\n';
        const container = rendered(`\`\`\`js\n${code}\`\`\``);
        assert.equal(container.querySelector("pre code")?.textContent, code);
        assert.equal(dangerIn(container), undefined);
    });

    test("http(s) links stay links; every other scheme stays text", () => {
        const container = rendered(
            "[docs](https://example.org/a?b=1) [plain](http://example.org) https://example.com/auto [cmd](command:workbench.action.openSettings) [js](javascript:alert(1)) [file](file:///etc/passwd) [rel](./local.md)",
        );
        const hrefs = [...container.querySelectorAll("a")].map((a) => a.getAttribute("href"));
        assert.deepEqual(hrefs, [
            "https://example.org/a?b=1",
            "http://example.org",
            "https://example.com/auto",
        ]);
        assert.match(
            container.textContent ?? "",
            /\[cmd\]\(command:workbench\.action\.openSettings\)/,
        );
    });

    test("images are not loaded: the markdown stays text", () => {
        const container = rendered("![pixel](https://tracker.example/p.png)");
        assert.equal(container.querySelector("img"), null);
    });

    test(`none of the ${XSS_PAYLOADS.length} XSS payloads produces anything executable`, () => {
        assert.ok(XSS_PAYLOADS.length >= 30);
        for (const payload of XSS_PAYLOADS) {
            const danger = dangerIn(rendered(payload));
            assert.equal(
                danger,
                undefined,
                `payload ${JSON.stringify(payload)} produced ${danger}`,
            );
        }
    });

    test("nor does any prefix of a payload, rendered as it streams in", () => {
        for (const payload of XSS_PAYLOADS) {
            for (let end = 1; end <= payload.length; end++) {
                const prefix = payload.slice(0, end);
                const danger = dangerIn(rendered(prefix));
                assert.equal(
                    danger,
                    undefined,
                    `prefix ${JSON.stringify(prefix)} produced ${danger}`,
                );
            }
        }
    });

    test("the check itself recognizes executable HTML", () => {
        const container = window.document.createElement("div");
        for (const bad of [
            '<img src="x" onerror="alert(1)">',
            "<svg></svg>",
            '<a href="command:x">x</a>',
            '<p style="color:red">x</p>',
            "<button>x</button>",
        ]) {
            container.innerHTML = bad;
            assert.ok(dangerIn(container), `${bad} should be flagged`);
        }
    });

    test("the sanitizer holds on its own, even if raw HTML got past markdown", () => {
        for (const payload of XSS_PAYLOADS) {
            const container = window.document.createElement("div");
            container.append(renderer.sanitize(payload));
            const danger = dangerIn(container);
            assert.equal(danger, undefined, `raw ${JSON.stringify(payload)} kept ${danger}`);
        }
    });

    test("payloads inside links, code fences and lists stay inert too", () => {
        const wrappers = [
            (p: string) => `[link](${p})`,
            (p: string) => `\`\`\`${p}\ncode\n\`\`\``,
            (p: string) => `- item ${p}\n- [x](${p} "${p}")`,
            (p: string) => `> ${p}\n\n| ${p} | b |\n|---|---|\n| ${p} | c |`,
        ];
        for (const payload of XSS_PAYLOADS) {
            for (const wrap of wrappers) {
                const danger = dangerIn(rendered(wrap(payload)));
                assert.equal(
                    danger,
                    undefined,
                    `${JSON.stringify(wrap(payload))} produced ${danger}`,
                );
            }
        }
    });
});
