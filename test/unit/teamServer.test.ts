// The team server's pure parts: which URLs are accepted (https off this machine), where the API key
// is kept, the status bar's words and model info lines, the way out offered for each failure, and
// the manifest's scopes for the server settings.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import {
    apiKeySecretName,
    checkServerUrl,
    serverLabel,
    serverModelLines,
} from "../../extension/teamServer.js";
import { serverErrorAction } from "../../media/protocol.js";
import { isLoopbackHost, type ModelInfo, type ServerModelInfo } from "../../sidecar/protocol.js";

function refused(text: string): string {
    const checked = checkServerUrl(text);
    assert.ok("error" in checked, `${text} is refused`);
    return checked.error;
}

describe("unit: team server URL", () => {
    test("https anywhere, http on this machine; the URL loses its trailing slash", () => {
        assert.deepEqual(checkServerUrl(" https://gpu-box.example.com:8443/ "), {
            url: "https://gpu-box.example.com:8443",
            host: "gpu-box.example.com:8443",
        });
        assert.deepEqual(checkServerUrl("https://llm.example.com/olmo/"), {
            url: "https://llm.example.com/olmo",
            host: "llm.example.com",
        });
        for (const [text, host] of [
            ["http://127.0.0.1:8080", "127.0.0.1:8080"],
            ["http://localhost:11434/", "localhost:11434"],
            ["http://[::1]:8000", "[::1]:8000"],
            ["http://127.1.2.3:9000", "127.1.2.3:9000"],
        ])
            assert.deepEqual(checkServerUrl(text), { url: text.replace(/\/$/, ""), host }, text);
    });

    test("plain http to another machine is refused, suggesting https and saying why", () => {
        const error = refused("http://gpu-box.lan:8080/v1");
        assert.match(
            error,
            /gpu-box\.lan:8080 is another machine: use https:\/\/gpu-box\.lan:8080\/v1/,
        );
        assert.match(error, /unencrypted/);
        for (const text of ["http://10.0.0.5:8080", "http://192.168.1.2", "http://[::2]:80"])
            assert.match(refused(text), /is another machine/, text);
        // Looks like loopback, is not.
        assert.match(refused("http://127.0.0.1.evil.example"), /is another machine/);
    });

    test("not URLs, other schemes, credentials, queries: refused with the reason", () => {
        assert.match(refused(""), /Enter the server's URL/);
        assert.match(refused("gpu-box:8080 please"), /is not a URL/);
        assert.match(refused("ftp://gpu-box.example.com"), /is not an http\(s\) URL/);
        assert.match(refused("https://me:secret@gpu-box.example.com"), /Set Team Server API Key/);
        assert.match(refused("https://gpu-box.example.com/?key=secret"), /no query or fragment/);
    });

    test("loopback names", () => {
        for (const host of ["localhost", "127.0.0.1", "127.255.0.9", "[::1]"])
            assert.equal(isLoopbackHost(host), true, host);
        for (const host of ["localhost.example.com", "128.0.0.1", "[::2]", "0.0.0.0"])
            assert.equal(isLoopbackHost(host), false, host);
    });

    test("an API key is kept per origin: another server never gets it", () => {
        assert.equal(
            apiKeySecretName("https://gpu-box.example.com:8443/olmo"),
            "olmo.server.apiKey:https://gpu-box.example.com:8443",
        );
        assert.notEqual(
            apiKeySecretName("https://gpu-box.example.com"),
            apiKeySecretName("https://other.example.com"),
        );
        assert.notEqual(
            apiKeySecretName("http://127.0.0.1:8080"),
            apiKeySecretName("http://127.0.0.1:8081"),
        );
    });
});

describe("unit: team server words", () => {
    const server: ServerModelInfo = {
        url: "http://127.0.0.1:8080",
        host: "127.0.0.1:8080",
        model: "olmo-2-1124-13B-instruct-Q4_K_M.gguf",
        kind: "llama-server",
    };
    const model: ModelInfo = {
        path: server.url,
        name: server.model,
        architecture: "olmo2",
        quantization: "Q4_K_M",
        fileSizeBytes: 8 * 2 ** 30,
        contextSize: 2048,
        trainContextSize: 4096,
        sequences: 4,
        backend: "server",
        gpuLayers: 0,
        totalLayers: 0,
        threads: 0,
        loadMs: 120,
        server,
    };

    test("the status bar names the host", () => {
        assert.equal(serverLabel("127.0.0.1:8080"), "OLMo on 127.0.0.1:8080");
    });

    test("model info: the server's model, URL and kind, context and slots", () => {
        assert.deepEqual(serverModelLines(model, server), [
            "Model: olmo-2-1124-13B-instruct-Q4_K_M.gguf (Q4_K_M, 8192 MiB)",
            "Server: http://127.0.0.1:8080 (llama-server)",
            "Context: 2048 tokens (the model was trained for 4096), 4 parallel slots",
            "Reached in 0.12 s",
        ]);
    });

    test("model info of a server that says less (vLLM, Ollama): no unknowns shown", () => {
        const openai = {
            ...server,
            kind: "openai" as const,
            model: "allenai/OLMo-2-1124-7B-Instruct",
        };
        const lines = serverModelLines(
            {
                ...model,
                quantization: "unknown",
                fileSizeBytes: 0,
                trainContextSize: 4096,
                contextSize: 4096,
                sequences: 1,
                server: openai,
            },
            openai,
        );
        assert.deepEqual(lines.slice(0, 3), [
            "Model: allenai/OLMo-2-1124-7B-Instruct",
            "Server: http://127.0.0.1:8080 (an OpenAI-compatible server)",
            "Context: 4096 tokens, 1 parallel slot",
        ]);
    });

    test("each failure's way out: a key after a 401, the settings when nothing is found", () => {
        assert.equal(serverErrorAction("serverUnauthorized"), "setServerApiKey");
        for (const code of ["serverUnreachable", "serverModelNotFound", "invalidServerUrl"])
            assert.equal(serverErrorAction(code), "openServerSettings", code);
        for (const code of ["serverOverloaded", "contextOverflow", "noModel", undefined])
            assert.equal(serverErrorAction(code), undefined, String(code));
    });
});

describe("unit: manifest of the team server", () => {
    test("olmo.server.url and olmo.server.model are machine-scoped; the key is no setting", async () => {
        const manifest = JSON.parse(await readFile("package.json", "utf8")) as {
            contributes: {
                configuration: { properties: Record<string, { scope?: string }> };
                commands: Array<{ command: string }>;
            };
        };
        const properties = manifest.contributes.configuration.properties;
        assert.equal(properties["olmo.server.url"]?.scope, "machine");
        assert.equal(properties["olmo.server.model"]?.scope, "machine");
        assert.deepEqual(
            Object.keys(properties).filter((name) => /key|secret|password/i.test(name)),
            [],
            "no setting holds a key",
        );
        const commands = manifest.contributes.commands.map((c) => c.command);
        for (const id of ["olmo.useTeamServer", "olmo.setServerApiKey", "olmo.clearServerApiKey"])
            assert.ok(commands.includes(id), id);
    });
});
