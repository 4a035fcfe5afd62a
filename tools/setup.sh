#!/usr/bin/env bash
# Installs what forklet needs on Debian 12 (idempotent) and builds it into build/.
# Usage: tools/setup.sh [--no-build]
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libseccomp-dev libcap-dev libcgroup-dev libzip-dev libssl-dev libsqlite3-dev
  libboost-dev libboost-system-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev libsystemd-dev
  systemd dpkg-dev  # systemd-analyze verify on the unit; dpkg-shlibdeps for cpack -G DEB
  python3 awscli python3-boto3 bubblewrap zip unzip iproute2 procps curl
  erofs-utils  # mkfs.erofs: each code revision as a read-only file system of its own (docs/attacks.md)
  nftables  # nft: the rules of forklet's own table for instances' egress (docs/network.md)
  python3-matplotlib python3-numpy python3-prometheus-client
  clang libclang-rt-dev  # libFuzzer and the sanitizers: tests/fuzz
  nginx-light  # forklet-bench's HTTP floor (started by the bench on its own port; never as a service)
  qemu-system-x86 mmdebstrap e2fsprogs  # the VM suite: tests/vm (a Debian 12 guest under QEMU)
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "forklet setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Packages are installed, not started: no service of theirs (nginx's on port 80) runs on this host.
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
  if [ -n "$policy" ]; then rm -f "$policy"; trap - EXIT; fi
else
  echo "forklet setup: all Debian packages present"
fi

# CRIU for snapshots (docs/snapshots.md): Debian 12's fails on current kernels; a private copy
# of Debian 13's. forklet works without it, so a failure here is only a warning.
tools/setup-criu.sh || echo "forklet setup: warning: criu not installed; snapshots stay off" >&2

# The AWS SDK for JavaScript v3 for Node.js functions (README, Node.js), from npm. Functions that
# do not import it work without; a failure here is only a warning.
tools/setup-node-sdk.sh || echo "forklet setup: warning: the AWS SDK for JavaScript not installed" >&2

[[ "${1:-}" == "--no-build" ]] && exit 0
werror=OFF
[[ "${CI:-}" == true ]] && werror=ON  # CI keeps the build at zero warnings
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFORKLET_WERROR=$werror >/dev/null
cmake --build build -j"$(nproc)"
