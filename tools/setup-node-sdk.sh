#!/usr/bin/env bash
# The AWS SDK for JavaScript v3, as Lambda's Node.js runtimes ship it: @aws-sdk/client-s3,
# client-dynamodb, client-lambda (and lib-dynamodb) from npm into /usr/local/lib/forklet/nodejs-sdk
# (never into the repository). The Node sandbox sees the host's /usr read-only; the runtime dir's
# node_modules link (/var/runtime/node_modules, on NODE_PATH) points there. Idempotent.
# Usage: tools/setup-node-sdk.sh [DIR]
set -euo pipefail
DIR="${1:-/usr/local/lib/forklet/nodejs-sdk}"
VERSION=3.1178.0
PACKAGES=(@aws-sdk/client-s3@$VERSION @aws-sdk/client-dynamodb@$VERSION @aws-sdk/client-lambda@$VERSION
          @aws-sdk/lib-dynamodb@$VERSION)

have=""
if [ -f "$DIR/node_modules/@aws-sdk/client-lambda/package.json" ]; then
  have=$(node -p "require('$DIR/node_modules/@aws-sdk/client-lambda/package.json').version" 2>/dev/null || true)
fi
if [ "$have" = "$VERSION" ] && [ -d "$DIR/node_modules/@aws-sdk/client-s3" ] &&
   [ -d "$DIR/node_modules/@aws-sdk/client-dynamodb" ] && [ -d "$DIR/node_modules/@aws-sdk/lib-dynamodb" ]; then
  echo "forklet setup: the AWS SDK for JavaScript $VERSION is in $DIR"
  exit 0
fi
command -v npm >/dev/null || { echo "forklet setup: npm is missing (apt-get install npm)" >&2; exit 1; }
echo "forklet setup: installing the AWS SDK for JavaScript $VERSION into $DIR"
# Built aside and swapped in, so that a failed install leaves the previous one whole.
mkdir -p "$(dirname "$DIR")"
tmp=$(mktemp -d "$DIR.tmp-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
echo '{"name": "forklet-nodejs-sdk", "private": true}' >"$tmp/package.json"
npm install --prefix "$tmp" --omit=dev --no-audit --no-fund --no-package-lock --loglevel=error "${PACKAGES[@]}"
chmod -R a+rX "$tmp"
rm -rf "$DIR.old"
[ -e "$DIR" ] && mv "$DIR" "$DIR.old"
mv "$tmp" "$DIR"
trap - EXIT
rm -rf "$DIR.old"
