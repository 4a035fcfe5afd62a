#!/usr/bin/env bash
# Keeps docs/design.md true: every stage name the code reports (X-Forklet-Stages, the REPORT line)
# must appear in it, in backquotes. Usage: tests/design_doc_stages.sh [SOURCE_DIR]
set -euo pipefail
src=${1:-$(cd "$(dirname "$0")/.." && pwd)}
doc=$src/docs/design.md
[[ -f $doc ]] || { echo "FAIL: $doc is missing"; exit 1; }

# The daemon's own stages: stages.emplace_back("name", ...) or stages->emplace_back("name", ...)
# outside the tests (runtime/core: launcher, instance, scheduler, snapshots).
daemon_stages=$(grep -rhoE --include='*.cc' --exclude='*_test.cc' \
                  'stages(->|\.)emplace_back\("[a-z0-9_]+"' "$src/runtime" |
                sed -E 's/.*\("([a-z0-9_]+)"/\1/' | sort -u)
# The sandbox's setup steps, timed in the child: the names in SetupStepName's table.
step_stages=$(sed -n '/kNames\[\] = {/,/};/p' "$src/sandbox/child_setup.cc" |
              grep -oE '"[a-z0-9_]+"' | tr -d '"' | sort -u)

# If the code's shape changes so that these patterns find (almost) nothing, say so rather than
# pass: the test must be able to fail.
n_daemon=$(wc -w <<<"$daemon_stages")
n_steps=$(wc -w <<<"$step_stages")
if (( n_daemon < 10 || n_steps < 10 )); then
  echo "FAIL: found only $n_daemon daemon stages and $n_steps setup steps in $src;" \
       "update tests/design_doc_stages.sh to where the code now names its stages"
  exit 1
fi

missing=0
for name in $daemon_stages $step_stages; do
  if ! grep -qF "\`$name\`" "$doc"; then
    echo "FAIL: stage \`$name\` is reported by the code but not described in docs/design.md"
    missing=$((missing + 1))
  fi
done
if (( missing > 0 )); then
  echo "$missing stage name(s) missing: add them to \"The life of an invocation\" in docs/design.md"
  exit 1
fi
echo "ok: all $((n_daemon + n_steps)) stage names ($n_daemon of the daemon, $n_steps setup steps) are in docs/design.md"
