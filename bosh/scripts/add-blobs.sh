#!/usr/bin/env bash
# Makes the two blobs the release needs and adds them: auditfwd with its production dependencies
# (from `npm pack` + `npm install`), and a Node.js 24 (LTS) build you downloaded (argument 1).
# Usage: bosh/scripts/add-blobs.sh ~/Downloads/node-v24.x.y-linux-x64.tar.xz
set -euo pipefail
node_tarball=${1:?usage: $0 node-v24.x.y-linux-x64.tar.xz}
case "$(basename "$node_tarball")" in
  node-v24.*-linux-x64.tar.xz) ;;
  *) echo "$0: the node24 package takes a Node.js 24 linux-x64 build (node-v24.x.y-linux-x64.tar.xz), not $node_tarball" >&2; exit 2 ;;
esac
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
bosh add-blob "$node_tarball" "node24/$(basename "$node_tarball")"
