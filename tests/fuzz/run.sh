#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/) with clang and the address and undefined-behaviour
# sanitizers in a build tree of their own, then runs each for a bounded time over its seed corpus
# (tests/fuzz/corpus/<target>/). New inputs stay in the build tree; a crash leaves its input in
# BUILD/artifacts/ and fails the run (reproduce: BUILD/tests/fuzz/<target>_fuzz ARTIFACT).
# Usage: tests/fuzz/run.sh [BUILD_DIR [SECONDS_PER_TARGET]]
#   defaults: build/fuzz, and $FORKLET_FUZZ_SECONDS or 30 seconds per target.
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$src/build/fuzz}
seconds=${2:-${FORKLET_FUZZ_SECONDS:-30}}
targets=(http_request json_body zip_archive channel_frame sigv4)
command -v clang++ >/dev/null || { echo "fuzz: clang++ is missing (tools/setup.sh installs clang)"; exit 1; }

# (-fconstexpr-steps: clang evaluates the seccomp policy's compile-time checks within a smaller
# default budget than gcc.)
flags="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
flags+=" -fconstexpr-steps=50000000"
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DFORKLET_FUZZ=ON \
  -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
cmake --build "$build" --target "${targets[@]/%/_fuzz}" -- -j"$(nproc)" >/dev/null

export FORKLET_FUZZ_TMP="$build/tmp"  # the targets' scratch directories
rm -rf "$FORKLET_FUZZ_TMP"
mkdir -p "$build/artifacts" "$FORKLET_FUZZ_TMP"
status=0
for t in "${targets[@]}"; do
  work="$build/corpus/$t"
  mkdir -p "$work"
  # The HTTP server answers from its own threads, which may still be freeing a connection when an
  # input returns: leak checks per input would be false alarms there (the soak test watches the
  # daemon's memory instead).
  leaks=1
  [ "$t" = http_request ] && leaks=0
  if ASAN_OPTIONS="detect_leaks=$leaks" "$build/tests/fuzz/${t}_fuzz" -detect_leaks=$leaks \
       -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
       -max_len=65536 -artifact_prefix="$build/artifacts/$t-" -print_final_stats=1 \
       "$work" "$src/tests/fuzz/corpus/$t" >"$build/$t.log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$build/$t.log")
    echo "fuzz: $t: ${runs:-?} inputs in ${seconds}s, no crash ($(ls "$work" | wc -l) in its corpus)"
  else
    echo "fuzz: $t FAILED (log: $build/$t.log, input: $build/artifacts/)"
    grep -E -A30 'ERROR: |==ERROR|runtime error|_fuzz: ' "$build/$t.log" | head -60
    status=1
  fi
done
rm -rf "$FORKLET_FUZZ_TMP"
exit $status
