"""Shared fixtures: an isolated store per test, and the real Docker engine when present."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.support import testbed


@pytest.fixture(scope="session", autouse=True)
def _private_default_store(tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test writes to the real ~/.local/share/slimage or ~/.cache: the default store
    (and its caches) and lint's ShellCheck cache are session temp dirs, unless a test
    picks its own with `store_root`."""
    os.environ["SLIMAGE_HOME"] = str(tmp_path_factory.mktemp("default-store"))
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))


@pytest.fixture
def store_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own SLIMAGE_HOME, so tests never see each other's images."""
    root = tmp_path / "store"
    monkeypatch.setenv("SLIMAGE_HOME", str(root))
    return root


@pytest.fixture(scope="session")
def docker_engine() -> str:
    if not testbed.docker_ok():
        pytest.skip("needs a running Docker engine (dockerd --bridge=none --iptables=false)")
    return testbed.DOCKER


@pytest.fixture(scope="session")
def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")


@pytest.fixture(scope="session")
def debian_image(docker_engine: str) -> str:
    if shutil.which("debootstrap") is None and not testbed.image_exists(testbed.DEBIAN_IMAGE):
        pytest.skip("needs debootstrap to make the slimage-test/debian:bookworm base")
    return testbed.ensure_debian_base()


@pytest.fixture(scope="session")
def node8_image(debian_image: str) -> str:
    return testbed.ensure_node8()


@pytest.fixture(scope="session")
def vanilla_image(node8_image: str) -> str:
    return testbed.ensure_vanilla()


@pytest.fixture(scope="session")
def vanilla_archive(vanilla_image: str) -> Path:
    return testbed.saved_archive(vanilla_image, "node-vanilla")
