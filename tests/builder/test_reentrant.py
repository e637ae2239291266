"""`build()` is reentrant: one process builds two different images one after the other,
then both at once from two worker threads, and each result is right. The library installs
no signal handler, leaves nothing mounted, and answers an identical rebuild from its no-op
record (which Python callers get too, and can turn off).

The base is a one-layer busybox image made here (the host's static busybox), so these
tests need root, runc and overlayfs but no Docker engine."""

from __future__ import annotations

import signal
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.adversarial.test_runtime import IMAGE, leftovers, pytestmark

__all__ = ["pytestmark"]


@pytest.fixture
def store(busybox_store):  # type: ignore[no-untyped-def]
    return busybox_store


def _context(tmp: Path, name: str, word: str, *, sleep: float = 0) -> Path:
    ctx = tmp / name
    ctx.mkdir()
    (ctx / "input.txt").write_text(f"{word} from the context\n")
    (ctx / "Dockerfile").write_text(
        f"FROM {IMAGE}\n"
        f"COPY input.txt /data/input.txt\n"
        f"RUN sleep {sleep} && echo {word} > /data/{word}.txt\n"
        f"ENV WHO={word}\n"
        f'LABEL built.for="{word}"\n'
    )
    return ctx


def _files(store, ref: str) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    from slimage.store.images import open_image

    out: dict[str, bytes] = {}
    for layer in open_image(store, store.resolve(ref)).layers:
        with tarfile.open(fileobj=layer.open_tar(), mode="r|") as tf:
            for m in tf:
                if m.isreg():
                    fh = tf.extractfile(m)
                    assert fh is not None
                    out[m.name.lstrip("./")] = fh.read()
    return out


def _check(store, word: str, other: str) -> None:  # type: ignore[no-untyped-def]
    from slimage.store.images import open_image

    ref = f"slimage-test/reentrant-{word}:1"
    files = _files(store, ref)
    assert files[f"data/{word}.txt"] == f"{word}\n".encode()
    assert files["data/input.txt"] == f"{word} from the context\n".encode()
    assert f"data/{other}.txt" not in files
    cfg = open_image(store, store.resolve(ref)).config.config
    assert f"WHO={word}" in cfg["Env"]
    assert cfg["Labels"] == {"built.for": word}


def _build(store, ctx: Path, word: str, **kw):  # type: ignore[no-untyped-def]
    from slimage.builder import BuildOptions, build

    return build(
        BuildOptions(str(ctx), tags=[f"slimage-test/reentrant-{word}:1"], quiet=True, **kw),
        store,
    )


def test_two_builds_in_sequence_then_in_two_threads(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    a = _context(tmp_path, "a", "alpha")
    b = _context(tmp_path, "b", "beta")
    first = _build(store, a, "alpha")
    second = _build(store, b, "beta")
    assert first.image_id != second.image_id
    _check(store, "alpha", "beta")
    _check(store, "beta", "alpha")

    # Both at once, off the main thread, each RUN really running (no cache), overlapping.
    c = _context(tmp_path, "c", "gamma", sleep=1)
    d = _context(tmp_path, "d", "delta", sleep=1)
    with ThreadPoolExecutor(max_workers=2) as pool:
        fc = pool.submit(_build, store, c, "gamma", no_cache=True)
        fd = pool.submit(_build, store, d, "delta", no_cache=True)
        rc, rd = fc.result(timeout=300), fd.result(timeout=300)
    assert rc.image_id != rd.image_id and rc.cached_steps == rd.cached_steps == 0
    _check(store, "gamma", "delta")
    _check(store, "delta", "gamma")

    # The same two again from threads, now from the build cache, and the first ones too.
    with ThreadPoolExecutor(max_workers=2) as pool:
        again = list(pool.map(lambda w: _build(store, *w), [(a, "alpha"), (d, "delta")]))
    assert [r.image_id for r in again] == [first.image_id, rd.image_id]

    assert {s: signal.getsignal(s) for s in handlers} == handlers  # no handler installed
    assert leftovers(store.root) == {}  # every workspace unmounted and removed
    assert store.fsck().ok


def test_an_interrupted_build_cleans_only_its_own_session(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A session closes its own mounts and containers; another build's stay up."""
    from slimage.builder.session import BuildSession
    from slimage.runtime.layerdirs import LayerDirs
    from slimage.store.images import open_image

    lowers = LayerDirs(store).ensure_all(open_image(store, store.resolve(IMAGE)).layers)
    with BuildSession(store) as other:
        with BuildSession(store) as mine:
            # Entered by hand and never exited: as a build interrupted mid-step leaves them.
            cm_mine = mine.layerdirs.workspace(lowers)
            cm_other = other.layerdirs.workspace(lowers)
            ws_mine, ws_other = cm_mine.__enter__(), cm_other.__enter__()
            assert ws_mine.merged.joinpath("bin/busybox").is_file()
        # `mine` closed: its workspace is gone, the other build's is untouched.
        assert not ws_mine.path.exists()
        assert ws_other.merged.joinpath("bin/busybox").is_file()
    assert not ws_other.path.exists()
    assert leftovers(store.root) == {}


def test_noop_record_answers_python_callers_and_can_be_turned_off(store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a = _context(tmp_path, "a", "alpha")
    first = _build(store, a, "alpha")
    assert list((store.root / "build-noop").glob("*.json"))
    hit = _build(store, a, "alpha")
    assert hit.image_id == first.image_id and hit.cached_steps == hit.steps
    # Off: the builder runs (COPY and RUN from the build cache) and gives the same image.
    off = _build(store, a, "alpha", noop_cache=False)
    assert off.image_id == first.image_id and off.cached_steps == 2 < off.steps
    # A changed input misses the record and really builds.
    (a / "input.txt").write_text("alpha, changed\n")
    changed = _build(store, a, "alpha")
    assert changed.image_id != first.image_id and changed.cached_steps == 0
    # The root alone (not a Store) is enough: the store opens only on a miss.
    from slimage.builder import BuildOptions, build

    by_root = build(
        BuildOptions(str(a), tags=["slimage-test/reentrant-alpha:1"], quiet=True), store.root
    )
    assert by_root.image_id == changed.image_id
