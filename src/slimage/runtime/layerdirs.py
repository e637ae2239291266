"""Unpacked layers and the overlay workspaces built on them.

Each layer is extracted once, into `<store>/layers-unpacked/<diff_id hex>` in overlay form
(whiteouts as char 0/0, opaque dirs as an xattr), and shared by every build and
container that stacks it. A step's upper dir, once turned into a layer, is moved there
too, so the next RUN never re-extracts what the builder just made.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from slimage.image import Layer
from slimage.runtime import overlay, owner
from slimage.store.store import Store, disk_errors


class LayerDirs:
    """The unpacked layers of one store, and the overlay workspaces this object mounted
    (its owner, a build session, closes them: see `close_workspaces`)."""

    def __init__(self, store: Store):
        self.store = store
        self.active: dict[str, Workspace] = {}
        self._active_lock = threading.Lock()
        # Unpacked dirs are mounted before any new blob exists: keep gc out meanwhile.
        store.hold_for_writing()
        self.base = store.private_dir("layers-unpacked")  # 0700: setuid files, devices
        self.work_base = store.private_dir("build-work")
        self.empty = self.base / "empty"
        self.empty.mkdir(exist_ok=True)
        sweep_stale(self.work_base)
        sweep_dead_extractions(self.base)

    def path(self, diff_id: str) -> Path:
        return self.base / diff_id.split(":", 1)[-1]

    def ensure(self, layer: Layer) -> Path:
        dest = self.path(layer.diff_id)
        if dest.is_dir():
            return dest
        # Named for its owner, so a later LayerDirs can remove it if we die mid-extraction.
        tmp = self.base / f".tmp-{owner.token()}-{uuid.uuid4().hex[:12]}"
        try:
            from slimage.layers.extract import extract_layer

            with (
                disk_errors(f"unpacked layer {layer.diff_id}", self.base),
                contextlib.closing(layer.open_tar()) as stream,
            ):
                extract_layer(stream, tmp, mode="overlay", label=f"layer {layer.diff_id}")
            try:
                os.rename(tmp, dest)
            except OSError:
                if not dest.is_dir():
                    raise
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return dest

    def ensure_all(self, layers: Sequence[Layer]) -> list[Path]:
        dirs = [self.ensure(layer) for layer in layers]
        return dirs or [self.empty]

    def adopt(self, diff_id: str, upper: Path) -> None:
        """Keep a finished upper dir as the unpacked form of the layer it became."""
        dest = self.path(diff_id)
        if dest.is_dir():
            return
        try:
            os.rename(upper, dest)
        except OSError:
            pass

    @contextlib.contextmanager
    def assemble(self, diff_id: str) -> Iterator[Path | None]:
        """A staging directory for the unpacked form of layer DIFF_ID, which the caller
        builds itself (minify makes it from hardlinks into the other unpacked layers,
        instead of extracting a blob it has just written). It is moved into place when
        the block ends without error, and removed otherwise. Yields None when the layer is
        unpacked already. The staging dir is on the same filesystem as every unpacked
        layer, so hardlinks into them work, and is named for its owner like `ensure`'s."""
        if self.path(diff_id).is_dir():
            yield None
            return
        tmp = self.base / f".tmp-{owner.token()}-{uuid.uuid4().hex[:12]}"
        tmp.mkdir()
        try:
            with disk_errors(f"unpacked layer {diff_id}", self.base):
                yield tmp
            self.adopt(diff_id, tmp)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    @contextlib.contextmanager
    def workspace(self, lowers: Sequence[Path], *, writable: bool = True) -> Iterator[Workspace]:
        ws = Workspace(self.work_base / uuid.uuid4().hex[:16], list(lowers), writable)
        with self._active_lock:
            self.active[str(ws.path)] = ws
        try:
            ws.mount()
            with disk_errors("the build workspace", self.work_base):  # COPY, ADD, RUN
                yield ws
        finally:
            try:
                ws.close()
            finally:
                with self._active_lock:
                    self.active.pop(str(ws.path), None)

    def close_workspaces(self) -> None:
        """Unmount and delete every workspace still open (an interrupted build's)."""
        with self._active_lock:
            left = list(self.active.values())
            self.active.clear()
        for ws in left:
            with contextlib.suppress(Exception):
                _kill_containers_in(ws.path)
            with contextlib.suppress(Exception):
                ws.close()


class Workspace:
    """upper/ + work/ + merged/ under one temp dir; `merged` is the mounted rootfs."""

    def __init__(self, path: Path, lowers: list[Path], writable: bool):
        self.path = path
        self.lowers = lowers
        self.writable = writable
        self.upper = path / "upper"
        self.work = path / "work"
        self.merged = path / "merged"
        self.mounted = False
        self._lock: int | None = None

    def mount(self) -> None:
        self.path.mkdir(parents=True)
        # Held for the workspace's life: a later build that can take it knows we died.
        self._lock = os.open(self.path / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._lock, fcntl.LOCK_EX)
        self.merged.mkdir()
        if self.writable:
            self.upper.mkdir()
            self.work.mkdir()
        self.mounted = True  # from here on close() tries to unmount, even if mount(2) failed
        overlay.mount_overlay(
            self.merged,
            self.lowers,
            self.upper if self.writable else None,
            self.work if self.writable else None,
        )

    def unmount(self) -> None:
        if self.mounted:
            overlay.unmount(self.merged)
            self.mounted = False

    def close(self) -> None:
        try:
            self.unmount()
        finally:
            if self.path.exists() and not overlay.is_mounted(self.merged):
                shutil.rmtree(self.path, ignore_errors=True)
            if self._lock is not None:
                os.close(self._lock)
                self._lock = None


def sweep_stale(work_base: Path) -> None:
    """Clean up after a builder that was killed outright (kill -9, power loss): its RUN
    container, its overlay mount and its temp dir. A workspace whose lock we can take
    has no live owner."""
    try:
        entries = list(work_base.iterdir())
    except OSError:
        return
    for d in entries:
        try:
            if time.time() - (d / "lock").stat().st_mtime < 10:
                continue  # just created: its owner may not hold the lock yet
            fd = os.open(d / "lock", os.O_RDWR)
        except OSError:
            continue  # being created right now, or not ours
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # a live build owns it
            _kill_containers_in(d)
            with contextlib.suppress(Exception):
                overlay.unmount(d / "merged")
            if not overlay.is_mounted(d / "merged"):
                shutil.rmtree(d, ignore_errors=True)
        finally:
            os.close(fd)


def _kill_containers_in(workspace: Path) -> None:
    import json
    import subprocess

    from slimage.runtime.ocirun import runtime_path

    for name in ("runc", "crun"):
        try:
            rt = runtime_path(name)
        except Exception:
            continue
        res = subprocess.run([rt, "list", "--format", "json"], capture_output=True)
        try:
            listed = json.loads(res.stdout or b"null") or []
        except ValueError:
            continue
        for c in listed:
            if str(c.get("bundle", "")).startswith(str(workspace)):
                subprocess.run([rt, "kill", c["id"], "KILL"], capture_output=True)
                subprocess.run([rt, "delete", "--force", c["id"]], capture_output=True)


def sweep_dead_extractions(base: Path) -> None:
    """Remove `.tmp-<owner>-*` extractions whose owner died (SIGKILL mid-`run`/build).
    Names from before owners were recorded (`.tmp-<hex>`) go once an hour old."""
    try:
        entries = [e for e in base.iterdir() if e.name.startswith(".tmp-")]
    except OSError:
        return
    for d in entries:
        tag, dash, _ = d.name[len(".tmp-") :].rpartition("-")
        if dash and "." in tag:
            dead = not owner.alive(tag)
        else:
            try:
                dead = time.time() - d.stat().st_mtime > 3600
            except OSError:
                continue
        if dead:
            shutil.rmtree(d, ignore_errors=True)
