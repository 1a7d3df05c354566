// Where a team server is, checked before anything is sent to it: https, or plain http only to this
// machine (an API key and the code in prompts must not cross a network in clear text).
import { SidecarError } from "./errors.js";
import { isLoopbackHost } from "./protocol.js";

export interface ServerEndpoint {
    /** The URL without a trailing slash or `/v1`: endpoints are appended to it. */
    base: string;
    /** The URL as the user gave it, for messages and the model info. */
    url: string;
    /** Host, with the port when not the scheme's default: "OLMo on <host>". */
    host: string;
}

export function checkServerUrl(url: string): ServerEndpoint {
    let parsed: URL;
    try {
        parsed = new URL(url.trim());
    } catch {
        throw new SidecarError(
            "serverUnreachable",
            `The OLMo server URL ${JSON.stringify(url)} is not a URL; give one such as https://gpu-box.example.com:8080.`,
        );
    }
    if (parsed.username !== "" || parsed.password !== "")
        throw new SidecarError(
            "serverUnreachable",
            `The OLMo server URL for ${parsed.host} carries a user name or password; give the API key as the key instead, never in the URL.`,
        );
    if (parsed.protocol === "http:" && !isLoopbackHost(parsed.hostname))
        throw new SidecarError(
            "serverUnreachable",
            `The OLMo server at ${parsed.host} is plain http: prompts, answers and the API key would cross the network unencrypted. ` +
                `Use https://${parsed.host}${parsed.pathname === "/" ? "" : parsed.pathname} (plain http is allowed only for this machine: 127.0.0.1, localhost, [::1]).`,
        );
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:")
        throw new SidecarError(
            "serverUnreachable",
            `The OLMo server URL must start with https:// (got ${parsed.protocol}//${parsed.host}).`,
        );
    const path = parsed.pathname.replace(/\/+$/, "").replace(/\/v1$/, "");
    return {
        base: `${parsed.protocol}//${parsed.host}${path}`,
        url: `${parsed.protocol}//${parsed.host}${parsed.pathname.replace(/\/+$/, "")}`,
        host: parsed.host,
    };
}
