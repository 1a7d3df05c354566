#!/usr/bin/env bash
# One-off GPU run of the benchmark (`npm run bench`) on a machine with an NVIDIA H100 and no internet:
#   1. builds node-llama-cpp's CUDA binary from the llama.cpp source node-llama-cpp ships
#      (node_modules/node-llama-cpp/llama/gitRelease.bundle: cloned locally, nothing downloaded),
#   2. generates a random-weight OLMo-2 model of the 13B shape, Q4_0 (7.7 GB, into .cache/models/),
#   3. runs the benchmark with --shape 13b --gpu cuda (both sides on the GPU),
#   4. prints decode tokens/s against the memory-bandwidth ceiling, 3.35 TB/s ÷ model bytes
#      (H100 SXM; an H100 PCIe has 2.0 TB/s: its ceiling is 60% of that).
#
# Needs, already on the machine: this repository with `npm ci` done (node_modules, the CPU prebuilt
# included), Node 20, the NVIDIA driver (nvidia-smi), the CUDA toolkit (nvcc), cmake, git and a C++
# compiler, and about 10 GB of free disk. Expect about 10 minutes for the build, 2 for the model and
# 3 for the benchmark. Each step is skipped when its result is already there, so a run cut short can
# be started again.
#
# Usage: test/bench/gpu.sh [more bench options, e.g. --rounds 3]
# Output: the benchmark's table on stdout, bench-results/bench-h100.json, and the ceiling lines.
set -euo pipefail
cd "$(dirname "$0")/../.."

step() { echo; echo "== $* ($(date +%T))"; }
die() { echo "gpu.sh: $*" >&2; exit 1; }

step "checks"
# The CUDA toolkit is often installed without being put on PATH.
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH="/usr/local/cuda/bin:$PATH"; fi
for tool in nvidia-smi nvcc cmake git node; do
    command -v "$tool" >/dev/null || die "$tool is not installed or not on PATH"
done
[ -f node_modules/node-llama-cpp/dist/cli/cli.js ] || die "node_modules/node-llama-cpp is missing: run npm ci first"
[ -f node_modules/node-llama-cpp/llama/gitRelease.bundle ] || die "node-llama-cpp's llama.cpp source bundle is missing"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
nvcc --version | tail -n 1
node --version

step "CUDA binary of node-llama-cpp"
LOCAL_BUILDS=node_modules/node-llama-cpp/llama/localBuilds
# What node-llama-cpp itself checks before it uses a local build.
if compgen -G "$LOCAL_BUILDS/*cuda*/buildDone.status" >/dev/null && compgen -G "$LOCAL_BUILDS/*cuda*/Release/llama-addon.node" >/dev/null; then
    echo "already built: $(compgen -G "$LOCAL_BUILDS/*cuda*")"
else
    # `source download` clones the shipped bundle when its release is the built-in one (no network);
    # --skipBuild leaves the compiling to `source build`.
    npx --no node-llama-cpp source download --skipBuild --noUsageExample
    npx --no node-llama-cpp source build --gpu cuda --noUsageExample
    compgen -G "$LOCAL_BUILDS/*cuda*/buildDone.status" >/dev/null || die "the CUDA build did not finish in $LOCAL_BUILDS"
fi

step "13B-shape model"
# Cached under .cache/models/ under the same name the benchmark looks for.
node --import tsx test/support/make-model.ts --shape 13b

step "benchmark"
node build.mjs
# --sweep-threads none: CPU threads barely matter with every layer on the GPU.
node --import tsx test/bench/bench.ts --shape 13b --gpu cuda --prompt-tokens 512 --sweep-threads none --out bench-results/bench-h100.json "$@"

step "against the memory-bandwidth ceiling"
node -e '
const result = JSON.parse(require("fs").readFileSync("bench-results/bench-h100.json", "utf8"));
const bandwidth = 3.35e12; // bytes per second, H100 SXM HBM3
const ceiling = bandwidth / result.model.bytes; // every weight read once per decoded token
const decode = result.figures.find((f) => f.key === "decodeTokensPerSecond");
const prefill = result.figures.find((f) => f.key === "prefillTokensPerSecond");
if (result.machine.llamaBinary !== "localBuild") console.log(`warning: the ${result.machine.llamaBinary} binary ran, not the local CUDA build`);
console.log(`GPU: ${result.machine.gpuNames.join(", ") || "none seen"} (backend ${result.machine.backend})`);
console.log(`model: ${(result.model.bytes / 1e9).toFixed(2)} GB; ceiling 3.35 TB/s / model bytes = ${ceiling.toFixed(0)} tok/s`);
for (const side of ["baseline", "product"]) {
    const d = decode[side];
    console.log(`${side}: decode ${d.median.toFixed(1)} tok/s (${d.min.toFixed(1)}-${d.max.toFixed(1)}) = ${(100 * d.median / ceiling).toFixed(1)}% of the ceiling; prefill ${prefill[side].median.toFixed(0)} tok/s`);
}
'
