#!/usr/bin/env bash
# Installs what is needed (tools/setup.sh), builds the benchmarks and the daemon, then runs
# forklet-bench against a daemon of its own and the microbenchmarks. Writes the table, JSON, CSV,
# chart and the microbenchmarks' results to bench/results/.
# Usage: tools/bench.sh [forklet-bench options, see forklet-bench --help]
#        FORKLET_BENCH_MICRO=0 tools/bench.sh   # without the microbenchmarks
#        FORKLET_BUILD_DIR=build-x tools/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "tools/bench.sh: run as root (forkletd and the baselines create namespaces and cgroups)"; exit 1; }
tools/setup.sh --no-build
build=${FORKLET_BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
# Only what the benchmarks run: forklet-bench depends on forkletd, the zygote and the runners.
cmake --build "$build" -j"$(nproc)" --target forklet-bench forklet-micro
out=bench/results
mkdir -p "$out"
"$build/bin/forklet-bench" --out "$out" "$@"
if [ "${FORKLET_BENCH_MICRO:-1}" != 0 ]; then
  echo "== microbenchmarks (forklet-micro) =="
  "$build/bin/forklet-micro" --benchmark_min_time=0.2 --benchmark_out="$out/forklet-micro.json" \
    --benchmark_out_format=json | tee "$out/forklet-micro.txt"
fi
echo "results in $out/"
