// The manifest's promises about workspaces: settings a workspace could use to steer the answers are
// restricted configurations, ignored by VS Code in an untrusted (restricted mode) workspace.
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";

interface Manifest {
    contributes: { configuration: { properties: Record<string, { scope?: string }> } };
    capabilities: {
        untrustedWorkspaces: {
            supported: boolean | "limited";
            restrictedConfigurations?: string[];
        };
    };
}

const manifest = JSON.parse(await readFile("package.json", "utf8")) as Manifest;

describe("unit: manifest", () => {
    test("olmo.systemPrompt is ignored in restricted mode; every restricted setting exists and a workspace can set it", () => {
        const { untrustedWorkspaces } = manifest.capabilities;
        assert.equal(untrustedWorkspaces.supported, "limited");
        assert.deepEqual(untrustedWorkspaces.restrictedConfigurations, ["olmo.systemPrompt"]);
        const properties = manifest.contributes.configuration.properties;
        for (const name of untrustedWorkspaces.restrictedConfigurations ?? [])
            assert.equal(
                properties[name]?.scope,
                "resource",
                `${name} is a workspace-settable setting`,
            );
    });
});
