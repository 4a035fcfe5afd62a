#!/usr/bin/env bash
# Builds (once, cached outside the tree) the Debian 12 guest of the VM suite: Debian's kernel and
# systemd, the packages the forklet .deb depends on, awscli; boots into a unit that runs the
# suite's guest script from the host's shared folder.
# Usage: tests/vm/image.sh CACHE_DIR "EXTRA PACKAGES"   prints the image's directory on stdout.
# The image's key is a hash of this script and the package list: same inputs, same image.
set -euo pipefail
cache=$1 extra=$2
mirror=${FORKLET_VM_MIRROR:-http://deb.debian.org/debian}
security=${FORKLET_VM_SECURITY_MIRROR:-http://deb.debian.org/debian-security}

packages="linux-image-amd64 initramfs-tools systemd systemd-sysv udev dbus kmod procps iproute2
  util-linux e2fsprogs python3 awscli curl zip ca-certificates $extra"
packages=$(tr -s ' \n' '\n\n' <<<"$packages" | sed '/^$/d' | sort -u | tr '\n' ',' | sed 's/,$//')
key=$( (cat "$0"; echo "$packages $mirror $security") | sha256sum | cut -c1-16)
dir=$cache/debian12-$key
if [ -f "$dir/done" ]; then
  touch "$dir/done"  # in use: the pruning below keeps it
  echo "$dir"
  exit 0
fi

mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9  # one build at a time; a second run waits and then reuses it
if [ -f "$dir/done" ]; then echo "$dir"; exit 0; fi

tmp=$(mktemp -d "$cache/build.XXXXXX")
mm_pid=
cleanup() {
  # mmdebstrap runs in a process group of its own, in the background, so that a signal here
  # stops it and what it runs (apt, dpkg, maintainer scripts; on SIGTERM alone it finishes its
  # current step first); whatever it left mounted under the tree is unmounted here.
  local rc=$?
  set +e  # clean up all of it, whatever fails on the way
  if [ -n "$mm_pid" ]; then
    kill -TERM -- "-$mm_pid" 2>/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$mm_pid" 2>/dev/null || break; sleep 1; done
    kill -KILL -- "-$mm_pid" 2>/dev/null
    wait "$mm_pid" 2>/dev/null
  fi
  if [ "$rc" != 0 ] && [ -f "$tmp/mmdebstrap.log" ]; then
    echo "vm: the image build failed; mmdebstrap's last lines:" >&2
    tail -n 30 "$tmp/mmdebstrap.log" >&2
  fi
  findmnt -rn -o TARGET | grep "^$tmp/" | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

echo "vm: building the Debian 12 guest image (once, a few minutes; cached in $dir): mmdebstrap from $mirror" >&2
start=$(date +%s)
root=$tmp/root
# The unit that runs the suite: mounts the host's folder (9p, tag "host") and runs guest.sh from
# it; its output goes to the second serial port (/dev/ttyS1), which the host reads.
# Downloaded packages are kept in $cache/debs for the next build (mmdebstrap's own recipe).
mkdir -p "$cache/debs"
setsid mmdebstrap --variant=apt --include="$packages" \
  --aptopt='Acquire::Retries "3"' \
  --skip=download/empty --skip=essential/unlink \
  --setup-hook='mkdir -p "$1"/var/cache/apt/archives/' \
  --setup-hook="sync-in $cache/debs /var/cache/apt/archives/" \
  --customize-hook="sync-out /var/cache/apt/archives $cache/debs" \
  --customize-hook='rm -f "$1"/var/cache/apt/archives/*.deb' \
  --customize-hook='echo forklet-vm >"$1/etc/hostname"' \
  --customize-hook='passwd --root "$1" -d root' \
  --customize-hook='printf "/dev/vda / ext4 rw,errors=remount-ro 0 0\n" >"$1/etc/fstab"' \
  --customize-hook='printf "9p\n9pnet\n9pnet_virtio\n" >"$1/etc/modules-load.d/forklet-vm.conf"' \
  --customize-hook='cat >"$1/usr/local/sbin/forklet-vm-guest" <<"EOF"
#!/bin/sh
# Runs the VM suite handed in by the host (tests/vm/run.sh), then powers off.
mkdir -p /mnt/host
if mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 host /mnt/host; then
  sh /mnt/host/guest.sh >/dev/ttyS1 2>&1
  echo "vm-guest: exit $?" >/dev/ttyS1
else
  echo "vm-guest: cannot mount the host folder" >/dev/ttyS1
fi
sync
systemctl poweroff --no-block
EOF
chmod 755 "$1/usr/local/sbin/forklet-vm-guest"' \
  --customize-hook='cat >"$1/etc/systemd/system/forklet-vm-guest.service" <<"EOF"
[Unit]
Description=forklet VM suite (tests/vm)
After=basic.target systemd-modules-load.service
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/forklet-vm-guest
StandardOutput=journal+console
[Install]
WantedBy=multi-user.target
EOF
chroot "$1" systemctl enable forklet-vm-guest.service' \
  --customize-hook='chroot "$1" systemctl mask apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer systemd-timesyncd.service getty@tty1.service serial-getty@ttyS0.service serial-getty@ttyS1.service 2>/dev/null || true' \
  --customize-hook='cp "$1"/boot/vmlinuz-* "$1/../vmlinuz" && cp "$1"/boot/initrd.img-* "$1/../initrd.img"' \
  bookworm "$root" \
  "deb $mirror bookworm main" "deb $mirror bookworm-updates main" \
  "deb $security bookworm-security main" >"$tmp/mmdebstrap.log" 2>&1 &
mm_pid=$!
wait "$mm_pid"
mm_pid=

echo "vm: packing the root file system" >&2
truncate -s 4G "$tmp/rootfs.img"
mkfs.ext4 -q -F -L forklet-vm -d "$root" "$tmp/rootfs.img"
rm -rf --one-file-system "$root"
rm -rf "$dir"
mkdir "$dir"
mv "$tmp/rootfs.img" "$tmp/vmlinuz" "$tmp/initrd.img" "$dir/"
echo "$packages" >"$dir/packages"
touch "$dir/done"
echo "vm: image built in $(( $(date +%s) - start )) s" >&2
# Images of other inputs unused for two weeks go (each holds about 1 GB).
find "$cache" -mindepth 2 -maxdepth 2 -path "$cache/debian12-*/done" -mtime +14 -printf '%h\0' |
  xargs -0 -r rm -rf
echo "$dir"
