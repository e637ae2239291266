"""Session fixtures for the transport and image-command tests: real images built by the
engine here, their `docker save` archives, and a store with them loaded (read-only use)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import testbed
from tests.transports import imagekit


def slimage(
    *args: str, root: Path | None = None, input: bytes | None = None, check: bool = False
) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess (exit codes and stderr as a user sees them)."""
    env = dict(os.environ)
    if root is not None:
        env["SLIMAGE_HOME"] = str(root)
    res = subprocess.run(
        [sys.executable, "-m", "slimage.cli.main", *args],
        input=input,
        capture_output=True,
        env=env,
    )
    if check and res.returncode != 0:
        raise AssertionError(f"slimage {' '.join(args)} failed: {res.stderr.decode()}")
    return res


@pytest.fixture(scope="session")
def tricky_legacy(debian_image: str) -> str:
    return imagekit.ensure_tricky("slimage-test/tricky:legacy", buildkit=False)


@pytest.fixture(scope="session")
def tricky_buildkit(debian_image: str) -> str:
    return imagekit.ensure_tricky("slimage-test/tricky:buildkit", buildkit=True)


@pytest.fixture(scope="session")
def tricky_legacy_archive(tricky_legacy: str) -> Path:
    return testbed.saved_archive(tricky_legacy, "tricky-legacy")


@pytest.fixture(scope="session")
def tricky_buildkit_archive(tricky_buildkit: str) -> Path:
    return testbed.saved_archive(tricky_buildkit, "tricky-buildkit")


@pytest.fixture(scope="session")
def loaded_store(
    tmp_path_factory: pytest.TempPathFactory,
    vanilla_archive: Path,
    tricky_legacy_archive: Path,
    tricky_buildkit_archive: Path,
) -> Path:
    """One store with the vanilla and tricky images loaded by `slimage load`."""
    root = tmp_path_factory.mktemp("loaded") / "store"
    for archive in (vanilla_archive, tricky_legacy_archive, tricky_buildkit_archive):
        slimage("load", "-i", str(archive), root=root, check=True)
    return root
