#!/usr/bin/env bash
# Builds the example app's images into slimage's store with slimage itself, from nothing
# but Debian's package mirror: no container registry is needed (or reachable here).
#   slimage-example/debian:bookworm   full Debian (mmdebstrap/debootstrap), like debian:bookworm
#   slimage-example/node:bookworm     + Debian's nodejs and npm, like node's official image
#   slimage-example/hello-express     the article's "vanilla" app image
# Each step is skipped when its image is already in the store. Needs root (builds run runc).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
have() { slimage inspect "$1" >/dev/null 2>&1; }

if ! have slimage-example/debian:bookworm; then
  slimage base build debian --full -t slimage-example/debian:bookworm >/dev/null
fi
if ! have slimage-example/node:bookworm; then
  ctx="$(mktemp -d)"
  trap 'rm -rf "$ctx"' EXIT
  cp "$here/examples/node-base/Dockerfile" "$ctx/"
  cp /etc/ssl/certs/ca-certificates.crt "$ctx/host-ca.crt"
  slimage build -q --network host -t slimage-example/node:bookworm "$ctx" >/dev/null
fi
if ! have slimage-example/hello-express; then
  slimage build -q --network host -t slimage-example/hello-express "$here/examples/hello-express" >/dev/null
fi
echo slimage-example/hello-express
