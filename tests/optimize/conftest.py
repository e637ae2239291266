"""Fixtures for `slimage optimize`: one session store with the example's node base and the
`slimage base` presets the variants need, built once per session.

- the node base: the testbed's `slimage-test/node:8` stand-in (Debian's nodejs + npm on
  the debootstrap bookworm, trusting the host CA so `npm install` works here), brought in
  from the engine and tagged `slimage-example/node:bookworm`, the name
  examples/hello-express's FROM uses;
- the presets (`nodejs`, `musl`) from the real Debian mirror, .debs cached across runs.

Apps listen on port 3000; the runtime tests' lock keeps other sessions off it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.builder.conftest import _unmount_under
from tests.runtime.conftest import port_3000

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NODE_BASE = "slimage-example/node:bookworm"


@pytest.fixture(scope="session")
def optimize_store(
    tmp_path_factory: pytest.TempPathFactory, need_root: None, node8_image: str
) -> Iterator[object]:
    from slimage.store.images import ingest
    from slimage.store.store import Store
    from slimage.transports.docker_archive import open_archive
    from tests.bases.support import CACHE, need_debian
    from tests.support import testbed

    if not os.path.exists("/usr/sbin/runc"):
        pytest.skip("needs runc")
    need_debian()
    root = tmp_path_factory.mktemp("optimize-store")
    store = Store(root)
    path = testbed.saved_archive(node8_image, node8_image.replace("/", "_").replace(":", "_"))
    for image in open_archive(path):
        ingest(store, image, tags=[NODE_BASE])
    from slimage.bases.builder import BaseSpec, build, make_repository, plan
    from slimage.optimize.variants import preset_tag

    for preset in ("nodejs", "musl"):
        spec = BaseSpec(preset=preset)
        lock, _ = plan(spec, make_repository(spec, CACHE))
        build(lock, store, tags=[preset_tag(preset)], cache_dir=CACHE)
    yield store
    _unmount_under(root)


def cli(store: object, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, SLIMAGE_HOME=str(store.root))  # type: ignore[attr-defined]
    return subprocess.run(
        [sys.executable, "-m", "slimage.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def node_run(optimize_store: object, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """`slimage optimize` on examples/hello-express, once: JSON, --write and --html."""
    import json

    out = tmp_path_factory.mktemp("optimize-node")
    ctx = out / "hello-express"
    shutil.copytree(EXAMPLES / "hello-express", ctx)
    with port_3000():
        r = cli(
            optimize_store,
            "optimize",
            str(ctx),
            "--name",
            "slimage-test/hello-express",
            "--json",
            "--write",
            str(out / "Dockerfile.recommended"),
            "--html",
            str(out / "report.html"),
        )
    assert r.returncode == 0, r.stderr[-3000:]
    return {
        "report": json.loads(r.stdout),
        "dir": out,
        "context": ctx,
        "stderr": r.stderr,
    }
