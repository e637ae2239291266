"""Parser speed: `slimage.dockerfile.parse` over the generated corpus, in-process.

    python bench/dockerfile_parse.py [N_FILES]

Prints total and per-file wall time (best of several rounds) for the raw parser and for
the strict parse (plus BuildKit's instructions-layer checks). The comparison with
hadolint (parse + lint, process per run) lives in the lint benchmark.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dockerfile_corpus import write_corpus  # noqa: E402

from slimage.dockerfile import parse  # noqa: E402


def best_of(rounds: int, texts: list[str], strict: bool) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for text in texts:
            parse(text, strict=strict)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    with tempfile.TemporaryDirectory() as tmp:
        texts = [p.read_text() for p in write_corpus(Path(tmp), n)]
    lines = sum(t.count("\n") for t in texts)
    print(f"corpus: {n} Dockerfiles, {lines} lines, {sum(map(len, texts)) / 1024:.0f} KiB")
    for strict in (False, True):
        secs = best_of(7, texts, strict)
        label = "parse (strict)" if strict else "parse (raw)"
        print(
            f"{label:15} {secs * 1000:8.2f} ms total  {secs * 1e6 / n:8.1f} us/file  "
            f"{lines / secs / 1000:8.0f} k lines/s"
        )


if __name__ == "__main__":
    main()
