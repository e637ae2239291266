#!/usr/bin/env bash
# A long fuzzing run: every property in tests/fuzz with SCALE times CI's examples, random
# seeds, and failing examples kept in tests/fuzz/examples/ (commit them; the next run
# replays them first). Usage: bash scripts/fuzz-long.sh [SCALE]   (default 50)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export SLIMAGE_FUZZ_SCALE="${1:-50}"
exec python3 -m pytest -q -p no:cacheprovider tests/fuzz
