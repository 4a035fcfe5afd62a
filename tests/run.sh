#!/usr/bin/env bash
# The test command: installs what is missing, builds, runs every test (unit and integration,
# as root), and removes forklet's processes, cgroups and temp files on exit, pass or fail.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "tests/run.sh: run as root (the tests create namespaces and cgroups)"; exit 1; }
top=$(pwd)
trap "\"$top/tools/cleanup.sh\"" EXIT INT TERM
tools/setup.sh
cd build
ctest --output-on-failure --timeout 600 "$@"
