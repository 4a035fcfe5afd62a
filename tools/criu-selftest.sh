#!/usr/bin/env bash
# Proves that a criu works on this kernel: checkpoints a trivial process and restores it, each step
# under a deadline (a criu that hangs is killed with everything it started). Prints one line,
# "passed: ..." or "failed: ...", and exits 0 only when both steps worked.
# Usage: tools/criu-selftest.sh CRIU [SECONDS]   (default 20 s a step)
set -u
criu=$1
deadline=${2:-20}
dir=$(mktemp -d /tmp/forklet-criu-selftest.XXXXXX)
pid="" restored=""
finish() {
  for p in $pid $restored; do kill -KILL "$p" 2>/dev/null; done
  rm -rf "$dir"
}
trap finish EXIT
fail() {  # why; the last lines of a criu log are added when there is one
  local tail=""
  [ -n "${2:-}" ] && [ -s "$2" ] && tail=": $(grep -E 'Error|error|Warn' "$2" | tail -n 3 | tr '\n' ' ')"
  echo "failed: criu ${version:-?}: $1$tail"
  exit 1
}
version=$("$criu" --version 2>/dev/null | sed -n 's/^Version: //p')
[ -n "$version" ] || fail "does not run ($criu --version)"
# A session leader on its own (what criu dumps without --shell-job), and this script's child, so
# that it is reaped here after the dump and its pid is free for the restore. Not a job-control
# shell, so setsid execs sleep in place.
setsid sleep 600 </dev/null >/dev/null 2>&1 &
pid=$!
disown "$pid"  # bash still reaps it, quietly
sleep 0.05  # let it reach sleep's exec
mkdir "$dir/images"
t0=$(date +%s%N)
timeout -k 2 "$deadline" "$criu" dump -t "$pid" -D "$dir/images" -o dump.log -v4 >/dev/null 2>&1
rc=$?
[ $rc = 124 ] || [ $rc = 137 ] && fail "dump gave no answer in $deadline s (killed)" "$dir/images/dump.log"
[ $rc = 0 ] || fail "dump exited $rc" "$dir/images/dump.log"
alive() { local s; s=$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$1/status" 2>/dev/null); [ -n "$s" ] && [ "$s" != Z ]; }
alive "$pid" && fail "dump left the process running"
for _ in $(seq 100); do [ -e "/proc/$pid" ] || break; sleep 0.01; done  # reaped: its pid is free
t1=$(date +%s%N)
timeout -k 2 "$deadline" "$criu" restore -D "$dir/images" -o restore.log -v4 --restore-detached \
  --pidfile "$dir/restored.pid" >/dev/null 2>&1
rc=$?
restored=$(cat "$dir/restored.pid" 2>/dev/null)
[ $rc = 124 ] || [ $rc = 137 ] && fail "restore gave no answer in $deadline s (killed)" "$dir/images/restore.log"
[ $rc = 0 ] || fail "restore exited $rc" "$dir/images/restore.log"
{ alive "$restored" && [ "$(cat "/proc/$restored/comm" 2>/dev/null)" = sleep ]; } || fail "the restored process is not running" "$dir/images/restore.log"
t2=$(date +%s%N)
echo "passed: criu $version dumped a process in $(((t1 - t0) / 1000000)) ms and restored it in $(((t2 - t1) / 1000000)) ms"
