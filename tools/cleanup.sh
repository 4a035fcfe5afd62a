#!/usr/bin/env bash
# Removes what forklet daemons started from this checkout may have left: processes, cgroups
# and temporary state. Used by the test runner and the demo on exit, even after a failure.
# Cgroups of a daemon that still runs elsewhere (non-empty after our processes are gone) stay.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)

# Zygotes and instances name themselves "forklet-zygote" (no host path for instances to read in
# their /proc/1/cmdline): they are ours when they map this build tree's zygote library or binary.
from_our_build() {
  cmd=$(tr '\0' ' ' <"$1/cmdline" 2>/dev/null) || return 1
  case "$cmd" in
    *"$top/build"*) return 0;;
    forklet-zygote*) grep -q "$top/build/" "$1/maps" 2>/dev/null;;
    *) return 1;;
  esac
}

ours() {  # daemons started from this checkout's build tree, and its zygotes
  for p in /proc/[0-9]*; do
    cmd=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
    case "$cmd" in
      *"$top/build"*forkletd*|*"$top/build"*forklet_zygote.py*) echo "${p#/proc/}";;
      forklet-zygote*) from_our_build "$p" && echo "${p#/proc/}";;
    esac
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
      from_our_build "/proc/$p" || own=0
    done
    [ $own = 1 ] && kill -KILL $procs 2>/dev/null
    sleep 0.1
  fi
  rmdir "$cg" 2>/dev/null
done
rm -rf /tmp/forklet-test-state-* /tmp/forklet-fn-* /tmp/forklet-out-* /tmp/forklet-evil-* \
       /tmp/forklet-demo-* /tmp/forklet-childsetup-* 2>/dev/null
exit 0
