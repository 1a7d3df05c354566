#!/usr/bin/env bash
# The GPU benchmark, run from the folder that test/bench/gpu/prepare.ts wrote (this script is copied
# into it as run.sh) and from nothing else: no Node.js, npm or network needed on the machine, only
# bash, tar, CMake, ninja, gcc, Python 3 (numpy for the CPU's bandwidth) and, for CUDA, nvcc.
#   1. unpacks the bundled Node and the llama.cpp source node-llama-cpp ships (patched as it patches it);
#   2. builds, in one CMake build of that source, node-llama-cpp's addon and llama.cpp's llama-bench:
#      CUDA when nvcc is found, else the CPU (the rehearsal), so the two runs differ only in the backend;
#   3. installs the addon where node-llama-cpp looks for a local build;
#   4. generates the model (random weights, real tokenizer) with the bundled generator;
#   5. measures llama-bench (prompt 512, generation 128), node-llama-cpp alone and the sidecar over
#      JSON-RPC (test/bench/bench.mjs), and prints them against the memory-bandwidth ceiling.
# Each step is skipped when its result is already there, so a run cut short can be started again.
#
# Usage: run.sh [--shape 13b|1b|small|tiny] [more bench.mjs options, e.g. --rounds 3]
# Results: $RESULTS_DIR (default: results/ here): llama-bench.json, bench.json, table.md.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
cd "$HERE"
RESULTS_DIR="${RESULTS_DIR:-$HERE/results}"
SHAPE=13b
BENCH_ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --shape) SHAPE="$2"; shift 2 ;;
        *) BENCH_ARGS+=("$1"); shift ;;
    esac
done
BUILD_JOBS="${BUILD_JOBS:-$(nproc)}"
START=$SECONDS

step() { echo; echo "== $* ($((SECONDS - START)) s)"; }
die() { echo "run.sh: $*" >&2; exit 1; }
# Python's tarfile reads .tar.xz without an xz binary on the machine.
unpack() { python3 -m tarfile -e "$1" "$2"; }

step "tools"
if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH="/usr/local/cuda/bin:$PATH"; fi
for tool in cmake ninja gcc g++ python3; do
    command -v "$tool" >/dev/null || die "$tool is not installed or not on PATH"
done
# CUDA where the CUDA compiler and an NVIDIA GPU both are; the CPU otherwise (the rehearsal).
if command -v nvcc >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
    BACKEND=cuda
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    nvcc --version | tail -n 1
else
    BACKEND=cpu
    echo "no nvcc or no NVIDIA GPU: CPU build"
fi
cmake --version | head -n 1

step "Node"
[ -x node/bin/node ] || unpack node.tar.xz node
export PATH="$HERE/node/bin:$PATH"
[ "$(command -v node)" = "$HERE/node/bin/node" ] || die "the bundled node is not the one on PATH"
node --version

step "llama.cpp source"
LLAMA_DIR=node_modules/node-llama-cpp/llama
[ -f "$LLAMA_DIR/llama.cpp/CMakeLists.txt" ] || unpack llama.cpp.tar.xz "$LLAMA_DIR"
cat "$LLAMA_DIR/llama.cpp.info.json"; echo

# node-llama-cpp's names for a local build: folder linux-x64[-cuda], library suffix [cuda.]<release>.
RELEASE="$(node -p 'require("./'"$LLAMA_DIR"'/binariesGithubRelease.json").release')"
if [ "$BACKEND" = cuda ]; then
    LOCAL_BUILD=linux-x64-cuda; VARIANT="cuda.$RELEASE"; BACKEND_FLAGS=(-DGGML_CUDA=1)
else
    LOCAL_BUILD=linux-x64; VARIANT="$RELEASE"; BACKEND_FLAGS=()
fi
BUILD_DIR="$HERE/build/$BACKEND"
INSTALL_DIR="$LLAMA_DIR/localBuilds/$LOCAL_BUILD"

step "build: node-llama-cpp's addon and llama-bench ($BACKEND, $BUILD_JOBS jobs)"
if [ -f "$INSTALL_DIR/buildDone.status" ] && [ -x "$BUILD_DIR/bin/llama-bench" ]; then
    echo "already built: $INSTALL_DIR"
else
    # The options node-llama-cpp's own `source build` passes (compileLLamaCpp.js, cmake-js), with the
    # Node-API headers from the bundled Node instead of a download; plus llama.cpp's tools, of which
    # only llama-bench is built, so both binaries come from one compile of ggml and llama.
    mkdir -p "$BUILD_DIR"
    cmake -S "$LLAMA_DIR" -B "$BUILD_DIR" -G Ninja --no-warn-unused-cli \
        -DCMAKE_BUILD_TYPE=Release -DCMAKE_CONFIGURATION_TYPES=Release \
        -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$BUILD_DIR/bin" -DCMAKE_RUNTIME_OUTPUT_DIRECTORY="$BUILD_DIR/bin" \
        -DCMAKE_JS_INC="$HERE/node/include/node" -DCMAKE_JS_SRC= -DCMAKE_JS_LIB= \
        -DNODE_RUNTIME=node -DNODE_RUNTIMEVERSION="$(node -p 'process.versions.node')" -DNODE_ARCH=x64 \
        -DNLC_CURRENT_PLATFORM=linux-x64 -DNLC_TARGET_PLATFORM=linux-x64 -DNLC_VARIANT="$VARIANT" \
        -DGGML_BUILD_NUMBER=1 -DGGML_NATIVE=ON -DGGML_METAL=OFF -DGGML_CCACHE=OFF \
        -DLLAMA_CURL=OFF -DLLAMA_HTTPLIB=OFF -DLLAMA_BUILD_BORINGSSL=OFF -DLLAMA_OPENSSL=OFF \
        -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
        "${BACKEND_FLAGS[@]}" >"$HERE/build/cmake-$BACKEND.log" \
        || { tail -n 40 "$HERE/build/cmake-$BACKEND.log"; die "cmake configure failed"; }
    cmake --build "$BUILD_DIR" --target llama-addon llama-bench -j "$BUILD_JOBS"
    # Where node-llama-cpp's getLlama({ build: "never" }) looks first (getLocalBuildBinaryPath).
    rm -rf "$INSTALL_DIR"
    mkdir -p "$INSTALL_DIR/Release"
    cp -P "$BUILD_DIR"/bin/*.so* "$BUILD_DIR/bin/llama-addon.node" "$INSTALL_DIR/Release/"
    # The description node-llama-cpp reads with a build, with its own idea of this platform (a build
    # made for another distribution or version is test-loaded first).
    node --input-type=module -e '
import { writeFileSync } from "node:fs";
import { getPlatformInfo } from "./node_modules/node-llama-cpp/dist/bindings/utils/getPlatformInfo.js";
const [file, gpu, release] = process.argv.slice(1);
const buildOptions = {
    customCmakeOptions: {}, progressLogs: true, platform: "linux", platformInfo: await getPlatformInfo(),
    arch: "x64", gpu: gpu === "cpu" ? false : gpu, llamaCpp: { repo: "ggml-org/llama.cpp", release },
};
writeFileSync(file, JSON.stringify({ buildOptions }));
' "$INSTALL_DIR/Release/_nlcBuildMetadata.json" "$BACKEND" "$RELEASE"
    touch "$INSTALL_DIR/buildDone.status"
fi

step "model: $SHAPE shape"
MODEL="$(node test/support/make-model.mjs --shape "$SHAPE" | head -n 1)"
ls -l "$MODEL"

mkdir -p "$RESULTS_DIR"
step "llama-bench (prompt 512, generation 128)"
# All layers on the GPU (ignored by the CPU build); the CPU build uses every core, as the sidecar does.
"$BUILD_DIR/bin/llama-bench" -m "$MODEL" -p 512 -n 128 -r 3 -ngl 999 -o json >"$RESULTS_DIR/llama-bench.json"

step "node-llama-cpp alone and the sidecar over JSON-RPC"
THREADS="$(nproc)"
# The same --shape finds the model just generated (the same cache under .cache/models/ here).
node test/bench/bench.mjs --shape "$SHAPE" --gpu "$BACKEND" --threads "$THREADS" --prompt-tokens 512 \
    --decode-tokens 128 --sweep-threads none --out "$RESULTS_DIR/bench.json" "${BENCH_ARGS[@]}" \
    | tee "$RESULTS_DIR/bench.md"

step "against the memory-bandwidth ceiling"
if [ "$BACKEND" = cuda ]; then
    # Looked up by name in ceiling.mjs unless BANDWIDTH (bytes/s) is set.
    DEVICE=(--device "$(nvidia-smi --query-gpu=name --format=csv,noheader | head -n 1)" ${BANDWIDTH:+--bandwidth "$BANDWIDTH"})
else
    # Read bandwidth of this CPU's memory: numpy summing 1 GiB, best of 5.
    BYTES_PER_S="$(python3 -c '
import numpy, time
a = numpy.ones(2**27)
best = 0
for _ in range(5):
    t = time.perf_counter(); a.sum(); best = max(best, a.nbytes / (time.perf_counter() - t))
print(int(best))')"
    DEVICE=(--device "CPU: $(sed -n 's/^model name\t*: //p' /proc/cpuinfo | head -n 1)" --bandwidth "$BYTES_PER_S"
        --bandwidth-source "measured: numpy summing 1 GiB, best of 5")
fi
node test/bench/gpu/ceiling.mjs --llama-bench "$RESULTS_DIR/llama-bench.json" \
    --bench "$RESULTS_DIR/bench.json" "${DEVICE[@]}" | tee "$RESULTS_DIR/table.md"
step "done"
