#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs every test (unit and integration,
# as root), and removes forklet's processes, cgroups, mounts and temp files on exit, pass or fail.
# Its first lines say what the host offers (kernel, cgroups, 32-bit syscalls, CRIU).
# Arguments go to ctest (e.g. -R Snapshot, -L integration, -j 1). Without arguments the VM suite
# (tests/vm/run.sh) follows.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "tests/run.sh: run as root (the tests create namespaces and cgroups)"; exit 1; }
top=$(pwd)
finish() {
  local rc=$?
  trap - EXIT INT TERM
  if ! "$top/tools/cleanup.sh" --check >/tmp/forklet-left.$$ 2>&1; then
    echo "== left behind by the tests (removed now) =="
    cat /tmp/forklet-left.$$
  fi
  rm -f /tmp/forklet-left.$$
  "$top/tools/cleanup.sh"
  exit $rc
}
trap finish EXIT
trap 'exit 130' INT TERM
start=$(date +%s)
tools/setup.sh
echo "== host =="
build/bin/forklet-host-facts
echo "criu: $(cat /opt/forklet/criu/selftest 2>/dev/null || echo 'not installed (tools/setup-criu.sh)')"
echo "== tests =="
rc=0
echo "ctest began at $(date +%T)"
(cd build && ctest --output-on-failure --timeout 600 "$@") || rc=$?
# The VM suite (systemd as PID 1, cgroup v2 only: tests/vm/run.sh) runs with the whole suite, not
# with a subset picked by ctest arguments; FORKLET_VM=0 skips it, FORKLET_VM=1 runs it anyway.
if [ "${FORKLET_VM:-$(( $# == 0 ))}" = 1 ]; then
  echo "== VM suite =="
  tests/vm/run.sh build || rc=1
fi
echo "tests/run.sh: $(( $(date +%s) - start )) s"
exit $rc
