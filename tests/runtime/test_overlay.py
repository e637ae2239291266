"""Real overlayfs mounts of many layers: past mount(2)'s page of options, and with other
threads relying on the process's working directory meanwhile."""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from pathlib import Path

import pytest

from slimage.runtime import overlay

pytestmark = pytest.mark.usefixtures("need_root")

LAYERS = 150  # named by 64-hex digests, as in the store: ~10 KB of lowerdir= options


def _layers(base: Path, count: int, *, parents: int = 1) -> list[Path]:
    """COUNT layer dirs, bottom first, spread over PARENTS directories: each has its own
    file, all write `shared` (the top one must win), and the top one whites out the
    bottom one's `gone`."""
    dirs = []
    for i in range(count):
        d = base / f"p{i % parents}" / hashlib.sha256(str(i).encode()).hexdigest()
        (d / "own").mkdir(parents=True)
        (d / "own" / f"{i:03}").write_text(str(i))
        (d / "shared").write_text(str(i))
        dirs.append(d)
    (dirs[0] / "gone").write_text("bottom")
    os.mknod(dirs[-1] / "gone", stat.S_IFCHR | 0o600, os.makedev(0, 0))
    return dirs


def _check_merged(mnt: Path, count: int) -> None:
    assert sorted(os.listdir(mnt / "own")) == [f"{i:03}" for i in range(count)]
    assert (mnt / "own" / "000").read_text() == "0"
    assert (mnt / "shared").read_text() == str(count - 1)
    assert not (mnt / "gone").exists()


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("parents", [1, 3])
def test_many_layers_mount_past_the_page_limit(tmp_path: Path, parents: int) -> None:
    """Options far over a page mount with the right content, read-only and writable, from
    one parent dir or several (the old chdir could only do one), leaking no fd."""
    lowers = _layers(tmp_path / "layers", LAYERS, parents=parents)
    assert len("lowerdir=" + ":".join(map(str, lowers))) > 4096
    fds = _open_fds()
    with overlay.overlay(tmp_path / "ro", lowers) as mnt:
        _check_merged(mnt, LAYERS)
        with pytest.raises(OSError):
            (mnt / "new").write_text("x")
    upper, work = tmp_path / "upper", tmp_path / "work"
    upper.mkdir()
    work.mkdir()
    with overlay.overlay(tmp_path / "rw", lowers, upper, work) as mnt:
        _check_merged(mnt, LAYERS)
        (mnt / "new").write_text("x")
        (mnt / "shared").write_text("changed")
    assert (upper / "new").read_text() == "x"
    assert (upper / "shared").read_text() == "changed"
    assert (lowers[-1] / "shared").read_text() == str(LAYERS - 1)
    assert not overlay.is_mounted(tmp_path / "ro") and not overlay.is_mounted(tmp_path / "rw")
    assert _open_fds() == fds


def test_too_many_layers_and_a_missing_lower_are_one_line_errors(tmp_path: Path) -> None:
    from slimage.errors import RuntimeToolError

    (tmp_path / "mnt").mkdir()
    lowers = _layers(tmp_path / "layers", 60)
    with pytest.raises(RuntimeToolError, match=r"lower dir .*/missing: No such file"):
        overlay.mount_overlay(tmp_path / "mnt", [*lowers, tmp_path / "missing"])
    many = [*lowers, *_layers(tmp_path / "more", 240)]  # 300 fd paths do not fit in a page
    with pytest.raises(RuntimeToolError, match=r"too many layers for one overlay mount \(300\)"):
        overlay.mount_overlay(tmp_path / "mnt", many)
    assert not overlay.is_mounted(tmp_path / "mnt")


def test_a_layer_repeated_in_the_stack_mounts_as_docker_shows_it(tmp_path: Path) -> None:
    """An image may hold the same layer twice (`COPY a /a` twice); overlayfs refuses a
    lower dir given twice (ELOOP), so the lower copy is dropped: the tree must be the
    one applying every layer in order gives. Between the copies, a layer re-adds what
    the repeated layer whites out and writes a file the repeated layer rewrites."""
    rep = tmp_path / "rep"
    (rep / "d").mkdir(parents=True)
    (rep / "d" / "a").write_text("rep")
    os.mknod(rep / "gone", stat.S_IFCHR | 0o600, os.makedev(0, 0))
    base = tmp_path / "base"
    base.mkdir()
    (base / "gone").write_text("base")
    (base / "keep").write_text("base")
    mid = tmp_path / "mid"
    (mid / "d").mkdir(parents=True)
    (mid / "d" / "a").write_text("mid")
    (mid / "d" / "b").write_text("mid")
    (mid / "gone").write_text("mid")
    with overlay.overlay(tmp_path / "mnt", [base, rep, mid, rep]) as mnt:
        assert (mnt / "d" / "a").read_text() == "rep"  # the top copy rewrote it
        assert (mnt / "d" / "b").read_text() == "mid"  # kept: nothing above removed it
        assert not (mnt / "gone").exists()  # whited out again by the top copy
        assert (mnt / "keep").read_text() == "base"


def test_mounts_leave_other_threads_cwd_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two threads mount and unmount many-layer overlays over and over while a third keeps
    checking os.getcwd() and opening a cwd-relative file: it must never see the cwd move
    (the old chdir made it land in the layers' parent, where `marker` does not exist).
    55 layers: over a page as full paths, under it as bare digests (the old way's case)."""
    lowers = _layers(tmp_path / "layers", 55)
    assert len("lowerdir=" + ":".join(map(str, lowers))) > 4096
    here = tmp_path / "cwd"
    here.mkdir()
    (here / "marker").write_text("here")
    monkeypatch.chdir(here)
    done = threading.Event()
    seen: list[str] = []
    checks = 0

    def watch() -> None:
        nonlocal checks
        while not done.is_set():
            cwd = os.getcwd()
            try:
                with open("marker") as fh:
                    text = fh.read()
            except OSError as exc:
                text = repr(exc)
            if cwd != str(here) or text != "here":
                seen.append(f"{cwd}: {text}")
            checks += 1

    errors: list[BaseException] = []

    def mount_many(name: str) -> None:
        try:
            for i in range(40):
                with overlay.overlay(tmp_path / name / str(i), lowers) as mnt:
                    assert (mnt / "shared").read_text() == "54"
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    watcher = threading.Thread(target=watch)
    mounters = [threading.Thread(target=mount_many, args=(f"m{k}",)) for k in range(2)]
    watcher.start()
    for t in mounters:
        t.start()
    for t in mounters:
        t.join()
    done.set()
    watcher.join()
    assert not errors, errors
    assert checks > 100
    assert not seen, seen[:5]
