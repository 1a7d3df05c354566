#!/usr/bin/env bash
# `npm run bench:gpu-rehearsal`: the GPU benchmark's run.sh, here, as the GPU machine will run it:
# from a copy of the prepared folder outside the repository (nothing of it or of its node_modules can
# be reached by path), with the network cut (unshare -n) and the system's Node hidden (a mount
# namespace binds a stub over it), so the bundled Node, the shipped llama.cpp source and the bundled
# scripts are all it has. No GPU here: run.sh builds for the CPU, which is the only difference.
# Needs root (unshare). The small model and 3 rounds: a check that it all works, not a measurement.
# Usage: bash test/bench/gpu/rehearsal.sh [run.sh options; default --shape small --rounds 3 --speculation-rounds 1]
# The table also goes to bench-results/gpu-rehearsal/table.md.
set -euo pipefail
cd "$(dirname "$0")/../../.."
REPO="$(pwd)"
die() { echo "rehearsal: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root for unshare (network and mount namespaces)"
[ -f .cache/gpu-bench/run.sh ] || die ".cache/gpu-bench is missing: run node --import tsx test/bench/gpu/prepare.ts"
[ $# -gt 0 ] || set -- --shape small --rounds 3 --speculation-rounds 1

WORK="$(mktemp -d /tmp/olmo-gpu-rehearsal.XXXXXX)"
# Kept when the run fails, to look into.
trap 'status=$?; if [ $status = 0 ]; then rm -rf "$WORK"; else echo "rehearsal: failed; its folder: $WORK" >&2; fi' EXIT
cp -a .cache/gpu-bench "$WORK/gpu-bench"
printf '#!/bin/sh\necho "the system node is hidden in the GPU rehearsal" >&2\nexit 127\n' >"$WORK/no-node"
chmod +x "$WORK/no-node"
mkdir -p "$REPO/bench-results/gpu-rehearsal" "$WORK/home"
# python3 by its real path: a pyenv shim would look for its versions under $HOME.
PYTHON_DIR="$(dirname "$(python3 -c 'import sys; print(sys.executable)')")"

unshare --net --mount bash -euo pipefail -c '
    work="$1"; results="$2"; python_dir="$3"; shift 3
    for node in $(which -a node | xargs -r readlink -f | sort -u); do mount --bind "$work/no-node" "$node"; done
    if python3 -c "import socket; socket.create_connection((\"registry.npmjs.org\", 443), timeout=5)" 2>/dev/null; then
        echo "rehearsal: the network is reachable" >&2; exit 1
    fi
    echo "offline: registry.npmjs.org unreachable; system node: $(node --version 2>&1 || true)"
    exec env -i HOME="$work/home" PATH="$python_dir:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        RESULTS_DIR="$results" BUILD_JOBS="${BUILD_JOBS:-2}" bash "$work/gpu-bench/run.sh" "$@"
' rehearsal "$WORK" "$REPO/bench-results/gpu-rehearsal" "$PYTHON_DIR" "$@"
