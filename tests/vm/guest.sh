#!/bin/sh
# Runs inside the VM (tests/vm/run.sh hands it in through the shared folder /mnt/host): installs
# the forklet .deb with apt as an operator would, then runs the checks (checks.py) against the
# forkletd that systemd starts from the unit the package installed.
cd /mnt/host || exit 1
echo "vm-guest: $(uname -r), PID 1 $(cat /proc/1/comm), $(stat -fc %T /sys/fs/cgroup) at /sys/fs/cgroup, $(nproc) CPUs, $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) MB"
deb=$(ls forklet_*.deb | head -n1)
# Offline (the guest has no network): the image holds what the .deb depends on, nothing more.
if DEBIAN_FRONTEND=noninteractive apt-get install -y -q "/mnt/host/$deb" >apt.log 2>&1; then
  echo "PASS install: apt-get install ./$deb (no manual steps)"
else
  echo "FAIL install: apt-get install ./$deb failed:"
  tail -n 20 apt.log
  exit 1
fi
python3 -u /mnt/host/checks.py
rc=$?
journalctl -u forkletd --no-pager -o short-monotonic >journal.log 2>&1
journalctl -u forkletd -p warning --no-pager -o cat _COMM=forkletd 2>/dev/null | sed 's/^/info: forkletd warned: /' | head -n 20
echo "info: systemd-analyze security forkletd: $(systemd-analyze security forkletd 2>&1 | tail -n 1)"
exit $rc
