import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { DeltaBatcher } from "../../sidecar/deltaBatcher.js";

describe("unit: streaming delta batcher", () => {
    test("sends the first delta at once and coalesces the ones inside the interval", (t) => {
        t.mock.timers.enable({ apis: ["setTimeout"] });
        let now = 0;
        const sent: string[] = [];
        const batcher = new DeltaBatcher(
            (d) => sent.push(d.replace ? `[replace]${d.text}` : d.text),
            16,
            () => now,
        );
        batcher.push({ text: "Hel" });
        assert.deepEqual(sent, ["Hel"]);
        now = 5;
        batcher.push({ text: "lo" });
        now = 9;
        batcher.push({ text: ", wor" });
        assert.deepEqual(sent, ["Hel"], "inside the interval nothing more is sent");
        now = 16;
        t.mock.timers.tick(11);
        assert.deepEqual(sent, ["Hel", "lo, wor"]);
        now = 40;
        batcher.push({ text: "ld" });
        assert.deepEqual(
            sent,
            ["Hel", "lo, wor", "ld"],
            "after the interval a delta goes out at once",
        );
    });

    test("flush sends what is pending and nothing twice; empty text is ignored", (t) => {
        t.mock.timers.enable({ apis: ["setTimeout"] });
        let now = 0;
        const sent: string[] = [];
        const batcher = new DeltaBatcher(
            (d) => sent.push(d.replace ? `[replace]${d.text}` : d.text),
            16,
            () => now,
        );
        batcher.push({ text: "a" });
        batcher.push({ text: "" });
        now = 1;
        batcher.push({ text: "b" });
        batcher.flush();
        batcher.flush();
        t.mock.timers.tick(100);
        assert.deepEqual(sent, ["a", "b"]);
        assert.equal(sent.join(""), "ab");
    });

    test("a replace drops what is pending and is sent as a replace", (t) => {
        t.mock.timers.enable({ apis: ["setTimeout"] });
        let now = 0;
        const sent: string[] = [];
        const batcher = new DeltaBatcher(
            (d) => sent.push(d.replace ? `[replace]${d.text}` : d.text),
            16,
            () => now,
        );
        batcher.push({ text: "x" });
        now = 1;
        batcher.push({ text: "pending" });
        batcher.push({ text: "fresh", replace: true });
        batcher.push({ text: "+more" });
        t.mock.timers.tick(20);
        assert.deepEqual(sent, ["x", "[replace]fresh+more"]);
    });
});
