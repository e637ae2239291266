"""How hard the fuzzers push: a small, deterministic budget in CI, a long one on demand.

CI runs every property with a fixed seed (`derandomize`), so a red run is a real bug that
reproduces, never luck. `scripts/fuzz-long.sh` sets SLIMAGE_FUZZ_SCALE (say 50): then the
examples are random, many times more, and every failing example Hypothesis finds is kept
in `tests/fuzz/examples/` (commit it: the next long run replays it first).
"""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis.database import DirectoryBasedExampleDatabase, ExampleDatabase

SCALE = max(1, int(os.environ.get("SLIMAGE_FUZZ_SCALE", "1") or "1"))
LONG = SCALE > 1
DERANDOMIZE = not LONG
DATABASE: ExampleDatabase | None = (
    DirectoryBasedExampleDatabase(str(Path(__file__).resolve().parent / "examples"))
    if LONG
    else None
)


def examples(n: int) -> int:
    """N examples in CI, N x SCALE in a long run."""
    return n * SCALE
