import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
    acceptRefusal,
    commonIndent,
    fitReplacement,
    nothingToAccept,
    RECENT_INSTRUCTIONS_KEPT,
    rememberInstruction,
    REWRITE_PRESETS,
    type OriginalCode,
} from "../../extension/rewriteEdit.js";

const lf = (text: string, linePrefix = ""): OriginalCode => ({ text, linePrefix, eol: "\n" });
const crlf = (text: string, linePrefix = ""): OriginalCode => ({ text, linePrefix, eol: "\r\n" });

describe("unit: rewrite edits", () => {
    describe("indentation", () => {
        const body = "    const sum = a + b;\n    return sum;\n";

        test("re-applies the selection's indentation when the model dropped it", () => {
            assert.equal(
                fitReplacement("const total = a + b;\nreturn total;", lf(body)),
                "    const total = a + b;\n    return total;\n",
            );
        });

        test("keeps the model's relative indentation under the re-applied one", () => {
            assert.equal(
                fitReplacement("if (x) {\n  y();\n}", lf(body)),
                "    if (x) {\n      y();\n    }\n",
            );
        });

        test("leaves code that kept the indentation, or indented deeper, as it is", () => {
            assert.equal(fitReplacement("    a();\n    b();", lf(body)), "    a();\n    b();\n");
            assert.equal(
                fitReplacement("      a();\n      b();", lf(body)),
                "      a();\n      b();\n",
            );
        });

        test("replaces a shallower indentation with the original's", () => {
            assert.equal(fitReplacement("  a();\n    b();", lf(body)), "    a();\n      b();\n");
        });

        test("blank lines stay blank instead of getting indentation", () => {
            assert.equal(fitReplacement("a();\n\nb();", lf(body)), "    a();\n\n    b();\n");
        });

        test("a selection that starts after the indentation: the first line gets none, the others get it back", () => {
            const original = lf("const sum = a + b;\n    return sum;", "    ");
            assert.equal(
                fitReplacement("const total = a + b;\nreturn total;", original),
                "const total = a + b;\n    return total;",
            );
            assert.equal(
                fitReplacement("const total = a + b;\n    return total;", original),
                "const total = a + b;\n    return total;",
            );
            // Indented like the whole line in the file: the first line's indentation is already there.
            assert.equal(
                fitReplacement("    const total = a + b;\n    return total;", original),
                "const total = a + b;\n    return total;",
            );
        });

        test("a selection that starts after code on an indented line: the lines below keep their depth", () => {
            const original = lf("{\n        a: 1,\n    }", "    ");
            assert.equal(fitReplacement("{\n    a: 2,\n}", original), "{\n        a: 2,\n    }");
        });

        test("a selection that starts inside the indentation keeps the rest of it on the first line", () => {
            const original = lf("  x();\n    y();\n", "  ");
            assert.equal(fitReplacement("a();\nb();", original), "  a();\n    b();\n");
        });

        test("unindented code is left alone", () => {
            assert.equal(
                fitReplacement(
                    "function f() {\n  return 1;\n}",
                    lf("function g() {\n    return 2;\n}\n"),
                ),
                "function f() {\n  return 1;\n}\n",
            );
        });
    });

    describe("tabs and spaces", () => {
        test("a tab-indented selection gets its tabs back, not spaces", () => {
            assert.equal(
                fitReplacement("a();\nb();", lf("\t\tx();\n\t\ty();\n")),
                "\t\ta();\n\t\tb();\n",
            );
        });

        test("the model's spaces in place of the original's tabs are replaced by the tabs", () => {
            assert.equal(
                fitReplacement("        a();\n            b();", lf("\t\tx();\n\t\ty();\n")),
                "\t\ta();\n\t\t    b();\n",
            );
        });

        test("code that kept the tabs is unchanged", () => {
            assert.equal(
                fitReplacement("\ta();\n\t\tb();", lf("\tx();\n\ty();")),
                "\ta();\n\t\tb();",
            );
        });

        test("commonIndent compares characters: a tab and spaces share nothing", () => {
            assert.equal(commonIndent(["\tx", "    y"]), "");
            assert.equal(commonIndent(["    x", "      y", "", "   "]), "    ");
            assert.equal(commonIndent(["", "  "]), "");
        });
    });

    describe("final newline", () => {
        test("an original that ends with a newline gets one, even when the model left it out", () => {
            assert.equal(fitReplacement("a();", lf("x();\n")), "a();\n");
        });

        test("an original without a final newline gets none, even when the model added some", () => {
            assert.equal(fitReplacement("a();\n", lf("x();")), "a();");
            assert.equal(fitReplacement("a();\n\n\n", lf("x();")), "a();");
        });

        test("an original that ends with blank lines keeps them", () => {
            assert.equal(fitReplacement("a();\n", lf("x();\n\n")), "a();\n\n");
        });
    });

    describe("CRLF documents", () => {
        test("the replacement uses the document's CRLF, whatever the model wrote", () => {
            assert.equal(
                fitReplacement("a();\nb();", crlf("  x();\r\n  y();\r\n")),
                "  a();\r\n  b();\r\n",
            );
            assert.equal(fitReplacement("a();\r\nb();\r\n", crlf("x();\r\ny();")), "a();\r\nb();");
        });

        test("an LF document gets LF even from a CRLF answer", () => {
            assert.equal(fitReplacement("a();\r\nb();\r\n", lf("x();\ny();\n")), "a();\nb();\n");
        });
    });

    describe("empty and unchanged proposals", () => {
        test("a blank proposal gives no replacement, and nothing to accept", () => {
            assert.equal(fitReplacement("", lf("x();\n")), "");
            assert.equal(fitReplacement(" \n\n", lf("    x();\n")), "");
            assert.match(nothingToAccept("", "x();\n") ?? "", /no code/);
        });

        test("a proposal that only lost the indentation and final newline is the original: nothing to accept", () => {
            const original = crlf("    x();\r\n    y();\r\n");
            const replacement = fitReplacement("x();\ny();", original);
            assert.equal(replacement, original.text);
            assert.match(nothingToAccept(replacement, original.text) ?? "", /same code/);
        });

        test("a real change is offered", () => {
            assert.equal(nothingToAccept("y();\n", "x();\n"), undefined);
        });
    });

    describe("accepting", () => {
        const ready = {
            state: "done" as const,
            replacement: "y();\n",
            originalText: "x();\n",
            fileName: "a.js",
            versionAtStart: 3,
            versionNow: 3,
        };

        test("a finished proposal on an unchanged document may be accepted", () => {
            assert.equal(acceptRefusal(ready), undefined);
        });

        test("a document edited since the request is refused, saying why", () => {
            assert.match(
                acceptRefusal({ ...ready, versionNow: 4 }) ?? "",
                /a\.js changed after the rewrite started/,
            );
            // Even while the proposal still streams: it can never apply.
            assert.match(
                acceptRefusal({ ...ready, state: "streaming", versionNow: 4 }) ?? "",
                /changed/,
            );
        });

        test("a closed document is refused", () => {
            assert.match(
                acceptRefusal({ ...ready, versionNow: undefined }) ?? "",
                /a\.js was closed/,
            );
        });

        test("a proposal still streaming is refused", () => {
            assert.match(
                acceptRefusal({ ...ready, state: "streaming" }) ?? "",
                /still being written/,
            );
        });

        test("an empty or unchanged proposal is refused", () => {
            assert.match(acceptRefusal({ ...ready, replacement: "" }) ?? "", /no code/);
            assert.match(acceptRefusal({ ...ready, replacement: "x();\n" }) ?? "", /same code/);
        });
    });

    describe("instructions", () => {
        test("the presets", () => {
            assert.deepEqual(
                REWRITE_PRESETS.map((preset) => preset.label),
                ["Simplify", "Add comments", "Fix bugs", "Add types", "Make it faster"],
            );
        });

        test("custom instructions are remembered most recent first, without duplicates, at most five", () => {
            let recent: string[] = [];
            for (const text of ["one", "two", "three", "two", "four", "five", "six"])
                recent = rememberInstruction(recent, text);
            assert.deepEqual(recent, ["six", "five", "four", "two", "three"]);
            assert.equal(recent.length, RECENT_INSTRUCTIONS_KEPT);
        });

        test("presets and blank text are not remembered; custom text is trimmed", () => {
            const recent = ["earlier"];
            assert.deepEqual(rememberInstruction(recent, REWRITE_PRESETS[0].instruction), recent);
            assert.deepEqual(rememberInstruction(recent, "Simplify"), recent);
            assert.deepEqual(rememberInstruction(recent, "   "), recent);
            assert.deepEqual(rememberInstruction(recent, "  use async/await "), [
                "use async/await",
                "earlier",
            ]);
        });
    });
});
