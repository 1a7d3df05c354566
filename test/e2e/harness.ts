// End-to-end harness: a real VS Code (code-server, see codeserver.ts) with a VSIX installed the
// way a user installs it, driven in Debian's Chromium through playwright-core. Every wait is on
// visible state (an element, a text, a port answering), never a fixed sleep.

import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, openSync, closeSync } from "node:fs";
import * as fs from "node:fs/promises";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import {
    chromium,
    type Browser,
    type FrameLocator,
    type Locator,
    type Page,
} from "playwright-core";
import {
    codeServerEnv,
    ensureCodeServer,
    type CodeServerInstall,
    type CodeServerVersion,
} from "./codeserver.js";

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
export const RESULTS_DIR = path.join(REPO_ROOT, "test-results");
const CHROMIUM = process.env.OLMO_CHROMIUM ?? "/usr/bin/chromium";

// Flags from shared/reference/real-vscode-offline.md: no sandbox as root, and nothing that
// reaches out to the network on its own.
const CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
];

export interface StartOptions {
    /** code-server release; defaults to $OLMO_E2E_VSCODE or 4.100.3 (VS Code 1.100.3). */
    version?: CodeServerVersion;
    /** The VSIX to install with `--install-extension`. */
    vsix: string;
    /** More VSIXs installed next to it, e.g. a test's own consumer extension. */
    alsoInstall?: string[];
    /** User settings, merged over the test defaults below. */
    settings?: Record<string, unknown>;
    /** Files to create in the workspace folder: relative path -> content. */
    workspaceFiles?: Record<string, string>;
    /** Written to `.vscode/settings.json` in the workspace when given. */
    workspaceSettings?: Record<string, unknown>;
    theme?: "dark" | "light";
    /** Keep workspace trust on (restricted mode possible); off by default. */
    workspaceTrust?: boolean;
    /** VS Code's log level (code-server's --log), e.g. "debug" to read extensions' debug lines; default info. */
    logLevel?: "trace" | "debug";
    /** Default timeout for each wait, ms; defaults to $OLMO_E2E_TIMEOUT or 30 s. */
    timeoutMs?: number;
    /** Browser viewport. */
    viewport?: { width: number; height: number };
}

/** Settings that keep a fresh profile quiet and predictable. */
function defaultSettings(theme: "dark" | "light", trust: boolean): Record<string, unknown> {
    return {
        "workbench.startupEditor": "none",
        "workbench.welcomePage.walkthroughs.openOnInstall": false,
        "workbench.tips.enabled": false,
        "workbench.enableExperiments": false,
        "workbench.colorTheme": theme === "dark" ? "Default Dark Modern" : "Default Light Modern",
        // Newer VS Code opens the chat view in the secondary side bar on first start.
        "workbench.secondarySideBar.defaultVisibility": "hidden",
        "telemetry.telemetryLevel": "off",
        "security.workspace.trust.enabled": trust,
        "update.mode": "none",
        "extensions.autoUpdate": false,
        "extensions.autoCheckUpdates": false,
        "extensions.ignoreRecommendations": true,
        "git.enabled": false,
        "git.openRepositoryInParentFolders": "never",
        "files.hotExit": "off",
        "window.restoreWindows": "none",
    };
}

function envTimeout(): number {
    const n = Number(process.env.OLMO_E2E_TIMEOUT);
    return Number.isFinite(n) && n > 0 ? n : 30_000;
}

/**
 * Every live session, so that a test process that crashes or is interrupted still kills its
 * servers: they run in their own process group, which Ctrl+C in a terminal does not reach.
 */
const live = new Set<VSCodeSession>();
const killAll = () => {
    for (const s of live) s.killServerNow();
};
process.on("exit", killAll);
for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(sig, () => {
        killAll();
        // Die of the signal as without this handler, unless someone else handles it.
        if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    });
}

/**
 * Starts code-server with the VSIX installed and a workspace open in headless Chromium, and
 * waits until the workbench is on screen.
 */
export async function startVSCode(opts: StartOptions): Promise<VSCodeSession> {
    const version =
        opts.version ?? (process.env.OLMO_E2E_VSCODE as CodeServerVersion | undefined) ?? "4.100.3";
    const timeout = opts.timeoutMs ?? envTimeout();
    const install = await ensureCodeServer(version);
    const vsix = path.resolve(opts.vsix);
    if (!existsSync(vsix)) throw new Error(`e2e: VSIX not found: ${vsix}`);

    const root = await fs.mkdtemp(path.join(os.tmpdir(), "olmo-e2e-"));
    const dirs = {
        root,
        userData: path.join(root, "user-data"),
        extensions: path.join(root, "extensions"),
        workspace: path.join(root, "workspace"),
        state: path.join(root, "state"),
    };
    for (const d of Object.values(dirs)) await fs.mkdir(d, { recursive: true });

    const trust = opts.workspaceTrust ?? false;
    const settings = { ...defaultSettings(opts.theme ?? "dark", trust), ...opts.settings };
    await writeJson(path.join(dirs.userData, "User", "settings.json"), settings);
    // code-server is a remote window: VS Code 1.139 (unlike 1.100) takes machine-scoped settings such as
    // olmo.modelPath there only from the remote's own settings (Settings > Remote), where its users set them.
    await writeJson(path.join(dirs.userData, "Machine", "settings.json"), opts.settings ?? {});
    for (const [rel, content] of Object.entries(opts.workspaceFiles ?? {})) {
        const file = path.join(dirs.workspace, rel);
        await fs.mkdir(path.dirname(file), { recursive: true });
        await fs.writeFile(file, content);
    }
    if (opts.workspaceSettings) {
        await writeJson(
            path.join(dirs.workspace, ".vscode", "settings.json"),
            opts.workspaceSettings,
        );
    }

    const session = new VSCodeSession(install, dirs, timeout);
    live.add(session);
    try {
        for (const file of [vsix, ...(opts.alsoInstall ?? [])])
            await session.installExtension(file);
        await session.startServer(trust, opts.logLevel);
        await session.openBrowser(opts.viewport ?? { width: 1400, height: 900 });
    } catch (e) {
        await session.printLogTails();
        await session.close();
        throw e;
    }
    return session;
}

/**
 * Runs `body` against a fresh session and always closes it; on failure it saves a screenshot
 * and prints the tails of the logs before rethrowing.
 */
export async function withVSCode<T>(
    opts: StartOptions & { name?: string },
    body: (vscode: VSCodeSession) => Promise<T>,
): Promise<T> {
    const vscode = await startVSCode(opts);
    try {
        return await body(vscode);
    } catch (e) {
        await vscode.screenshot(`${opts.name ?? "e2e"}-failure`).catch(() => undefined);
        await vscode.printLogTails();
        throw e;
    } finally {
        await vscode.close();
    }
}

export interface SessionDirs {
    root: string;
    userData: string;
    extensions: string;
    workspace: string;
    state: string;
}

export class VSCodeSession {
    readonly dirs: SessionDirs;
    readonly install: CodeServerInstall;
    readonly timeout: number;
    port = 0;
    private server?: ChildProcess;
    private serverExit?: Promise<void>;
    private browser?: Browser;
    private _page?: Page;

    constructor(install: CodeServerInstall, dirs: SessionDirs, timeout: number) {
        this.install = install;
        this.dirs = dirs;
        this.timeout = timeout;
    }

    get page(): Page {
        if (!this._page) throw new Error("e2e: the browser is not open");
        return this._page;
    }

    get url(): string {
        return `http://127.0.0.1:${this.port}/?folder=${encodeURIComponent(this.dirs.workspace)}`;
    }

    /** code-server's own stdout and stderr. */
    get serverLogFile(): string {
        return path.join(this.dirs.root, "server.log");
    }

    /** Browser console errors and page errors. */
    get browserLogFile(): string {
        return path.join(this.dirs.root, "browser.log");
    }

    /** VS Code's log folder: server, extension host (`exthost*`), output channels. */
    get logsDir(): string {
        return path.join(this.dirs.userData, "logs");
    }

    private env(): NodeJS.ProcessEnv {
        return codeServerEnv(this.install, this.dirs.state);
    }

    /** `--install-extension`, exactly as a user installs a VSIX. */
    async installExtension(vsix: string): Promise<void> {
        const args = [
            this.install.entry,
            "--user-data-dir",
            this.dirs.userData,
            "--extensions-dir",
            this.dirs.extensions,
            "--install-extension",
            vsix,
        ];
        const { code, output } = await collect(this.install.node, args, this.env());
        if (code !== 0 || !/successfully installed/i.test(output)) {
            throw new Error(`e2e: installing ${vsix} failed (exit ${code}):\n${output}`);
        }
    }

    async startServer(trust: boolean, logLevel?: "trace" | "debug"): Promise<void> {
        this.port = await freePort();
        const args = [
            this.install.entry,
            "--auth",
            "none",
            "--bind-addr",
            `127.0.0.1:${this.port}`,
            "--user-data-dir",
            this.dirs.userData,
            "--extensions-dir",
            this.dirs.extensions,
            "--disable-telemetry",
            "--disable-update-check",
            "--disable-getting-started-override",
            "--locale",
            "en",
            ...(trust ? [] : ["--disable-workspace-trust"]),
            ...(logLevel ? ["--log", logLevel] : []),
            this.dirs.workspace,
        ];
        const logFd = openSync(this.serverLogFile, "a");
        // Own process group, so close() can stop the server and the extension host it forks.
        const child = spawn(this.install.node, args, {
            env: this.env(),
            detached: true,
            stdio: ["ignore", logFd, logFd],
        });
        closeSync(logFd);
        this.server = child;
        let exited = false;
        this.serverExit = new Promise((resolve) =>
            child.on("exit", () => ((exited = true), resolve())),
        );
        const deadline = Date.now() + Math.max(this.timeout, 60_000);
        while (!(await httpAnswers(this.port, "/healthz"))) {
            if (exited)
                throw new Error(
                    `e2e: code-server exited before answering:\n${await tail(this.serverLogFile, 30)}`,
                );
            if (Date.now() > deadline) {
                throw new Error(
                    `e2e: code-server did not answer on port ${this.port}:\n${await tail(this.serverLogFile, 30)}`,
                );
            }
            await delay(200);
        }
    }

    async openBrowser(viewport: { width: number; height: number }): Promise<void> {
        if (!existsSync(CHROMIUM)) {
            throw new Error(
                `e2e: ${CHROMIUM} missing: apt-get install -y chromium (never npx playwright install)`,
            );
        }
        this.browser = await chromium.launch({
            executablePath: CHROMIUM,
            args: CHROMIUM_ARGS,
            headless: true,
        });
        const context = await this.browser.newContext({ viewport, locale: "en-US" });
        const page = await context.newPage();
        page.setDefaultTimeout(this.timeout);
        const browserLog = (line: string) =>
            void fs.appendFile(this.browserLogFile, `${line}\n`).catch(() => undefined);
        page.on("console", (m) => {
            if (m.type() === "error" || m.type() === "warning")
                browserLog(`[${m.type()}] ${m.text()}`);
        });
        page.on("pageerror", (e) => browserLog(`[pageerror] ${e.message}`));
        this._page = page;
        await page.goto(this.url);
        await this.waitForWorkbench();
    }

    /**
     * Another browser tab on the same code-server and workspace: a second VS Code window, with its
     * own extension host. The returned session drives that tab; close this one, not it.
     */
    async openAnotherWindow(): Promise<VSCodeSession> {
        const page = await this.page.context().newPage();
        page.setDefaultTimeout(this.timeout);
        const other = Object.create(this, { _page: { value: page } }) as VSCodeSession;
        await page.goto(this.url);
        await other.waitForWorkbench();
        return other;
    }

    /** The workbench is up: its parts are laid out and the status bar is on screen. */
    async waitForWorkbench(): Promise<void> {
        const t = Math.max(this.timeout, 60_000);
        await this.step("workbench to load", async () => {
            await this.page.locator(".monaco-workbench").waitFor({ state: "visible", timeout: t });
            await this.page.locator(".part.statusbar").waitFor({ state: "visible", timeout: t });
            await this.page
                .locator(".part.activitybar, .part.sidebar")
                .first()
                .waitFor({ state: "visible", timeout: t });
        });
    }

    /**
     * Runs a command from the command palette by its title as shown there (e.g. "View: Toggle Zen Mode")
     * and waits for the palette to close, unless the command opens a quick pick of its own.
     */
    async runCommand(title: string, opts: { opensQuickPick?: boolean } = {}): Promise<void> {
        await this.step(`run command "${title}"`, async () => {
            // Extensions' commands reach the palette only once the extension host has scanned them,
            // and an open palette does not refresh its list: reopen it until the command is there.
            const row = this.quickInputRow(title);
            const deadline = Date.now() + this.timeout;
            for (;;) {
                const input = await this.openQuickInput(["Control+Shift+P", "F1"]);
                try {
                    // A view still opening (e.g. the Output panel) can take focus and close the palette.
                    await input.fill(`>${title}`, { timeout: 3_000 });
                    await row.waitFor({ state: "visible", timeout: 3_000 });
                    break;
                } catch (e) {
                    // Say what the palette did offer: a title that differs by a word is the usual cause.
                    const offered = await this.page
                        .locator(".quick-input-widget .monaco-list-row .label-name")
                        .allTextContents();
                    await this.page.keyboard.press("Escape");
                    await this.page.locator(".quick-input-widget").waitFor({ state: "hidden" });
                    if (Date.now() > deadline) {
                        throw new Error(
                            `no palette entry titled "${title}"; it offered: ${JSON.stringify(offered.slice(0, 10))}\n${String(e)}`,
                            { cause: e },
                        );
                    }
                }
            }
            // The exact match is usually the focused first row: Enter runs it (a click can find the row
            // "not visible" while the list re-renders, as 1.100 does for Developer: Show Running Extensions).
            if (await row.evaluate((r) => r.classList.contains("focused")))
                await this.page.keyboard.press("Enter");
            else await row.click();
            // The palette closing and the command's own pick opening can come too close together to see.
            if (!opts.opensQuickPick)
                await this.page.locator(".quick-input-widget").waitFor({ state: "hidden" });
        });
    }

    /** Opens a workspace file through Quick Open (Ctrl+P) and waits for its editor tab. */
    async openFile(relPath: string): Promise<void> {
        const base = path.posix.basename(relPath);
        await this.step(`open file ${relPath}`, async () => {
            const input = await this.openQuickInput(["Control+P"]);
            await input.fill(relPath);
            const row = this.quickInputRow(base);
            await row.waitFor({ state: "visible" });
            await row.click();
            await this.page.locator(".quick-input-widget").waitFor({ state: "hidden" });
            await this.page
                .locator(".tabs-container .tab.active", { hasText: base })
                .waitFor({ state: "visible" });
        });
    }

    /**
     * Waits until the Output panel's editor has the focus it takes when it opens (a command palette
     * opened before that loses its typing to it), and shows `text` if given.
     */
    async outputShown(text?: RegExp): Promise<void> {
        const editor = this.page.locator(".part.panel .monaco-editor.focused");
        await editor.waitFor();
        if (text) await editor.locator(".view-lines").filter({ hasText: text }).waitFor();
    }

    /** A status bar entry whose text matches. */
    statusBarItem(text: RegExp | string): Locator {
        return this.page.locator(".part.statusbar .statusbar-item").filter({ hasText: text });
    }

    /** An activity bar entry (a view container) by its title, e.g. to click it open. */
    activityBarItem(title: string): Locator {
        return this.page
            .locator(`.part.activitybar .action-item a.action-label[aria-label^="${title}"]`)
            .first();
    }

    /** A notification (toast or in the notification center) whose text matches. */
    notification(text: RegExp | string): Locator {
        return this.page.locator(".notification-list-item").filter({ hasText: text });
    }

    /**
     * The content frame of a visible webview (view or panel) of the extension `publisher.name`.
     * VS Code nests it: an outer `iframe.webview` whose src names the extension, then the
     * extension's own document in the inner `iframe#active-frame`.
     */
    webview(extensionId: string): FrameLocator {
        return this.page
            .locator(`iframe.webview[src*="extensionId=${extensionId}"]`)
            .filter({ visible: true })
            .first()
            .contentFrame()
            .locator("iframe#active-frame")
            .contentFrame();
    }

    /** Saves a PNG of the page under test-results/ at the repo root; returns its path. */
    async screenshot(name: string): Promise<string> {
        await fs.mkdir(RESULTS_DIR, { recursive: true });
        const file = path.join(RESULTS_DIR, `${name.replace(/[^\w.-]+/g, "_")}.png`);
        await this.page.screenshot({ path: file });
        return file;
    }

    /** Developer: Reload Window, then waits for the new workbench. */
    async reload(): Promise<void> {
        // A flag on the old window tells the reloaded page apart from the one being torn down.
        await this.page.evaluate(() => {
            (window as unknown as Record<string, unknown>).__e2eBeforeReload = true;
        });
        await this.runCommand("Developer: Reload Window");
        await this.page.waitForFunction(
            () => !(window as unknown as Record<string, unknown>).__e2eBeforeReload,
            undefined,
            { timeout: Math.max(this.timeout, 60_000) },
        );
        await this.waitForWorkbench();
    }

    /**
     * Changes user settings while VS Code runs, as editing settings.json does: merged into the user
     * and the remote machine settings (where 1.139 reads machine-scoped ones, see startVSCode).
     * VS Code picks the change up from its file watcher; wait for its visible effect.
     */
    async updateSettings(values: Record<string, unknown>): Promise<void> {
        for (const scope of ["User", "Machine"]) {
            const file = path.join(this.dirs.userData, scope, "settings.json");
            const current = JSON.parse(await fs.readFile(file, "utf8").catch(() => "{}")) as Record<
                string,
                unknown
            >;
            await writeJson(file, { ...current, ...values });
        }
    }

    /** code-server's stdout/stderr so far. */
    async serverLog(): Promise<string> {
        return fs.readFile(this.serverLogFile, "utf8").catch(() => "");
    }

    /** All files under VS Code's log folder (server, extension host, output channels). */
    async logFiles(): Promise<string[]> {
        return listFiles(this.logsDir);
    }

    /**
     * Text of the extension host's log files whose path matches, e.g. `/OLMo/` for an output
     * channel (`exthost1/output_logging_*\/N-OLMo Local.log`, or `exthost1/<ext id>/*.log` for a
     * LogOutputChannel), or `/remoteexthost\.log$/` for the extension host itself.
     */
    async extensionLog(match: RegExp): Promise<string> {
        const files = (await this.logFiles()).filter((f) => /exthost/.test(f) && match.test(f));
        const parts = await Promise.all(
            files.map(async (f) => `=== ${f}\n${await fs.readFile(f, "utf8")}`),
        );
        return parts.join("\n");
    }

    /**
     * Waits until the extension host's logs matching `file` contain `text`, and returns them.
     * Log writes are flushed asynchronously, so this polls the files (a state, not a sleep).
     */
    async waitForExtensionLog(
        file: RegExp,
        text: RegExp | string,
        timeoutMs = this.timeout,
    ): Promise<string> {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
            const log = await this.extensionLog(file);
            if (typeof text === "string" ? log.includes(text) : text.test(log)) return log;
            if (Date.now() > deadline) {
                const names = (await this.logFiles())
                    .map((f) => path.relative(this.logsDir, f))
                    .join("\n  ");
                throw new Error(
                    `e2e: no ${String(text)} in logs matching ${String(file)} after ${timeoutMs} ms; got:\n${log.slice(-2000)}\nlog files:\n  ${names}`,
                );
            }
            await delay(250);
        }
    }

    /**
     * Waits until the extension host has started activating `publisher.name` (its
     * remoteexthost.log names each activation); the extension's own UI is the better wait when
     * there is one.
     */
    async waitForActivation(
        extensionId: string,
        timeoutMs = Math.max(this.timeout, 60_000),
    ): Promise<void> {
        await this.waitForExtensionLog(
            /remoteexthost\.log$/,
            `_doActivateExtension ${extensionId}`,
            timeoutMs,
        );
    }

    /** Prints the last lines of every log to stderr: for a failed test. */
    async printLogTails(lines = 25): Promise<void> {
        const files = [this.serverLogFile, this.browserLogFile, ...(await this.logFiles())];
        const out: string[] = [`--- e2e logs (session dir ${this.dirs.root}) ---`];
        for (const f of files) {
            const text = await tail(f, lines);
            if (text.trim()) out.push(`=== ${path.relative(this.dirs.root, f)}\n${text}`);
        }
        // Notifications often say why a step had no effect (e.g. "Open an editor to insert the code into.").
        const notifications = this._page
            ? await this._page
                  .locator(".notification-list-item")
                  .allInnerTexts()
                  .catch(() => [])
            : [];
        if (notifications.length) out.push(`=== notifications\n${notifications.join("\n")}`);
        process.stderr.write(`${out.join("\n")}\n`);
    }

    /** Closes the browser, stops the server's process group, removes the temp dirs. */
    async close(): Promise<void> {
        await this.browser?.close().catch(() => undefined);
        this.browser = undefined;
        if (this.server?.pid && this.server.exitCode === null && this.server.signalCode === null) {
            signalGroup(this.server.pid, "SIGTERM");
            // An unref'd timer: a pending one would hold the test process open after the test.
            const stopped = await Promise.race([
                this.serverExit?.then(() => true),
                new Promise<boolean>((r) => setTimeout(() => r(false), 10_000).unref()),
            ]);
            if (!stopped) signalGroup(this.server.pid, "SIGKILL");
        }
        // The extension host may outlive the server for a moment; take the whole group down.
        if (this.server?.pid) signalGroup(this.server.pid, "SIGKILL");
        live.delete(this);
        if (process.env.OLMO_KEEP_E2E) {
            process.stderr.write(`[e2e] kept ${this.dirs.root} (OLMO_KEEP_E2E)\n`);
        } else {
            await fs.rm(this.dirs.root, { recursive: true, force: true });
        }
    }

    /** For the process exit hook: synchronous. */
    killServerNow(): void {
        if (this.server?.pid) signalGroup(this.server.pid, "SIGKILL");
    }

    /** Opens the quick input with the first key that works (focus may be inside a webview). */
    async openQuickInput(keys: string[]): Promise<Locator> {
        const input = this.page.locator(".quick-input-widget .quick-input-box input");
        for (const [i, key] of keys.entries()) {
            await this.page.keyboard.press(key);
            const last = i === keys.length - 1;
            try {
                await input.waitFor({ state: "visible", timeout: last ? this.timeout : 3_000 });
                return input;
            } catch (e) {
                if (last) throw e;
            }
        }
        throw new Error("unreachable");
    }

    /** A row of the open quick pick whose label is exactly `label`. */
    private quickInputRow(label: string): Locator {
        const exact = new RegExp(`^\\s*${escapeRegExp(label)}\\s*$`);
        return this.page
            .locator(".quick-input-widget .monaco-list-row")
            .filter({ has: this.page.locator(".label-name").filter({ hasText: exact }) })
            .first();
    }

    /** Runs an action and, if it fails, says which one in the error. */
    private async step(what: string, action: () => Promise<void>): Promise<void> {
        try {
            await action();
        } catch (e) {
            const err = e instanceof Error ? e : new Error(String(e));
            err.message = `e2e: waiting for ${what} failed (VS Code at ${this.url}):\n${err.message}`;
            throw err;
        }
    }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
    try {
        process.kill(-pid, signal);
    } catch {
        // Already gone.
    }
}

async function writeJson(file: string, value: unknown): Promise<void> {
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, `${JSON.stringify(value, null, 2)}\n`);
}

async function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.unref();
        srv.on("error", reject);
        srv.listen(0, "127.0.0.1", () => {
            const addr = srv.address();
            const port = typeof addr === "object" && addr ? addr.port : 0;
            srv.close(() => resolve(port));
        });
    });
}

async function httpAnswers(port: number, pathname: string): Promise<boolean> {
    try {
        const res = await fetch(`http://127.0.0.1:${port}${pathname}`, {
            signal: AbortSignal.timeout(2_000),
        });
        await res.body?.cancel();
        return res.status < 500;
    } catch {
        return false;
    }
}

function collect(
    cmd: string,
    args: string[],
    env: NodeJS.ProcessEnv,
): Promise<{ code: number; output: string }> {
    return new Promise((resolve, reject) => {
        const child = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
        let output = "";
        child.stdout.on("data", (d: Buffer) => (output += d.toString()));
        child.stderr.on("data", (d: Buffer) => (output += d.toString()));
        child.on("error", reject);
        child.on("close", (code) => resolve({ code: code ?? -1, output }));
    });
}

async function listFiles(dir: string): Promise<string[]> {
    const entries = await fs.readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
    return entries
        .filter((e) => e.isFile())
        .map((e) => path.join(e.parentPath, e.name))
        .sort();
}

async function tail(file: string, lines: number): Promise<string> {
    const text = await fs.readFile(file, "utf8").catch(() => "");
    return text
        .split("\n")
        .slice(-lines - 1)
        .join("\n");
}

function escapeRegExp(s: string): string {
    return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
