import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
    acceptedLines,
    diffLines,
    hunks,
    layoutLines,
    placeEdit,
    proposalSegments,
    rejectedLines,
    resolveHunk,
    type Segment,
} from "../../extension/proposalHunks.js";

const ORIGINAL = ["function add(a, b) {", "    const sum = a + b;", "    return sum;", "}"];
const PROPOSED = ["function add(a, b) {", "    return a + b;", "}", "// done"];

/** Every line as "<kind initial> text", for compact expectations. */
const show = (segments: Segment[]) =>
    segments.flatMap((s) => s.lines.map((line) => `${s.kind[0]} ${line}`));

describe("unit: inline proposal hunks", () => {
    test("the diff keeps unchanged lines and puts each change's removed lines before its added ones", () => {
        const segments = diffLines(ORIGINAL, PROPOSED);
        assert.deepEqual(show(segments), [
            "s function add(a, b) {",
            "r     const sum = a + b;",
            "r     return sum;",
            "a     return a + b;",
            "s }",
            "a // done",
        ]);
        assert.deepEqual(hunks(segments), [
            { start: 1, removed: 2, added: 1 },
            { start: 5, removed: 0, added: 1 },
        ]);
        assert.deepEqual(acceptedLines(segments), PROPOSED);
        assert.deepEqual(rejectedLines(segments), ORIGINAL);
    });

    test("identical, empty and fully different inputs", () => {
        assert.deepEqual(
            show(diffLines(ORIGINAL, ORIGINAL)),
            ORIGINAL.map((l) => `s ${l}`),
        );
        assert.deepEqual(hunks(diffLines(ORIGINAL, ORIGINAL)), []);
        assert.deepEqual(show(diffLines(["a"], [])), ["r a"]);
        assert.deepEqual(show(diffLines([], ["b"])), ["a b"]);
        assert.deepEqual(show(diffLines(["a", "b"], ["x", "y"])), ["r a", "r b", "a x", "a y"]);
    });

    test("while streaming, the original lines not reached yet are pending, after the proposed ones", () => {
        const partial = ["function add(a, b) {", "    retu"];
        const segments = proposalSegments(ORIGINAL, partial, true);
        assert.deepEqual(show(segments), [
            "s function add(a, b) {",
            "a     retu",
            "p     const sum = a + b;",
            "p     return sum;",
            "p }",
        ]);
        // Nothing reached is removed yet, so rejecting the layout gives the original back.
        assert.deepEqual(rejectedLines(segments), ORIGINAL);
        assert.deepEqual(layoutLines(proposalSegments(ORIGINAL, [], true)), ORIGINAL);
        // Finished, the same text shows removed lines instead.
        assert.ok(show(proposalSegments(ORIGINAL, partial, false)).includes("r }"));
    });

    test("accepting one hunk and rejecting the other leaves exactly the accepted change", () => {
        const segments = diffLines(ORIGINAL, PROPOSED);
        const first = resolveHunk(segments, 0, true);
        assert.equal(hunks(first).length, 1);
        const both = resolveHunk(first, 0, false);
        assert.deepEqual(hunks(both), []);
        assert.deepEqual(layoutLines(both), ["function add(a, b) {", "    return a + b;", "}"]);
        const other = resolveHunk(resolveHunk(segments, 0, false), 0, true);
        assert.deepEqual(layoutLines(other), [...ORIGINAL, "// done"]);
    });

    test("an edit above the proposal moves it; below leaves it; inside names the segment", () => {
        const segments = diffLines(ORIGINAL, PROPOSED); // lines 10-15 when it starts at 10
        const at = (startLine: number, endLine: number, text: string, endCharacter = 0) =>
            placeEdit(segments, 10, { startLine, startCharacter: 0, endLine, endCharacter, text });
        assert.deepEqual(at(2, 2, "x\n"), { place: "above", lineDelta: 1 });
        assert.deepEqual(at(9, 10, ""), { place: "above", lineDelta: -1 });
        assert.deepEqual(at(10, 10, "// new\n"), { place: "above", lineDelta: 1 });
        assert.deepEqual(at(16, 16, "x"), { place: "below" });
        // Typing at the proposal's first character is inside it.
        assert.deepEqual(at(10, 10, "x"), { place: "inside", segment: 0, lineDelta: 0 });
        // Enter in the added line, and deleting that whole line.
        assert.deepEqual(at(13, 13, "\n", 5), { place: "inside", segment: 2, lineDelta: 1 });
        assert.deepEqual(at(13, 14, ""), { place: "inside", segment: 2, lineDelta: -1 });
        assert.deepEqual(at(11, 13, "", 3), { place: "across", lineDelta: -2 });
    });
});
