"""Dockerfile text -> `Dockerfile` model, following BuildKit's parser (work in progress)."""

from __future__ import annotations

from pathlib import Path

from slimage.dockerfile.model import Dockerfile


def parse(text: str, *, path: str = "Dockerfile", strict: bool = True) -> Dockerfile:
    """Parse Dockerfile text. `strict` also applies BuildKit's instructions-layer checks
    (unknown flags, missing arguments); the raw tree (`strict=False`) is what BuildKit's
    parser alone accepts. Raises `slimage.errors.DockerfileError` with FILE:LINE:COL."""
    raise NotImplementedError


def parse_file(path: str | Path, *, strict: bool = True) -> Dockerfile:
    """Read and parse a Dockerfile from disk (UTF-8, BOM tolerated)."""
    raise NotImplementedError
