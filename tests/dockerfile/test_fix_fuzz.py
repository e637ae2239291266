"""Mutated Dockerfiles never crash lint or fix, and fix stays a fixed point.

Lines of real Dockerfiles (our corpora and BuildKit's parser test files) are deleted,
duplicated, or get a quote, backquote, `$(`, operator, comment or continuation spliced
in. Whatever comes out, lint and fix either work or raise a SlimageError (a one-line
message), and running fix on its own output changes nothing.
"""

from __future__ import annotations

import random
from pathlib import Path

from slimage.dockerfile.fix import fix_text
from slimage.dockerfile.lint import lint_text
from slimage.errors import SlimageError

ROOT = Path(__file__).resolve().parents[1]
SHARED = (ROOT.parent / ".." / "shared").resolve()
SPLICES = ["\\", '"', "'", "$(", "`", " && ", ";", "|", "#", "<<EOF", "\t", "--mount=x", " || "]


def _sources() -> list[str]:
    files = sorted((ROOT / "corpus" / "lint").glob("*.Dockerfile"))
    files += sorted((ROOT / "corpus" / "fix").glob("*/Dockerfile"))
    files += sorted((SHARED / "conformance" / "buildkit-parser" / "testfiles").glob("*/Dockerfile"))
    return [p.read_text(encoding="utf-8", errors="surrogateescape") for p in files]


def _mutate(rng: random.Random, text: str) -> str:
    lines = text.split("\n")
    for _ in range(rng.randint(1, 4)):
        if not lines:
            lines = [""]
        i = rng.randrange(len(lines))
        op = rng.random()
        if op < 0.3:
            del lines[i]
        elif op < 0.5:
            lines.insert(i, rng.choice(lines))
        elif op < 0.75 and lines[i]:
            j = rng.randrange(len(lines[i]))
            lines[i] = lines[i][:j] + rng.choice(SPLICES) + lines[i][j:]
        else:
            lines[i] += rng.choice([" \\", " ;", " &", " #c", " | tee x"])
    return "\n".join(lines)


def test_mutations_never_crash_and_fix_is_idempotent() -> None:
    sources = _sources()
    assert len(sources) >= 60
    rng = random.Random(20261127)
    worked = 0
    for _ in range(600):
        text = _mutate(rng, rng.choice(sources))
        try:
            lint_text(text)
            result = fix_text(text)
        except SlimageError as err:
            assert "\n" not in str(err) and "internal" not in str(err), str(err)
            continue
        again = fix_text(result.fixed)
        assert again.fixed == result.fixed, f"not a fixed point for:\n{text}"
        worked += 1
    assert worked >= 200  # most mutations still parse, so the fixer really ran
