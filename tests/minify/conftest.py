"""Fixtures for minify: the example apps as images, built locally and cached in the engine.

- `slimage-test/python:3.11`: the debootstrap `debian:bookworm` base (tests/support/testbed)
  plus Debian's python3, no recommends;
- `slimage-test/python-web:1`: examples/python-web on it;
- `slimage-test/static-server:1`: examples/static-server (musl-gcc -static) on bookworm.

Each comes into one session store the way images Docker has do (docker save + ingest).
The apps listen on fixed ports (8080, 8081): a file lock keeps other sessions' runs of the
same apps from colliding with ours.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.builder.conftest import _unmount_under, load_from_docker
from tests.support import testbed

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PYTHON_IMAGE = "slimage-test/python:3.11"


def _content_tag(name: str) -> str:
    """A tag that changes when the example's files do, so an edit is rebuilt."""
    import hashlib

    h = hashlib.sha256()
    for f in sorted((EXAMPLES / name).rglob("*")):
        if f.is_file() and "__pycache__" not in f.parts:
            h.update(str(f.relative_to(EXAMPLES)).encode() + b"\0" + f.read_bytes())
    return f"slimage-test/{name}:{h.hexdigest()[:12]}"


PYWEB_IMAGE = _content_tag("python-web")
STATIC_IMAGE = _content_tag("static-server")
PYTHON_DOCKERFILE = f"""\
FROM {testbed.DEBIAN_IMAGE}
RUN apt-get update && apt-get install -y --no-install-recommends python3 \\
    && rm -rf /var/lib/apt/lists/*
CMD ["python3"]
"""
LOCK = "/tmp/slimage-minify-ports.lock"


def ensure_python_base(tmp: Path) -> str:
    if not testbed.image_exists(PYTHON_IMAGE):
        ctx = tmp / "python-base"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(PYTHON_DOCKERFILE)
        testbed.build(PYTHON_IMAGE, ctx)
    return PYTHON_IMAGE


def ensure_example(tag: str, name: str, base: str) -> str:
    if not testbed.image_exists(tag):
        testbed.build(tag, EXAMPLES / name, None, "--build-arg", f"BASE={base}")
    return tag


@pytest.fixture(scope="session")
def minify_ready(need_root: None, debian_image: str) -> None:
    if not os.path.exists("/usr/bin/strace"):
        pytest.skip("needs strace (scripts/install-deps.sh installs it)")
    if not os.path.exists("/usr/sbin/runc"):
        pytest.skip("needs runc")


@pytest.fixture(scope="session")
def minify_store(
    tmp_path_factory: pytest.TempPathFactory, minify_ready: None, debian_image: str
) -> Iterator[object]:
    from slimage.store.store import Store

    tmp = tmp_path_factory.mktemp("minify-images")
    ensure_python_base(tmp)
    ensure_example(PYWEB_IMAGE, "python-web", PYTHON_IMAGE)
    ensure_example(STATIC_IMAGE, "static-server", debian_image)
    root = tmp_path_factory.mktemp("minify-store")
    store = Store(root)
    for ref in (PYWEB_IMAGE, STATIC_IMAGE):
        load_from_docker(store, ref)
    yield store
    _unmount_under(root)


@contextlib.contextmanager
def app_ports() -> Iterator[None]:
    with open(LOCK, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def slimage(store, *args: str, env: dict[str, str] | None = None, timeout: float = 240):  # type: ignore[no-untyped-def]
    """The real `slimage` CLI against STORE."""
    full = dict(os.environ, SLIMAGE_HOME=str(store.root), **(env or {}))
    return subprocess.run(
        ["python3", "-m", "slimage.cli.main", *args],
        capture_output=True,
        text=True,
        env=full,
        timeout=timeout,
    )
