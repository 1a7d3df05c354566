import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseHfUri } from "../../extension/hfUri.js";

describe("unit: hf: model URIs", () => {
    test("the official model's URI gives its repository and file", () => {
        assert.deepEqual(
            parseHfUri(
                "hf:allenai/OLMo-2-1124-13B-Instruct-GGUF/olmo-2-1124-13B-instruct-Q4_K_M.gguf",
            ),
            {
                repo: "allenai/OLMo-2-1124-13B-Instruct-GGUF",
                file: "olmo-2-1124-13B-instruct-Q4_K_M.gguf",
            },
        );
    });

    test("a file name that is not a plain .gguf name is refused, saying so", () => {
        for (const file of [
            "../evil.gguf",
            "..\\evil.gguf",
            "sub/../../evil.gguf",
            "sub/model.gguf",
            "model.bin",
            ".gguf",
            "a..gguf",
        ]) {
            const parsed = parseHfUri(`hf:owner/repo/${file}`);
            assert.ok("error" in parsed, file);
            assert.match(parsed.error, /is not a plain \.gguf file name/, file);
        }
    });

    test("a repository that is not owner/name, or no hf: URI at all, is refused", () => {
        const dots = parseHfUri("hf:../repo/model.gguf");
        assert.ok("error" in dots);
        assert.match(dots.error, /"\.\.\/repo" is not a Hugging Face repository name/);
        const plain = parseHfUri("https://huggingface.co/owner/repo/model.gguf");
        assert.ok("error" in plain);
        assert.match(plain.error, /is not an hf:owner\/repo\/file\.gguf URI/);
    });
});
