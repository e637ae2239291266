#!/usr/bin/env bash
# The README's first command: set up a fresh machine, then run the main job on a real image.
# It builds the seed's node-vanilla image (Debian bookworm from debootstrap, plus Debian's
# nodejs and npm standing in for node:8), saves it as a docker archive, and asks slimage
# where its bytes are.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$here/scripts/install-deps.sh"
cd "$here"
archive="$(python3 -m tests.support.testbed)"
echo "seed image archive: $archive"
slimage analyze "$archive"
