"""Fixtures for layer extraction and writing: a place outside the target directory that a
hostile layer would love to reach, so tests can prove it stays untouched."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from tests.transports.conftest import (  # noqa: F401 - re-exported session fixtures
    tricky_buildkit,
    tricky_buildkit_archive,
    tricky_legacy,
    tricky_legacy_archive,
)


def tree_digest(root: Path) -> str:
    """Names, types, modes, owners, link targets and contents of a whole tree."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            p = Path(dirpath) / name
            st = p.lstat()
            h.update(f"{p.relative_to(root)}|{st.st_mode}|{st.st_uid}|{st.st_gid}|".encode())
            if p.is_symlink():
                h.update(os.readlink(p).encode())
            elif p.is_file():
                h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory next to the extraction target, with a file worth protecting."""
    d = tmp_path / "outside"
    d.mkdir()
    (d / "secret").write_text("do not touch\n")
    return d
