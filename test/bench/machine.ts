// What the figures were measured on, and the memory of a process as Linux counts it.
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import os from "node:os";
import { join } from "node:path";
import type { Llama } from "node-llama-cpp";
import { REPO_ROOT } from "../support/models.js";

export interface MachineInfo {
    cpuModel: string;
    /** Logical CPUs the kernel lists. */
    cores: number;
    /** Cores llama.cpp counts as doing math. */
    cpuMathCores: number;
    ramBytes: number;
    node: string;
    nodeLlamaCpp: string;
    /** "localBuild" (compiled here) or "prebuilt". */
    llamaBinary: string;
    backend: string;
    gpuNames: string[];
    /** 1, 5 and 15 minute load averages when the run started: other work on the machine skews timings. */
    loadAverageAtStart: number[];
}

export async function machineInfo(llama: Llama): Promise<MachineInfo> {
    const cpuinfo = await readFile("/proc/cpuinfo", "utf8").catch(() => "");
    // Its exports leave out package.json: read it by path, as build.mjs does.
    const packageJson = JSON.parse(
        await readFile(join(REPO_ROOT, "node_modules", "node-llama-cpp", "package.json"), "utf8"),
    ) as { version: string };
    return {
        cpuModel:
            /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ??
            os.cpus()[0]?.model ??
            "unknown",
        cores: os.cpus().length,
        cpuMathCores: llama.cpuMathCores,
        ramBytes: os.totalmem(),
        node: process.version,
        nodeLlamaCpp: packageJson.version,
        llamaBinary: llama.buildType,
        backend: llama.gpu === false ? "cpu" : llama.gpu,
        gpuNames: llama.gpu === false ? [] : await llama.getGpuDeviceNames(),
        loadAverageAtStart: os.loadavg(),
    };
}

export interface ProcessMemory {
    /** VmRSS: everything resident. */
    rssBytes: number;
    /** RssAnon: heap, KV cache and compute buffers. */
    anonBytes: number;
    /** RssFile: mapped files, mostly the model (mmap) and the program's binaries. */
    fileBytes: number;
}

export async function processMemory(pid: number | "self"): Promise<ProcessMemory> {
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    const kib = (field: string): number => {
        const value = new RegExp(`^${field}:\\s*(\\d+) kB$`, "m").exec(status)?.[1];
        if (value === undefined) throw new Error(`/proc/${pid}/status has no ${field}`);
        return Number(value) * 1024;
    };
    return { rssBytes: kib("VmRSS"), anonBytes: kib("RssAnon"), fileBytes: kib("RssFile") };
}

export function memoryGrowth(after: ProcessMemory, before: ProcessMemory): ProcessMemory {
    return {
        rssBytes: after.rssBytes - before.rssBytes,
        anonBytes: after.anonBytes - before.anonBytes,
        fileBytes: after.fileBytes - before.fileBytes,
    };
}

/**
 * User + system CPU time of a process so far, all its threads together. Synchronous, so that it
 * can be read inside a streaming callback at the moment the first token arrives.
 */
export function processCpuMs(pid: number | "self"): number {
    if (pid === "self") {
        const { user, system } = process.cpuUsage();
        return (user + system) / 1000;
    }
    // Fields 14 and 15 of /proc/<pid>/stat, in clock ticks (100 per second on Linux); the command
    // name in field 2 may hold spaces, so count from the closing parenthesis.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * 10;
}
