#!/usr/bin/env bash
# The README's first command: set up a fresh Debian 12 machine (as root), build the example
# app's image with slimage from Debian packages alone, and run the main job on it.
# Needs nothing beside this clone.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$here/scripts/install-deps.sh"
image="$(bash "$here/scripts/example-images.sh")"
echo "== where the bytes of $image are"
slimage analyze "$image"
echo "== the article's experiment on the example app: every variant built, run, probed, measured"
slimage optimize "$here/examples/hello-express" --html "$here/optimize-report.html"
