#!/usr/bin/env bash
# Installs CRIU for forklet's snapshots into a private prefix (idempotent).
#
# Debian 12's criu 3.17 fails on this kernel ("vdso: Unexpected rt vDSO area bounds"); Debian 13's
# 4.1 works. Its .debs and those of its libraries (glibc included) are fetched with a private apt
# configuration that leaves the system's apt state alone, unpacked with dpkg -x into
# $PREFIX/root, and run through that root's own loader by the wrapper $PREFIX/bin/criu. Nothing
# is installed over the system's packages.
#
# Usage: tools/setup-criu.sh [PREFIX]   (default /opt/forklet/criu)
# A system criu that passes `criu check` is used as it is and nothing is installed.
set -euo pipefail

PREFIX="${1:-${FORKLET_CRIU_PREFIX:-/opt/forklet/criu}}"
SUITE="${FORKLET_CRIU_SUITE:-trixie}"
WRAPPER="$PREFIX/bin/criu"

passes_check() { "$1" check >/dev/null 2>&1; }

if [[ -x "$WRAPPER" ]] && passes_check "$WRAPPER"; then
  echo "forklet setup: criu $("$WRAPPER" --version | sed -n 's/^Version: //p') at $WRAPPER"
  exit 0
fi
if command -v criu >/dev/null && passes_check "$(command -v criu)"; then
  echo "forklet setup: system criu passes 'criu check'; using $(command -v criu)"
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
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs" "$work/none"
: >"$work/status"
echo "deb [signed-by=$keyring] $mirror $SUITE main" >"$work/sources.list"
APT_OPTS=(
  -o "Dir::Etc::sourcelist=$work/sources.list" -o "Dir::Etc::sourceparts=$work/none"
  -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
  -o "Dir::State::status=$work/status"  # empty: resolve the full dependency closure
  -o "Dir::Etc::preferences=$work/none" -o "Dir::Etc::preferencesparts=$work/none"
  -o "APT::Sandbox::User=root" -qq
)
echo "forklet setup: fetching criu from $mirror $SUITE into $PREFIX"
apt-get "${APT_OPTS[@]}" update
mapfile -t debs < <(apt-cache "${APT_OPTS[@]}" depends --recurse --no-recommends --no-suggests \
                      --no-conflicts --no-breaks --no-replaces --no-enhances --no-pre-depends criu \
                    | grep -v '^[[:space:]<]' | sort -u)
(cd "$work/debs" && apt-get "${APT_OPTS[@]}" download "${debs[@]}")

rm -rf "$PREFIX.new"
mkdir -p "$PREFIX.new/root" "$PREFIX.new/bin"
for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$PREFIX.new/root"; done
cat >"$PREFIX.new/bin/criu" <<'EOF'
#!/bin/sh
# criu from a private root, run through that root's own loader and libraries.
root="$(dirname "$(dirname "$(readlink -f "$0")")")/root"
lib="$root/usr/lib/x86_64-linux-gnu"
exec "$lib/ld-linux-x86-64.so.2" --library-path "$lib" "$root/usr/sbin/criu" "$@"
EOF
chmod 0755 "$PREFIX.new/bin/criu"
if ! "$PREFIX.new/bin/criu" check; then
  echo "forklet setup: criu from $SUITE does not pass 'criu check' here; snapshots stay off" >&2
  rm -rf "$PREFIX.new"
  exit 0
fi
rm -rf "$PREFIX"
mv "$PREFIX.new" "$PREFIX"
echo "forklet setup: criu $("$WRAPPER" --version | sed -n 's/^Version: //p') at $WRAPPER"
