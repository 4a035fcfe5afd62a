#!/usr/bin/env bash
# Removes what forklet daemons started from this checkout may have left: processes, cgroups
# and temporary state. Used by the test runner and the demo on exit, even after a failure.
# Cgroups of a daemon that still runs elsewhere (non-empty after our processes are gone) stay.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)

ours() {  # pids whose command line mentions this checkout's build tree
  for p in /proc/[0-9]*; do
    cmd=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
    case "$cmd" in *"$top/build"*forkletd*|*"$top/build"*forklet_zygote.py*) echo "${p#/proc/}";; esac
  done
}
pids=$(ours)
[ -n "$pids" ] && kill -KILL $pids 2>/dev/null
sleep 0.2

# Deepest first; only directories forklet named ("forklet.<tag>" and what is below them).
find /sys/fs/cgroup -depth -type d -path '*forklet.*' 2>/dev/null | while read -r cg; do
  if [ -s "$cg/cgroup.procs" ]; then
    procs=$(cat "$cg/cgroup.procs")
    own=1
    for p in $procs; do
      cmd=$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)
      case "$cmd" in *"$top/build"*) ;; *) own=0;; esac
    done
    [ $own = 1 ] && kill -KILL $procs 2>/dev/null
    sleep 0.1
  fi
  rmdir "$cg" 2>/dev/null
done
rm -rf /tmp/forklet-test-state-* /tmp/forklet-fn-* /tmp/forklet-out-* /tmp/forklet-evil-* \
       /tmp/forklet-demo-* /tmp/forklet-childsetup-* 2>/dev/null
exit 0
