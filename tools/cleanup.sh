#!/usr/bin/env bash
# Removes what forklet daemons started from this checkout left: daemons, every process inside
# forklet's cgroups (whatever its command line: an instance's never names the build tree), the
# cgroups, mounts, network namespaces and temporary state. Used by the test runner and the demo on
# exit, even after a failure. The trees of a daemon that still runs from elsewhere stay: a live
# daemon names its tree in STATE_DIR/cgroup-tag.
# Usage: tools/cleanup.sh [--check]   --check: only report what is left, exit 1 if anything is.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
check=0
[ "${1:-}" = --check ] && check=1

cmdline() { tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline"; }

# Daemons: ours (this checkout's build tree) and foreign ones (installed, other checkouts). Other
# programs that make forklet cgroups (the tests, forklet-micro) from another build tree are
# foreign too: what they and their children hold stays.
ours=() foreign=() foreign_any=()
for p in /proc/[0-9]*; do
  pid=${p#/proc/}
  exe=$(readlink "$p/exe" 2>/dev/null) || continue
  case "$exe" in
    "$top/build/"*/forkletd) ours+=("$pid") ;;
    "$top/build/"*) ;;
    */forkletd) foreign+=("$pid"); foreign_any+=("$pid") ;;
    */build/*/forklet-micro|*/build/*_tests|*/build/*/forklet-bench) foreign_any+=("$pid") ;;
  esac
done

# The cgroup trees the foreign daemons own (their STATE_DIR/cgroup-tag).
protected=() foreign_states=() untagged=0
for pid in "${foreign[@]}"; do
  state=/var/lib/forklet
  read -r -a args < <(cmdline "$pid")
  for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[$i]}" in
      --state-dir) state=${args[$((i + 1))]:-$state} ;;
      --state-dir=*) state=${args[$i]#--state-dir=} ;;
    esac
  done
  foreign_states+=("$state")
  if tag=$(cat "$state/cgroup-tag" 2>/dev/null); then protected+=("forklet.$tag"); else untagged=1; fi
done
descends_from_foreign() {  # pid: is a foreign daemon or test among its ancestors?
  local p=$1 f n
  for ((n = 0; n < 64 && p > 1; n++)); do
    for f in "${foreign_any[@]}"; do [ "$p" = "$f" ] && return 0; done
    p=$(awk '/^PPid:/ {print $2}' "/proc/$p/status" 2>/dev/null) || return 1
    [ -n "$p" ] || return 1
  done
  return 1
}
is_protected() {
  local root=$1 t pids pid owner
  # forklet.<tag>.frozen: the empty cgroup a v1 daemon keeps frozen beside its tree (cgroup_v1.cc).
  for t in "${protected[@]}"; do
    case "$(basename "$root")" in "$t" | "$t.frozen") return 0 ;; esac
  done
  # A test's or benchmark's tree (forklet.test<pid>-N, forklet.micro<pid>) while that pid is foreign.
  owner=$(basename "$root" | sed -n 's/^forklet\.\(test\|micro\)\([0-9]\+\).*/\2/p')
  if [ -n "$owner" ]; then
    for f in "${foreign_any[@]}"; do [ "$owner" = "$f" ] && return 0; done
  fi
  pids=$(find "$root" -name cgroup.procs -exec cat {} + 2>/dev/null)
  for pid in $pids; do descends_from_foreign "$pid" && return 0; done
  ((untagged)) || return 1
  # A foreign daemon that does not name its tree: keep the empty trees, which may be its pools.
  [ -z "$pids" ]
}

# The network of a daemon (docs/network.md): interfaces fk<id>br and fk<id>v<n>, nftables tables
# forklet_<id> (inet, bridge), the id being the low 24 bits of its cgroup tag in hex. A foreign
# daemon's stays. The tests' own: interfaces fktest<pid>, namespaces fktest-inet-<pid>.
protected_ids=()
for t in "${protected[@]}"; do protected_ids+=("$(printf '%06x' $((${t#forklet.} & 0xffffff)))"); done
id_protected() {
  local i
  for i in "${protected_ids[@]}"; do [ "$i" = "$1" ] && return 0; done
  return 1
}
test_pid_alive() {  # fktest<pid> names carry at most the low 5 digits of the pid
  local p
  for p in "${foreign_any[@]}"; do
    case "$p" in *"$1") return 0 ;; esac
  done
  return 1
}
net_leftovers() {  # one line per thing: "link NAME", "netns NAME", "table FAMILY NAME"
  command -v ip >/dev/null || return 0
  local name id
  for name in $(ls /sys/class/net 2>/dev/null); do
    case "$name" in
      fktest*) test_pid_alive "${name#fktest}" || echo "link $name" ;;
      fk*) id=${name:2:6}; id_protected "$id" || echo "link $name" ;;
      forklet*) echo "link $name" ;;
    esac
  done
  for name in $(ip netns list 2>/dev/null | awk '{print $1}'); do
    case "$name" in
      fktest-inet-*) test_pid_alive "${name#fktest-inet-}" || echo "netns $name" ;;
      fk* | forklet*) echo "netns $name" ;;
    esac
  done
  command -v nft >/dev/null || return 0
  nft list tables 2>/dev/null | while read -r _ family name; do
    case "$name" in forklet_*) id_protected "${name#forklet_}" || echo "table $family $name" ;; esac
  done
}

# Loop devices of instances' /tmp areas (<state>/tmp-areas/area-*.img, deleted once attached) whose
# daemon is not a live foreign one: "DEVICE BACKING-FILE" per line.
area_loops() {
  local f b s dev
  for f in /sys/block/loop*/loop/backing_file; do
    [ -r "$f" ] || continue
    b=$(cat "$f" 2>/dev/null) || continue
    case "$b" in */tmp-areas/area-*) ;; *) continue ;; esac
    for s in "${foreign_states[@]}"; do case "$b" in "$s"/tmp-areas/*) continue 2 ;; esac; done
    dev=${f#/sys/block/}
    echo "/dev/${dev%%/*} $b"
  done
}

# forklet.<tag> roots, in every hierarchy (v1: one per controller; v2: one).
roots=()
while IFS= read -r d; do
  case "$d" in */forklet.*/*forklet.*) continue ;; esac  # below another root: not a root
  roots+=("$d")
done < <(find /sys/fs/cgroup -type d -name 'forklet.*' 2>/dev/null)

if ((check)); then
  left=0
  for pid in "${ours[@]}"; do echo "left: daemon $pid: $(cmdline "$pid")"; left=1; done
  for root in "${roots[@]}"; do
    is_protected "$root" && continue
    # When it last changed and what it holds: which test left it (tests/run.sh prints when ctest began).
    echo "left: cgroup $root (last changed $(stat -c %y "$root" 2>/dev/null | cut -c12-19); holds:" \
      "$(find "$root" -mindepth 1 -maxdepth 1 -type d -printf '%f ' 2>/dev/null))"
    left=1
    while IFS= read -r f; do
      for pid in $(cat "$f" 2>/dev/null); do echo "left: process $pid in $(dirname "$f"): $(cmdline "$pid")"; done
    done < <(find "$root" -name cgroup.procs 2>/dev/null)
  done
  while read -r _ point _; do
    case "$point" in /tmp/forklet-*|*/forklet-test-state-*) echo "left: mount $point"; left=1 ;; esac
  done </proc/mounts
  for f in /tmp/forklet-test-state-* /tmp/forklet-fn-* /tmp/forklet-demo-* /tmp/forklet-bench-nginx-* \
           /tmp/forklet-erofs-probe-* /tmp/forklet-code-image-test-*; do
    [ -e "$f" ] && { echo "left: $f"; left=1; }
  done
  for pid in $(pgrep -f '^/usr/sbin/nginx -p /tmp/forklet-bench-nginx-' 2>/dev/null); do
    echo "left: forklet-bench's nginx $pid"; left=1
  done
  net=$(net_leftovers)
  [ -n "$net" ] && { echo "$net" | sed 's/^link /interface /; s/^/left: /'; left=1; }
  loops=$(area_loops)
  [ -n "$loops" ] && { echo "$loops" | sed 's/^/left: loop device of a \/tmp area: /'; left=1; }
  ((left)) && exit 1
  echo "cleanup check: nothing of forklet is left"
  exit 0
fi

((${#ours[@]})) && kill -KILL "${ours[@]}" 2>/dev/null
pkill -KILL -f '^/usr/sbin/nginx -p /tmp/forklet-bench-nginx-' 2>/dev/null  # a killed bench's floor
sleep 0.2

# Every process in an unprotected tree goes, then its cgroups, deepest first.
for root in "${roots[@]}"; do
  is_protected "$root" && continue
  for round in 1 2 3 4 5; do
    pids=$(find "$root" -name cgroup.procs -exec cat {} + 2>/dev/null)
    [ -z "$pids" ] && break
    # A frozen cgroup keeps its processes from dying: thaw it first.
    find "$root" -name freezer.state -exec sh -c 'echo THAWED >"$1"' _ {} \; 2>/dev/null
    find "$root" -name cgroup.freeze -exec sh -c 'echo 0 >"$1"' _ {} \; 2>/dev/null
    kill -KILL $pids 2>/dev/null
    sleep 0.$round
  done
  find "$root" -depth -type d -exec rmdir {} \; 2>/dev/null
done

# Network: veths before their bridges (a bridge's ports would outlive it), then tables; IPv4
# forwarding back off if forklet turned it on and no forklet bridge remains.
while read -r kind a b; do
  case "$kind" in
    link) case "$a" in *br) ;; *) ip link del "$a" 2>/dev/null ;; esac ;;
    netns) ip netns del "$a" 2>/dev/null ;;
    table) nft delete table "$a" "$b" 2>/dev/null ;;
  esac
done < <(net_leftovers)
for l in $(net_leftovers | awk '$1 == "link" {print $2}'); do ip link del "$l" 2>/dev/null; done
if [ -e /run/forklet/ip_forward.restore ] && ! ls /sys/class/net 2>/dev/null | grep -qE '^fk[0-9a-f]{6}br$'; then
  echo 0 >/proc/sys/net/ipv4/ip_forward && rm -f /run/forklet/ip_forward.restore
fi

# /tmp areas' loop devices (they clear themselves once unmounted; these outlived their mounts).
area_loops | while read -r dev _; do losetup -d "$dev" 2>/dev/null; done

# Mounts left below the temp state dirs (a daemon killed before it unmounted).
grep -oE ' /tmp/forklet-[^ ]+' /proc/mounts 2>/dev/null | sort -r | while read -r m; do
  umount -l "$m" 2>/dev/null
done
for f in /tmp/forklet-test-state-* /tmp/forklet-fn-* /tmp/forklet-out-* /tmp/forklet-evil-* \
         /tmp/forklet-demo-* /tmp/forklet-childsetup-* /tmp/forklet-criu-selftest.* \
         /tmp/forklet-bench-nginx-* /tmp/forklet-erofs-probe-* /tmp/forklet-code-image-test-*; do
  [ -e "$f" ] || continue
  for s in "${foreign_states[@]}"; do [ "$f" = "$s" ] && continue 2; done  # a live daemon's
  rm -rf "$f" 2>/dev/null
done
exit 0
