#!/usr/bin/env bash
# The main job: install, build, start forkletd (built-in defaults, snapshots off), deploy the example
# function, and show its cold, zygote and warm latencies next to `python3 -c pass`.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "tools/demo.sh: run as root (forkletd creates namespaces and cgroups)"; exit 1; }
tools/setup.sh

state=$(mktemp -d /tmp/forklet-demo-XXXXXX)
log="$state/forkletd.log"
daemon=""
finish() {
  [ -n "$daemon" ] && kill -TERM "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
  tools/cleanup.sh
}
trap finish EXIT INT TERM

port=${FORKLET_DEMO_PORT:-9000}
# --snapshots off: the demo measures cold, zygote and warm starts (docs/snapshots.md has restores).
build/bin/forkletd --listen "127.0.0.1:$port" --state-dir "$state" --snapshots off --insecure-no-auth 2>"$log" &
daemon=$!
for _ in $(seq 100); do
  grep -q "ready on" "$log" 2>/dev/null && break
  kill -0 "$daemon" 2>/dev/null || { cat "$log"; exit 1; }
  sleep 0.1
done
grep "ready on" "$log"
export FORKLET_ENDPOINT="unix:$state/forkletd.sock"

echo "== deploy the example function (tools/examples/hello) =="
build/bin/forklet deploy hello tools/examples/hello --handler app.handler --memory 128 --timeout 3
echo "== invoke it =="
build/bin/forklet invoke hello '{"from": "demo"}' --log
echo "== latencies: cold (no zygote), zygote (new sandbox from a ready zygote), warm (idle instance) =="
/usr/bin/python3 tools/latency.py "http://127.0.0.1:$port" hello "$@"
