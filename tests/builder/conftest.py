"""Fixtures for builder tests: one store per session, holding the bases Docker also has."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.builder import standins
from tests.support import testbed


def _runc_ok() -> bool:
    return os.path.exists("/usr/sbin/runc") or shutil.which("runc") is not None


@pytest.fixture(scope="session")
def builder_ready(need_root: None) -> None:
    if not _runc_ok():
        pytest.skip("needs runc")
    if "overlay" not in Path("/proc/filesystems").read_text():
        pytest.skip("needs overlayfs")


def load_from_docker(store, ref: str) -> None:  # type: ignore[no-untyped-def]
    """`docker save REF` + the transports' archive reader + ingest: how images Docker has
    come into slimage's store."""
    from slimage.store.images import ingest
    from slimage.transports.docker_archive import open_archive

    path = testbed.saved_archive(ref, ref.replace("/", "_").replace(":", "_"))
    for image in open_archive(path):
        ingest(store, image, tags=[ref])


@pytest.fixture(scope="session")
def build_store(
    tmp_path_factory: pytest.TempPathFactory, builder_ready: None, node8_image: str
) -> Iterator[object]:
    """A store with slimage-test/debian:bookworm, the node:8 stand-in and the distroless/alpine stand-ins."""
    from slimage.store.store import Store

    root = tmp_path_factory.mktemp("build-store")
    store = Store(root)
    for ref in (
        testbed.DEBIAN_IMAGE,
        node8_image,
        standins.ensure_distroless(),
        standins.ensure_alpine(),
    ):
        load_from_docker(store, ref)
    yield store
    _unmount_under(root)


def cli_env(store) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Environment for running the `slimage` CLI against STORE in a subprocess."""
    return dict(os.environ, SLIMAGE_HOME=str(store.root))


def _unmount_under(root: Path) -> None:
    from slimage.runtime.overlay import unmount

    with open("/proc/self/mountinfo") as fh:
        targets = [line.split()[4] for line in fh if str(root) in line.split()[4]]
    for t in sorted(targets, key=len, reverse=True):
        unmount(t)


@pytest.fixture
def busybox_store(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A fresh store holding only a one-layer busybox image (`tests.adversarial.
    test_runtime.IMAGE`): small builds that need a shell but no Debian base."""
    from slimage.store.store import Store
    from tests.adversarial.test_runtime import make_busybox_image

    root = tmp_path / "store"
    make_busybox_image(root, tmp_path)
    return Store(root)
