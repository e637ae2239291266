"""The no-op rebuild answered before the builder loads (slimage.builder.noop): taken only
when nothing the build could read has changed, and never when something has."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from tests.builder.conftest import cli_env
from tests.support import testbed

FAST = "nothing changed since the last identical build"


def _build(store, ctx: Path, *extra: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    """(image ID, stderr) of `slimage build --json -t noop-test:1 CTX`."""
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "slimage.cli.main",
            "build",
            "--json",
            "-t",
            "noop-test:1",
            *extra,
            str(ctx),
        ],
        env=cli_env(store),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    import json

    return json.loads(res.stdout)["image_id"], res.stderr


def _fast(store, ctx: Path, *extra: str) -> tuple[str, bool]:  # type: ignore[no-untyped-def]
    res = subprocess.run(
        [sys.executable, "-m", "slimage.cli.main", "build", "-t", "noop-test:1", *extra, str(ctx)],
        env=cli_env(store),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    image_id, _ = _build(store, ctx, *extra)  # now recorded either way; read the ID back
    return image_id, FAST in res.stderr


def test_fast_only_when_nothing_changed(build_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        f"FROM {testbed.DEBIAN_IMAGE}\nARG V=1\nCOPY app.txt /app/\nRUN cat /app/app.txt > /copy\n"
    )
    (ctx / "app.txt").write_text("one\n")
    first, _ = _build(build_store, ctx)

    again, fast = _fast(build_store, ctx)
    assert fast and again == first

    # Same bytes, new mtime/ctime: the fast check misses, the real cache still hits.
    time.sleep(0.01)
    os.utime(ctx / "app.txt")
    same, fast = _fast(build_store, ctx)
    assert not fast and same == first

    # A changed source file: a new image, built for real.
    (ctx / "app.txt").write_text("two\n")
    changed, fast = _fast(build_store, ctx)
    assert not fast and changed != first

    # A new build arg, an ignored file appearing, a new Dockerfile: all miss.
    _, fast = _fast(build_store, ctx, "--build-arg", "V=2")
    assert not fast
    (ctx / ".dockerignore").write_text("junk\n")
    (ctx / "junk").write_text("x")
    _, fast = _fast(build_store, ctx)
    assert not fast
    _, fast = _fast(build_store, ctx)
    assert fast

    # The result's tag moved elsewhere: miss, and the build puts it back.
    subprocess.run(
        [sys.executable, "-m", "slimage.cli.main", "tag", testbed.DEBIAN_IMAGE, "noop-test:1"],
        env=cli_env(build_store),
        check=True,
    )
    back, fast = _fast(build_store, ctx)
    assert not fast and back == changed


def test_a_retagged_base_misses(build_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = cli_env(build_store)
    cli = [sys.executable, "-m", "slimage.cli.main"]
    subprocess.run([*cli, "tag", testbed.DEBIAN_IMAGE, "noop-base:1"], env=env, check=True)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM noop-base:1\nRUN echo hi > /hi\n")
    first, _ = _build(build_store, ctx)
    _, fast = _fast(build_store, ctx)
    assert fast
    # Point the base tag at another image: the same Dockerfile now means another build.
    subprocess.run([*cli, "tag", testbed.NODE8_IMAGE, "noop-base:1"], env=env, check=True)
    other, fast = _fast(build_store, ctx)
    assert not fast and other != first
