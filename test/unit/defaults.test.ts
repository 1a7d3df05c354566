// The defaults both ends import (sidecar/defaults.ts) against package.json's settings, which
// repeat them as JSON, and the answer reserve the engine and the LM provider share.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
    answerReserve,
    BASELINE_CONTEXT_SIZE,
    DEFAULT_CONTEXT_SIZE,
    DEFAULT_MAX_TOKENS,
    DEFAULT_TEMPERATURE,
    DEFAULT_TOP_P,
} from "../../sidecar/defaults.js";

const manifest = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"));
const settings = manifest.contributes.configuration.properties as Record<
    string,
    { default: unknown }
>;

describe("unit: defaults", () => {
    test("package.json's setting defaults are the module's values", () => {
        assert.deepEqual(
            {
                contextSize: settings["olmo.contextSize"].default,
                maxTokens: settings["olmo.maxTokens"].default,
                temperature: settings["olmo.temperature"].default,
                topP: settings["olmo.topP"].default,
            },
            {
                contextSize: DEFAULT_CONTEXT_SIZE,
                maxTokens: DEFAULT_MAX_TOKENS,
                temperature: DEFAULT_TEMPERATURE,
                topP: DEFAULT_TOP_P,
            },
        );
    });

    test("the answer reserve is the answer's limit, at most half the context", () => {
        assert.equal(answerReserve(DEFAULT_MAX_TOKENS, BASELINE_CONTEXT_SIZE), 1024);
        assert.equal(answerReserve(3000, 4096), 2048);
        assert.equal(answerReserve(100, 4096), 100);
        assert.equal(answerReserve(1024, 1001), 500, "an odd context rounds the half down");
    });
});
