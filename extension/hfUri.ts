// `hf:owner/repo/file.gguf` model URIs (the olmo.modelUri setting). No `vscode` import, so unit
// tests run it directly. The sidecar checks the same rules again before it downloads.
import { isHubRepoName, isPlainGgufName } from "../sidecar/protocol.js";

export interface HfModel {
    repo: string;
    file: string;
}

/** The parts of `hf:owner/repo/file.gguf`, or why it is not such a URI. */
export function parseHfUri(uri: string): HfModel | { error: string } {
    const match = /^hf:([^/]+\/[^/]+)\/(.+)$/.exec(uri.trim());
    if (!match) return { error: `"${uri}" is not an hf:owner/repo/file.gguf URI.` };
    const [, repo, file] = match;
    if (!isHubRepoName(repo))
        return { error: `"${repo}" is not a Hugging Face repository name (owner/name).` };
    if (!isPlainGgufName(file))
        return {
            error: `"${file}" is not a plain .gguf file name (no folders, ".." or backslashes).`,
        };
    return { repo, file };
}
