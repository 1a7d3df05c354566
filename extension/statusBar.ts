// The status bar item: what runs (backend, layers on the GPU), loading progress, errors, and the
// speed of the last answer. Clicking it opens the OLMo menu.
import * as vscode from "vscode";
import type { ChatResult } from "../sidecar/protocol.js";
import type { HostState, ModelHost } from "./modelHost.js";
import { serverLabel, serverModelLines } from "./teamServer.js";

export class StatusBar implements vscode.Disposable {
    private readonly item = vscode.window.createStatusBarItem(
        "olmo.status",
        vscode.StatusBarAlignment.Right,
        100,
    );
    private lastAnswer?: ChatResult;
    private readonly subscriptions: vscode.Disposable[];

    constructor(private readonly host: ModelHost) {
        this.item.name = "OLMo Local";
        this.item.command = "olmo.statusMenu";
        this.subscriptions = [
            host.onDidChangeState(() => this.render()),
            host.onDidFinishAnswer((result) => {
                this.lastAnswer = result;
                this.render();
            }),
        ];
        this.render();
        this.item.show();
    }

    private render(): void {
        const { text, label, tooltip, error } = describe(this.host.state, this.lastAnswer);
        this.item.text = text;
        this.item.tooltip = tooltip;
        this.item.accessibilityInformation = { label, role: "button" };
        this.item.backgroundColor = error
            ? new vscode.ThemeColor("statusBarItem.errorBackground")
            : undefined;
    }

    dispose(): void {
        this.item.dispose();
        for (const s of this.subscriptions) s.dispose();
    }
}

export function describe(
    state: HostState,
    last?: ChatResult,
): { text: string; label: string; tooltip: string; error: boolean } {
    switch (state.kind) {
        case "stopped":
            return {
                text: "$(sparkle) OLMo",
                label: "OLMo Local: idle",
                tooltip: "OLMo Local: the model loads on first use.",
                error: false,
            };
        case "noModel":
            return {
                text: "$(sparkle) OLMo: no model",
                label: "OLMo Local: no model set",
                tooltip:
                    "Set olmo.modelPath to an OLMo .gguf file, or olmo.server.url to a team server.",
                error: false,
            };
        case "starting":
            return {
                text: "$(loading~spin) OLMo",
                label: "OLMo Local: starting",
                tooltip: "Starting the model process…",
                error: false,
            };
        case "settingUp":
            return {
                text: "$(loading~spin) OLMo",
                label: `OLMo Local: ${state.activity}`,
                tooltip: state.activity,
                error: false,
            };
        case "loading": {
            const percent = Math.round(state.progress * 100);
            return {
                text: `$(loading~spin) OLMo ${percent}%`,
                label: `OLMo Local: loading ${percent}%`,
                tooltip: `Loading ${state.modelPath}`,
                error: false,
            };
        }
        case "ready": {
            const m = state.model;
            const speed =
                last && last.timings.tokensPerSecond > 0
                    ? ` · ${last.timings.tokensPerSecond.toFixed(1)} tok/s`
                    : "";
            const lastLine = last
                ? `Last answer: ${last.timings.tokensPerSecond.toFixed(1)} tok/s, first token after ${Math.round(last.timings.timeToFirstTokenMs)} ms`
                : "";
            if (m.server) {
                const where = serverLabel(m.server.host);
                return {
                    text: `$(sparkle) ${where}${speed}`,
                    label: `OLMo Local: ready, ${m.server.model} on ${m.server.host}${speed}`,
                    tooltip: [where, ...serverModelLines(m, m.server), lastLine]
                        .filter(Boolean)
                        .join("\n"),
                    error: false,
                };
            }
            // On a GPU backend the layers on the GPU tell whether it is really used ("is my GPU used?").
            const offload =
                m.backend === "cpu"
                    ? "CPU"
                    : `${m.backend.toUpperCase()} ${m.gpuLayers}/${m.totalLayers}`;
            const tooltip = [
                `${m.name} (${m.quantization})`,
                `Backend: ${m.backend}${m.gpuName ? ` (${m.gpuName})` : ""}, ${m.gpuLayers} of ${m.totalLayers} layers on the GPU`,
                `Context: ${m.contextSize} tokens, ${m.threads} threads, loaded in ${(m.loadMs / 1000).toFixed(1)} s`,
                lastLine,
            ]
                .filter(Boolean)
                .join("\n");
            return {
                text: `$(sparkle) OLMo ${offload}${speed}`,
                label: `OLMo Local: ready, ${m.name} on ${offload}${m.backend === "cpu" ? "" : " layers"}${speed}`,
                tooltip,
                error: false,
            };
        }
        case "error":
            return {
                text: "$(error) OLMo",
                label: `OLMo Local: error: ${state.message}`,
                tooltip: state.message,
                error: true,
            };
        case "gaveUp":
            return {
                text: "$(error) OLMo: stopped",
                label: `OLMo Local: error: ${state.message}`,
                tooltip: `${state.message}\nClick, then Restart Model Process to start it again.`,
                error: true,
            };
    }
}
