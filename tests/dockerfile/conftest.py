"""Fixtures for the Dockerfile frontend tests: where the shared conformance files live."""

from __future__ import annotations

from pathlib import Path

import pytest

# tests/dockerfile/conftest.py -> repo root is parents[2]; `shared/` sits beside the repo
# (/work/main + /work/shared locally, `../shared` in CI).
SHARED = (Path(__file__).resolve().parents[2] / ".." / "shared").resolve()
BUILDKIT_CASES = SHARED / "conformance" / "buildkit-parser"


@pytest.fixture(scope="session")
def buildkit_cases() -> Path:
    # Deliberately an error, not a skip: conformance must never silently drop out.
    assert BUILDKIT_CASES.is_dir(), f"BuildKit parser test files not found at {BUILDKIT_CASES}"
    return BUILDKIT_CASES
