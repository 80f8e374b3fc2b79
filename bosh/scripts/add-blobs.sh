#!/usr/bin/env bash
# Makes the two blobs the release needs and adds them: auditfwd with its production dependencies
# (from `npm pack` + `npm install`), and a Node.js 20 build you downloaded (argument 1).
# Usage: bosh/scripts/add-blobs.sh ~/Downloads/node-v20.x.y-linux-x64.tar.xz
set -euo pipefail
node_tarball=${1:?usage: $0 node-v20.x.y-linux-x64.tar.xz}
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$repo" && npm pack --pack-destination "$work" >/dev/null)
mkdir -p "$work/package"
tar -xzf "$work"/auditfwd-*.tgz -C "$work"
cp "$repo/package-lock.json" "$work/package/"
(cd "$work/package" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund >/dev/null)
tar -czf "$work/auditfwd-bundle.tgz" -C "$work" package
cd "$repo/bosh"
bosh add-blob "$work/auditfwd-bundle.tgz" auditfwd/auditfwd-bundle.tgz
bosh add-blob "$node_tarball" "node20/$(basename "$node_tarball")"
