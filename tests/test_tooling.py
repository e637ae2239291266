"""The project's own hygiene, enforced by CI: ruff over everything, mypy over the core."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = [
    "src/slimage/errors.py",
    "src/slimage/image.py",
    "src/slimage/mutate.py",
    "src/slimage/streams.py",
    "src/slimage/oci",
    "src/slimage/layers",
    "src/slimage/store",
]


def test_ruff_is_clean() -> None:
    if shutil.which("ruff") is None:
        pytest.skip("ruff is not installed (pip install -e '.[test]')")
    res = subprocess.run(
        ["ruff", "check", "src", "tests", "bench"], cwd=ROOT, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_mypy_is_clean_on_the_core() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "mypy", *CORE], cwd=ROOT, capture_output=True, text=True
    )
    if "No module named mypy" in res.stderr:
        pytest.skip("mypy is not installed (pip install -e '.[test]')")
    assert res.returncode == 0, res.stdout + res.stderr
