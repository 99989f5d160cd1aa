#!/usr/bin/env bash
# How engram uses this machine's cores, in one command: the scan kernels at 1, 2, 4, ... threads beside a plain
# SIMD loop and the measured read bandwidth (bench_scale), then engram-server under 1, 4, 16, 64 clients at 0%,
# 10% and 100% adds (bench/server_load.sh --scale). Prints the ratios; run it on a bigger machine to size it.
#   bench/scale.sh [--quick] [--seconds S] [--max-clients N]
# --quick: 100k rows for the kernels and 5 s a server run.
set -euo pipefail
cd "$(dirname "$0")/.."
kernel_args=() server_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) kernel_args+=(--quick); server_args+=(--seconds 5); shift ;;
    --seconds|--max-clients) server_args+=("$1" "$2"); shift 2 ;;
    *) echo "scale.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
scripts/install-deps.sh
cmake --preset release -DENGRAM_BUILD_BENCH=ON >/dev/null
cmake --build --preset release --target bench_scale >/dev/null
echo "==== scan kernels"
build/release/bench/bench_scale "${kernel_args[@]}"
echo
echo "==== engram-server"
bench/server_load.sh --scale "${server_args[@]}"
