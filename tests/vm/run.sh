#!/usr/bin/env bash
# The VM suite: forkletd on a production-shaped worker host. Packs the build into the .deb
# (cpack), boots a cached Debian 12 guest (its own kernel and systemd as PID 1, cgroup v2 only)
# under QEMU (KVM when usable, else TCG), installs the .deb there with apt, and runs checks.py
# against the forkletd that systemd starts from the package's unit. One line per check; exits
# non-zero if any fails. Removes its QEMU, temp files and mounts on exit, also when killed.
# Usage: tests/vm/run.sh [BUILD_DIR]   (default build/; tests/run.sh calls it)
# Environment: FORKLET_VM_CACHE (default /var/cache/forklet/vm), FORKLET_VM_TIMEOUT (s, 3600),
# FORKLET_VM_MIRROR (Debian mirror for the image), FORKLET_VM_ACCEL (kvm or tcg: overrides the
# choice), FORKLET_VM_DEB (a .deb to test instead of packing the build), FORKLET_VM_KEEP=1
# keeps the temp dir.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
cache=${FORKLET_VM_CACHE:-/var/cache/forklet/vm}
limit=${FORKLET_VM_TIMEOUT:-3600}
[ "$(id -u)" = 0 ] || { echo "tests/vm/run.sh: run as root"; exit 1; }
for tool in qemu-system-x86_64 mmdebstrap mkfs.ext4 cpack dpkg-deb; do
  command -v "$tool" >/dev/null || { echo "tests/vm/run.sh: $tool missing (tools/setup.sh installs it)"; exit 1; }
done

start=$(date +%s)
tmp=$(mktemp -d /tmp/forklet-vm.XXXXXX)
qemu_pid=
tail_pid=
child_pid=  # cpack or image.sh, run in the background so that a signal here reaches them
finish() {
  local rc=$?
  set +e  # clean up all of it, whatever fails on the way
  trap - EXIT INT TERM HUP
  if [ -n "$child_pid" ]; then
    kill "$child_pid" 2>/dev/null
    wait "$child_pid" 2>/dev/null
  fi
  [ -n "$tail_pid" ] && kill "$tail_pid" 2>/dev/null
  if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2>/dev/null; then
    kill "$qemu_pid" 2>/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$qemu_pid" 2>/dev/null || break; sleep 0.5; done
    kill -9 "$qemu_pid" 2>/dev/null
  fi
  if [ "${FORKLET_VM_KEEP:-}" = 1 ]; then echo "vm: kept $tmp"; else rm -rf "$tmp"; fi
  exit "$rc"
}
trap finish EXIT
trap 'exit 130' INT TERM HUP

# 1. The package, from the build as it is (cpack strips and names it).
mkdir -p "$tmp/pkg"
if [ -n "${FORKLET_VM_DEB:-}" ]; then
  cp "$FORKLET_VM_DEB" "$tmp/pkg/"
else
  echo "vm: packing the .deb (cpack)"
  (cd "$build" && exec nice -n 10 cpack -G DEB -B "$tmp/pkg" >"$tmp/cpack.log" 2>&1) &
  child_pid=$!
  wait "$child_pid" || { cat "$tmp/cpack.log"; exit 1; }
  child_pid=
fi
deb=$(ls "$tmp"/pkg/forklet_*.deb)
depends=$(dpkg-deb -f "$deb" Depends)
echo "vm: $(basename "$deb") depends on: $depends"
# The image holds what the package depends on (first of each alternative), so that apt installs
# it in the guest offline; a dependency missing from Depends is then missing in the guest.
dep_packages=$(tr ',' '\n' <<<"$depends" | sed 's/|.*//; s/(.*)//; s/[[:space:]]//g' | sed '/^$/d' | tr '\n' ' ')

# 2. The guest image (built once per input hash; a progress line while it builds).
"$here/image.sh" "$cache" "$dep_packages" >"$tmp/image-dir" &
child_pid=$!
wait "$child_pid"
child_pid=
image=$(cat "$tmp/image-dir")

# 3. What the guest gets: the package and the suite, in a folder shared over 9p.
share=$tmp/share
mkdir -p "$share"
cp "$deb" "$here/guest.sh" "$here/checks.py" "$share/"

# KVM only where the CPU offers virtualisation: a /dev/kvm without vmx/svm (a nested host that
# hides them) opens fine and then never runs the guest.
accel=tcg
if [ -w /dev/kvm ] && grep -qwE 'vmx|svm' /proc/cpuinfo; then accel=kvm; fi
accel=${FORKLET_VM_ACCEL:-$accel}
echo "vm: booting the guest (systemd as PID 1, cgroup v2 only) under QEMU $accel$( [ $accel = tcg ] && echo ': emulated, slow')"
: >"$tmp/results.log"
qemu-system-x86_64 -accel "$accel" -cpu max -smp 2 -m 3072 -nodefaults -display none -monitor none \
  -no-reboot -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
  -append "root=/dev/vda rw console=ttyS0 systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all panic=-1 systemd.show_status=1" \
  -drive "file=$image/rootfs.img,format=raw,if=virtio,snapshot=on" \
  -virtfs "local,path=$share,mount_tag=host,security_model=none,id=host" \
  -device virtio-rng-pci \
  -serial "file:$tmp/console.log" -serial "file:$tmp/results.log" \
  >"$tmp/qemu.log" 2>&1 &
qemu_pid=$!
tail -n +1 -F "$tmp/results.log" 2>/dev/null &
tail_pid=$!
timed_out=0
for ((waited = 0; ; waited++)); do
  kill -0 "$qemu_pid" 2>/dev/null || break
  if ((waited >= limit)); then timed_out=1; break; fi
  sleep 1
done
if ((timed_out)); then
  echo "vm: FAIL: the guest did not finish within $limit s"
else
  wait "$qemu_pid" || echo "vm: qemu exited $?: $(tail -n 5 "$tmp/qemu.log")"
fi
qemu_pid=
sleep 0.5
kill "$tail_pid" 2>/dev/null
tail_pid=

passed=$(grep -c '^PASS ' "$tmp/results.log" || true)
failed=$(grep -c '^FAIL ' "$tmp/results.log" || true)
ok=0
grep -q '^vm-guest: exit 0' "$tmp/results.log" && ((failed == 0 && passed > 0)) && ok=1
if ((!ok)); then
  grep -q '^vm-guest: exit' "$tmp/results.log" ||
    echo "vm: the guest ended before the suite did; qemu said: $(tail -n 5 "$tmp/qemu.log")"
  echo "== guest console (last 60 lines) =="
  tail -n 60 "$tmp/console.log" | tr -d '\r'
  if [ -s "$share/journal.log" ]; then
    echo "== journalctl -u forkletd (last 60 lines) =="
    tail -n 60 "$share/journal.log"
  fi
fi
echo "tests/vm/run.sh: $passed passed, $failed failed, $(( $(date +%s) - start )) s"
((ok))
