// Where a team server may be: https anywhere, plain http only to this machine, no credentials in
// the URL; the base the endpoints are appended to, and the host the status bar names.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { checkServerUrl } from "../../sidecar/serverUrl.js";
import { SidecarError } from "../../sidecar/errors.js";

function refusal(url: string): string {
    try {
        checkServerUrl(url);
    } catch (error) {
        assert.ok(error instanceof SidecarError);
        assert.equal(error.code, "serverUnreachable");
        return error.message;
    }
    assert.fail(`${url} was accepted`);
}

describe("unit: team server URLs", () => {
    test("https anywhere; the base drops a trailing slash and /v1", () => {
        assert.deepEqual(checkServerUrl("https://gpu.example.com:8443/v1/"), {
            base: "https://gpu.example.com:8443",
            url: "https://gpu.example.com:8443/v1",
            host: "gpu.example.com:8443",
        });
        assert.deepEqual(checkServerUrl(" https://example.org/llama/ "), {
            base: "https://example.org/llama",
            url: "https://example.org/llama",
            host: "example.org",
        });
    });

    test("plain http only to this machine", () => {
        for (const url of [
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:9",
            "http://127.1.2.3",
        ])
            assert.equal(checkServerUrl(url).base, url);
        assert.match(
            refusal("http://example.com:8080/v1"),
            /^The OLMo server at example\.com:8080 is plain http: .* Use https:\/\/example\.com:8080\/v1 \(plain http is allowed only for this machine/,
        );
        assert.match(refusal("http://10.0.0.5"), /^The OLMo server at 10\.0\.0\.5 is plain http/);
        assert.match(refusal("http://localhost.example.com"), /plain http/);
    });

    test("credentials in the URL, other schemes and non-URLs are refused", () => {
        assert.match(refusal("https://user:secret@example.com"), /carries a user name or password/);
        assert.ok(!refusal("https://user:secret@example.com").includes("secret"));
        assert.match(refusal("ftp://example.com"), /must start with https:\/\//);
        assert.match(refusal("gpu-box:8080"), /must start with https:\/\/|is not a URL/);
        assert.match(refusal("not a url"), /is not a URL/);
    });
});
