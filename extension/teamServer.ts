// A team server (olmo.server.url): checking the URL the user gives, the name the API key is kept
// under, and the words the status bar and messages use. No `vscode` import, so unit tests run it.
import { isLoopbackHost, type ModelInfo, type ServerModelInfo } from "../sidecar/protocol.js";

/** A server URL as the extension uses it: no trailing slash; `host` is host[:port] for labels. */
export interface CheckedServerUrl {
    url: string;
    host: string;
}

const EXAMPLE = "https://gpu-box.example.com:8080";

/**
 * Whether `text` can name a team server, and why not. https is required for any host but this
 * machine: the conversation and the API key cross the network.
 */
export function checkServerUrl(text: string): CheckedServerUrl | { error: string } {
    const trimmed = text.trim();
    if (!trimmed) return { error: `Enter the server's URL, for example ${EXAMPLE}.` };
    let url: URL;
    try {
        // "host:port" alone would parse, with "host" as the scheme.
        if (!/^[a-z][\w+.-]*:\/\//i.test(trimmed)) throw new TypeError("no scheme");
        url = new URL(trimmed);
    } catch {
        return { error: `"${trimmed}" is not a URL: write it as ${EXAMPLE}.` };
    }
    if (url.protocol !== "https:" && url.protocol !== "http:")
        return { error: `"${trimmed}" is not an http(s) URL: write it as ${EXAMPLE}.` };
    if (url.username || url.password)
        return {
            error:
                "Put no credentials in the server URL: run OLMo: Set Team Server API Key instead " +
                "(the key is kept in VS Code's secret storage).",
        };
    if (url.search || url.hash)
        return {
            error: `The server URL takes no query or fragment: ${url.origin}${url.pathname}.`,
        };
    if (url.protocol === "http:" && !isLoopbackHost(url.hostname))
        return {
            error:
                `${url.host} is another machine: use https://${url.host}${trimPath(url.pathname)} ` +
                "(over http the conversation and the API key would cross the network unencrypted). " +
                "Plain http is accepted only for this machine (localhost, 127.0.0.1, [::1]).",
        };
    return { url: `${url.origin}${trimPath(url.pathname)}`, host: url.host };
}

function trimPath(pathname: string): string {
    return pathname.replace(/\/+$/, "");
}

/**
 * The SecretStorage entry of a server's API key: one per origin, so a key typed for one server is
 * never sent to another the setting is later changed to.
 */
export function apiKeySecretName(url: string): string {
    return `${API_KEY_SECRET_PREFIX}${new URL(url).origin}`;
}

export const API_KEY_SECRET_PREFIX = "olmo.server.apiKey:";

/** The status bar's words for a model on a server: "OLMo on host:port". */
export function serverLabel(host: string): string {
    return `OLMo on ${host}`;
}

const SERVER_KINDS: Record<ServerModelInfo["kind"], string> = {
    "llama-server": "llama-server",
    openai: "an OpenAI-compatible server",
};

/** The model info of a model on a server, a line per fact (the status bar's tooltip, Show Model Info). */
export function serverModelLines(model: ModelInfo, server: ServerModelInfo): string[] {
    const file = [
        model.quantization !== "unknown" ? model.quantization : "",
        model.fileSizeBytes > 0 ? `${(model.fileSizeBytes / 2 ** 20).toFixed(0)} MiB` : "",
    ].filter(Boolean);
    const trained =
        model.trainContextSize > model.contextSize
            ? ` (the model was trained for ${model.trainContextSize})`
            : "";
    const slots = `${model.sequences} parallel ${model.sequences === 1 ? "slot" : "slots"}`;
    return [
        `Model: ${server.model}${file.length ? ` (${file.join(", ")})` : ""}`,
        `Server: ${server.url} (${SERVER_KINDS[server.kind]})`,
        `Context: ${model.contextSize} tokens${trained}, ${slots}`,
        `Reached in ${(model.loadMs / 1000).toFixed(2)} s`,
    ];
}
