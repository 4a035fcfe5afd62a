#!/usr/bin/env bash
# Installs CRIU for forklet's snapshots into a private prefix (idempotent), and keeps it only if it
# really dumps and restores a process on this kernel.
#
# `criu check` is not proof: Debian 12's criu 3.17 fails on current kernels, and Debian 13's 4.1.1
# passes `criu check` but its `criu dump` hangs on some kernels (6.18). So a copy is kept only after
# a real checkpoint and restore of a trivial process, each under a deadline (tools/criu-selftest.sh).
# Suites are tried in order (FORKLET_CRIU_SUITES, default "sid trixie": Debian unstable's 4.2.1
# first). Their .debs and those of their libraries (glibc included) are fetched with a private apt
# configuration that leaves the system's apt state alone, unpacked with dpkg -x into $PREFIX/root,
# and run through that root's own loader by the wrapper $PREFIX/bin/criu. Nothing is installed over
# the system's packages.
#
# Usage: tools/setup-criu.sh [PREFIX]   (default /opt/forklet/criu)
# Writes $PREFIX/suite (the suite it came from) and $PREFIX/selftest (the self-test's verdict).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

PREFIX="${1:-${FORKLET_CRIU_PREFIX:-/opt/forklet/criu}}"
read -r -a SUITES <<<"${FORKLET_CRIU_SUITES:-${FORKLET_CRIU_SUITE:-sid trixie}}"
WRAPPER="$PREFIX/bin/criu"

selftest() {  # criu executable, where to write the verdict
  local verdict rc=0
  verdict="$("$here/criu-selftest.sh" "$1" 2>&1)" || rc=$?
  printf '%s\n' "$verdict" >"$2"
  echo "forklet setup: criu self-test: $verdict"
  return $rc
}

# An installed copy from the preferred suite that still passes the self-test stays as it is.
if [[ -x "$WRAPPER" && "$(cat "$PREFIX/suite" 2>/dev/null)" == "${SUITES[0]}" ]] &&
   selftest "$WRAPPER" "$PREFIX/selftest"; then
  echo "forklet setup: criu $("$WRAPPER" --version | sed -n 's/^Version: //p') at $WRAPPER"
  exit 0
fi

# The system's Debian mirror serves the other suites too.
mirror="$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian\)$/\1/p' \
            /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)"
if [[ -z "$mirror" ]]; then
  mirror="$(sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]*\/debian\)[[:space:]].*/\2/p' \
              /etc/apt/sources.list 2>/dev/null | head -n1)"
fi
[[ -n "$mirror" ]] || { echo "forklet setup: no Debian mirror in /etc/apt/sources.list*; criu not installed" >&2; exit 1; }
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

work="$(mktemp -d /tmp/forklet-criu-setup.XXXXXX)"
trap 'rm -rf "$work" "$PREFIX.new"' EXIT

install_suite() {  # suite -> $PREFIX.new, a wrapper that passed the self-test
  local suite=$1 w="$work/$1"
  mkdir -p "$w/lists/partial" "$w/cache/archives/partial" "$w/debs" "$w/none"
  : >"$w/status"
  echo "deb [signed-by=$keyring] $mirror $suite main" >"$w/sources.list"
  local opts=(
    -o "Dir::Etc::sourcelist=$w/sources.list" -o "Dir::Etc::sourceparts=$w/none"
    -o "Dir::State::Lists=$w/lists" -o "Dir::Cache=$w/cache"
    -o "Dir::State::status=$w/status"  # empty: resolve the full dependency closure
    -o "Dir::Etc::preferences=$w/none" -o "Dir::Etc::preferencesparts=$w/none"
    -o "APT::Sandbox::User=root" -qq
  )
  echo "forklet setup: fetching criu from $mirror $suite into $PREFIX"
  apt-get "${opts[@]}" update || return 1
  local debs
  mapfile -t debs < <(apt-cache "${opts[@]}" depends --recurse --no-recommends --no-suggests \
                        --no-conflicts --no-breaks --no-replaces --no-enhances --no-pre-depends criu \
                      | grep -v '^[[:space:]<]' | sort -u)
  ((${#debs[@]})) || return 1
  (cd "$w/debs" && apt-get "${opts[@]}" download "${debs[@]}") || return 1
  rm -rf "$PREFIX.new"
  mkdir -p "$PREFIX.new/root" "$PREFIX.new/bin"
  local deb
  for deb in "$w"/debs/*.deb; do dpkg-deb -x "$deb" "$PREFIX.new/root"; done
  cat >"$PREFIX.new/bin/criu" <<'EOF'
#!/bin/sh
# criu from a private root, run through that root's own loader and libraries.
root="$(dirname "$(dirname "$(readlink -f "$0")")")/root"
lib="$root/usr/lib/x86_64-linux-gnu"
exec "$lib/ld-linux-x86-64.so.2" --library-path "$lib" "$root/usr/sbin/criu" "$@"
EOF
  chmod 0755 "$PREFIX.new/bin/criu"
  echo "$suite" >"$PREFIX.new/suite"
  selftest "$PREFIX.new/bin/criu" "$work/selftest.last" || return 1
  cp "$work/selftest.last" "$PREFIX.new/selftest"
}

for suite in "${SUITES[@]}"; do
  if install_suite "$suite"; then
    rm -rf "$PREFIX"
    mv "$PREFIX.new" "$PREFIX"
    echo "forklet setup: criu $("$WRAPPER" --version | sed -n 's/^Version: //p') ($suite) at $WRAPPER"
    exit 0
  fi
  echo "forklet setup: criu from $suite does not dump and restore here" >&2
done
# Nothing works: leave no copy that forkletd could pick up, and say why where the tests look.
rm -rf "$PREFIX"
mkdir -p "$PREFIX"
cp "$work"/selftest.last "$PREFIX/selftest" 2>/dev/null || echo "no suite passed the self-test" >"$PREFIX/selftest"
echo "forklet setup: no criu passes the self-test here; snapshots stay off" >&2
exit 1
