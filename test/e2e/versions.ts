// The VS Code releases the end-to-end tests run on: the oldest the manifest claims (engines
// ^1.100.0) and a current one, each a code-server build installed offline (codeserver.ts).
// Every scenario runs on each, unless it needs a newer API:
//
//   forEachVSCode((vs) => {
//       describe(`e2e: foundation (VS Code ${vs.label})`, () => {
//           test("…", () => vs.withVSCode({ name: "foundation", vsix: requireVsix() }, async (vscode) => { … }));
//       });
//   });
//   forEachVSCode((vs) => describe(…), { from: "1.104" }); // needs the language model provider API
//
// OLMO_E2E_VSCODE=4.139.1 (a code-server release) runs the scenarios on that one only.
import type { CodeServerVersion } from "./codeserver.js";
import { withVSCode, type StartOptions, type VSCodeSession } from "./harness.js";

const RELEASES: ReadonlyArray<{ codeServer: CodeServerVersion; vscode: string }> = [
    { codeServer: "4.100.3", vscode: "1.100.3" },
    { codeServer: "4.139.1", vscode: "1.139.1" },
];

export interface VSCodeUnderTest {
    codeServer: CodeServerVersion;
    /** The VS Code release inside, e.g. "1.100.3". */
    vscode: string;
    /** Major.minor for test names, e.g. "1.100". */
    label: string;
    /** The harness's withVSCode on this release; screenshots get the label in their name. */
    withVSCode<T>(
        opts: Omit<StartOptions, "version"> & { name?: string },
        body: (vscode: VSCodeSession) => Promise<T>,
    ): Promise<T>;
}

export interface VersionRange {
    /** The first VS Code release the scenario needs, e.g. "1.104". */
    from?: string;
    /** The first release the scenario is not for. */
    before?: string;
}

/** Calls `body` once per release in range (and allowed by OLMO_E2E_VSCODE); `body` declares the tests. */
// `body` returns what `describe` returns: a promise node:test itself awaits.
export function forEachVSCode(
    body: (vs: VSCodeUnderTest) => unknown,
    range: VersionRange = {},
): void {
    const only = process.env.OLMO_E2E_VSCODE;
    if (only && !RELEASES.some((r) => r.codeServer === only)) {
        throw new Error(
            `OLMO_E2E_VSCODE=${only}: not one of ${RELEASES.map((r) => r.codeServer).join(", ")}`,
        );
    }
    for (const release of RELEASES) {
        if (only && release.codeServer !== only) continue;
        if (range.from && compareVersions(release.vscode, range.from) < 0) continue;
        if (range.before && compareVersions(release.vscode, range.before) >= 0) continue;
        const label = release.vscode.split(".").slice(0, 2).join(".");
        body({
            ...release,
            label,
            withVSCode: (opts, run) =>
                withVSCode(
                    {
                        ...opts,
                        name: `${opts.name ?? "e2e"}-${label}`,
                        version: release.codeServer,
                    },
                    run,
                ),
        });
    }
}

function compareVersions(a: string, b: string): number {
    const [x, y] = [a, b].map((v) => v.split(".").map(Number));
    for (let i = 0; i < Math.max(x.length, y.length); i++) {
        const d = (x[i] ?? 0) - (y[i] ?? 0);
        if (d !== 0) return d;
    }
    return 0;
}
