"""Safe extraction of layer tars into a directory, as root, never outside it.

Two modes:
- `apply`: flatten a changeset onto what lower layers left in DEST, as the OCI image spec
  says: `.wh.NAME` deletes NAME, `.wh..wh..opq` empties its directory (of lower-layer
  content only), a directory replaces a file and the reverse, hardlinks may point at
  files from lower layers;
- `overlay`: write one layer into its own empty directory in the form overlayfs reads as
  a lowerdir: `.wh.NAME` becomes a 0/0 character device, an opaque marker becomes the
  `trusted.overlay.opaque=y` xattr.

Why it cannot escape: entries are first checked by `LayerChecker` (the same tar parser
feeds both, so there is no parser differential), and then every path is resolved one
component at a time with `lstat`: symlinks met on the way are followed *inside* DEST (an
absolute target restarts at DEST, `..` stops at DEST), exactly like a chroot, and the
final component is never followed (O_NOFOLLOW, lchown, utime(follow_symlinks=False)).
The kernel is never handed a path with a symlink in it.

Whiteouts are read with `slimage.layers.whiteout.whiteout_victim`, the same rule the ingest
check applies, so `.wh..`, `.wh...` or `.wh.` are refused here even for a layer that never
went through the store (ADD of a tar). And as a second, independent line: nothing is
removed or replaced unless its parent's realpath is inside DEST and its own name is a real
entry name (`_contained`). An OS error while writing becomes a one-line `SlimageError`
naming the layer and the entry.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from slimage.errors import (
    InvalidImageError,
    PermissionRequiredError,
    SlimageError,
    UnsafeArchiveError,
)
from slimage.layers.safety import LayerChecker, clean_link_target
from slimage.layers.tarscan import TarEntry, TarScanner
from slimage.layers.whiteout import OPAQUE, whiteout_victim
from slimage.layers.whiteout import PREFIX as WHITEOUT_PREFIX

CHUNK = 1 << 20
MAX_SYMLINK_HOPS = 40
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"


@dataclass
class ExtractStats:
    entries: int = 0
    files: int = 0
    bytes: int = 0
    whiteouts: int = 0
    hardlinks: int = 0


class _Extractor:
    def __init__(self, dest: Path, mode: str, label: str, same_owner: bool | None):
        if mode not in ("apply", "overlay"):
            raise ValueError(f"unknown extract mode {mode!r}")
        self.dest = os.fspath(dest)
        self.mode = mode
        self.label = label
        self.same_owner = os.geteuid() == 0 if same_owner is None else same_owner
        self.checker = LayerChecker(label, external_hardlinks=(mode == "apply"))
        self.written: set[str] = set()
        self.dir_times: list[tuple[str, int]] = []
        self.stats = ExtractStats()
        self._dir_cache: dict[str, str] = {}
        self._open: tuple[int, str, TarEntry] | None = None
        self._left = 0
        self.current = ""  # the entry being written, for error messages

    # ------------------------------------------------------------------ paths
    def _abs(self, rel: str) -> str:
        return os.path.join(self.dest, rel) if rel else self.dest

    def _fail(self, name: str, problem: str) -> UnsafeArchiveError:
        return UnsafeArchiveError(f"{self.label}: {name!r}: {problem}")

    def resolve_dir(self, parts: list[str], *, create: bool, name: str) -> str | None:
        """The real (symlink-free) DEST-relative path of directory PARTS, following
        symlinks inside DEST only. Missing directories are made (0755) when CREATE."""
        key = "/".join(parts)
        cached = self._dir_cache.get(key)
        if cached is not None:
            return cached
        real: list[str] = []
        todo = list(parts)
        hops = 0
        while todo:
            comp = todo.pop(0)
            if comp in ("", "."):
                continue
            if comp == "..":
                if real:
                    real.pop()
                continue
            rel = "/".join([*real, comp])
            try:
                st = os.lstat(self._abs(rel))
            except FileNotFoundError:
                if not create:
                    return None
                os.mkdir(self._abs(rel), 0o755)
                real.append(comp)
                continue
            if stat.S_ISDIR(st.st_mode):
                real.append(comp)
            elif stat.S_ISLNK(st.st_mode):
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    raise self._fail(name, "too many levels of symlinks in its parent path")
                target = os.readlink(self._abs(rel))
                if target.startswith("/"):
                    real = []
                todo = [c for c in target.split("/") if c] + todo
            else:
                raise self._fail(name, f"parent {rel!r} is not a directory")
        out = "/".join(real)
        self._dir_cache[key] = out
        return out

    def _contained(self, rel: str) -> str:
        """The absolute path of REL, after proving that removing or replacing it cannot
        touch anything outside DEST: its parent's realpath is DEST or below, and its last
        component is a real name (not empty, `.` or `..`). Defence in depth: the whiteout
        rule and `resolve_dir` already guarantee it; this holds even if they did not."""
        path = self._abs(rel)
        parent, _, base = path.rpartition("/")
        real = os.path.realpath(parent or "/")
        root = self.dest.rstrip("/")
        if base in ("", ".", "..") or not (real == self.dest or real.startswith(root + "/")):
            raise self._fail(rel, "would remove or replace a path outside the extraction root")
        return path

    def _remove(self, rel: str) -> None:
        path = self._contained(rel)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(path)
        else:
            os.unlink(path)
        if stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode):
            # cached resolutions may run through what was removed (a symlinked `lib`
            # replaced by a real directory must not keep resolving to usr/lib)
            self._dir_cache.clear()

    # ------------------------------------------------------------------ metadata
    def _meta(self, path: str, entry: TarEntry, *, is_link: bool = False) -> None:
        if self.same_owner:
            try:
                os.lchown(path, entry.uid, entry.gid)
            except OSError as exc:
                raise PermissionRequiredError(
                    f"{self.label}: chown {entry.name}: {exc.strerror}"
                ) from exc
        if not is_link:
            os.chmod(path, entry.mode & 0o7777)
        if entry.xattrs:
            for key, value in entry.xattrs.items():
                try:
                    os.setxattr(path, key, value, follow_symlinks=False)
                except OSError as exc:
                    if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
                        continue  # the filesystem under DEST keeps no xattrs of this kind
                    if exc.errno == errno.EPERM and not self.same_owner:
                        continue  # trusted.* and some security.* need root
                    raise
        mtime_ns = int(entry.mtime * 1_000_000_000)
        with contextlib.suppress(OSError):
            os.utime(path, ns=(mtime_ns, mtime_ns), follow_symlinks=False)

    # ------------------------------------------------------------------ entries
    def on_entry(self, entry: TarEntry):
        self.checker.check(entry)
        self.stats.entries += 1
        name = self.current = entry.name
        if not name:
            return None  # the root directory entry: DEST already exists
        parts = name.split("/")
        base = parts[-1]
        if base == OPAQUE:
            return self._opaque(parts[:-1], entry)
        if base.startswith(WHITEOUT_PREFIX):
            victim = whiteout_victim(name, where=self.label)
            if victim is None:
                return None  # AUFS metadata (.wh..wh.plnk, ...): deletes nothing
            return self._whiteout(parts[:-1], victim, entry)
        parent = self.resolve_dir(parts[:-1], create=True, name=name)
        assert parent is not None
        rel = f"{parent}/{base}" if parent else base
        path = self._abs(rel)
        try:
            existing = os.lstat(path)
        except FileNotFoundError:
            existing = None
        self.written.add(name)
        if entry.kind == "dir":
            if existing is not None and not stat.S_ISDIR(existing.st_mode):
                self._remove(rel)
                existing = None
            if existing is None:
                os.mkdir(path, 0o700)
            self._meta(path, entry)
            self.dir_times.append((path, int(entry.mtime * 1_000_000_000)))
            return None
        if existing is not None:
            self._remove(rel)
        if entry.kind == "file":
            fd = os.open(
                path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
            )
            self.stats.files += 1
            if entry.size == 0:
                os.close(fd)
                self._meta(path, entry)
                return None
            self._open = (fd, path, entry)
            self._left = entry.size
            return self._data
        if entry.kind == "symlink":
            os.symlink(entry.linkname, path)
            self._meta(path, entry, is_link=True)
        elif entry.kind == "hardlink":
            self._hardlink(name, path, entry)
        elif entry.kind in ("chardev", "blockdev"):
            if not self.same_owner:
                raise PermissionRequiredError(f"{self.label}: {name}: creating a device needs root")
            kind = stat.S_IFCHR if entry.kind == "chardev" else stat.S_IFBLK
            os.mknod(path, kind | (entry.mode & 0o7777), os.makedev(entry.devmajor, entry.devminor))
            self._meta(path, entry)
        elif entry.kind == "fifo":
            os.mkfifo(path, entry.mode & 0o7777)
            self._meta(path, entry)
        return None

    def _data(self, chunk: bytes) -> None:
        assert self._open is not None
        fd, path, entry = self._open
        view = memoryview(chunk)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        self._left -= len(chunk)
        self.stats.bytes += len(chunk)
        if self._left <= 0:
            os.close(fd)
            self._open = None
            self._meta(path, entry)

    def _hardlink(self, name: str, path: str, entry: TarEntry) -> None:
        target = clean_link_target(entry.linkname)
        tparts = target.split("/")
        tparent = self.resolve_dir(tparts[:-1], create=False, name=name)
        if tparent is None:
            raise self._fail(name, f"hardlink target {target!r} does not exist")
        trel = f"{tparent}/{tparts[-1]}" if tparent else tparts[-1]
        try:
            st = os.lstat(self._abs(trel))
        except FileNotFoundError:
            raise self._fail(name, f"hardlink target {target!r} does not exist") from None
        if stat.S_ISDIR(st.st_mode):
            raise self._fail(name, f"hardlink to directory {target!r}")
        os.link(self._abs(trel), path, follow_symlinks=False)
        self.stats.hardlinks += 1

    def _whiteout(self, dir_parts: list[str], victim: str, entry: TarEntry) -> None:
        self.stats.whiteouts += 1
        if self.mode == "overlay":
            if not self.same_owner:
                raise PermissionRequiredError(f"{self.label}: overlay whiteouts need root (mknod)")
            parent = self.resolve_dir(dir_parts, create=True, name=entry.name)
            assert parent is not None
            rel = f"{parent}/{victim}" if parent else victim
            self._remove(rel)
            os.mknod(self._contained(rel), stat.S_IFCHR | 0o000, os.makedev(0, 0))
            self.written.add("/".join([*dir_parts, victim]))
            return None
        parent = self.resolve_dir(dir_parts, create=False, name=entry.name)
        if parent is None:
            return None
        logical = "/".join([*dir_parts, victim])
        if logical in self.written:
            return None  # the same layer wrote it; a whiteout only hides lower layers
        self._remove(f"{parent}/{victim}" if parent else victim)
        return None

    def _opaque(self, dir_parts: list[str], entry: TarEntry) -> None:
        self.stats.whiteouts += 1
        parent = self.resolve_dir(dir_parts, create=True, name=entry.name)
        assert parent is not None
        path = self._abs(parent)
        if self.mode == "overlay":
            if not self.same_owner:
                raise PermissionRequiredError(
                    f"{self.label}: opaque directories need root (trusted xattr)"
                )
            os.setxattr(path, OVERLAY_OPAQUE_XATTR, b"y", follow_symlinks=False)
            return None
        logical = "/".join(dir_parts)
        self._clear_lower(path, parent, logical)
        return None

    def _clear_lower(self, path: str, rel: str, logical: str) -> None:
        """Remove what lower layers put under a directory, keeping this layer's entries."""
        with os.scandir(path) as it:
            children = [e.name for e in it]
        for child in children:
            child_logical = f"{logical}/{child}" if logical else child
            child_rel = f"{rel}/{child}" if rel else child
            if child_logical in self.written:
                full = self._abs(child_rel)
                if stat.S_ISDIR(os.lstat(full).st_mode):
                    self._clear_lower(full, child_rel, child_logical)
                continue
            self._remove(child_rel)

    def finish(self) -> None:
        if self._open is not None:
            os.close(self._open[0])
            self._open = None
        for path, ns in reversed(self.dir_times):
            with contextlib.suppress(OSError):
                os.utime(path, ns=(ns, ns), follow_symlinks=False)


def extract_layer(
    stream: BinaryIO,
    dest: str | os.PathLike[str],
    *,
    mode: str = "apply",
    label: str = "layer",
    same_owner: bool | None = None,
) -> ExtractStats:
    """Unpack one uncompressed layer tar STREAM into DEST (see the module docstring).

    Refused entries raise `UnsafeArchiveError` naming the entry; what was written before
    stays inside DEST (the caller owns DEST and removes it on failure)."""
    root = Path(dest)
    root.mkdir(parents=True, exist_ok=True)
    ex = _Extractor(root.resolve(), mode, label, same_owner)
    scanner = TarScanner(ex.on_entry, name=label)
    try:
        while chunk := stream.read(CHUNK):
            scanner.feed(chunk)
        scanner.close()
    except OSError as exc:
        # The kernel refused what the checks let through (a full disk, a name too long
        # under a deep DEST, a filesystem without xattrs...): one line, never a traceback.
        what = exc.strerror or str(exc)
        where = f"{label}: {ex.current!r}" if ex.current else label
        if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS):
            raise SlimageError(f"{where}: cannot extract: {what}") from None
        raise InvalidImageError(f"{where}: cannot extract: {what}") from None
    finally:
        ex.finish()
    return ex.stats


def extract_image(
    image, dest: str | os.PathLike[str], *, same_owner: bool | None = None
) -> ExtractStats:
    """Flatten every layer of IMAGE into DEST (the container's root filesystem)."""
    total = ExtractStats()
    for n, layer in enumerate(image.layers, 1):
        with contextlib.closing(layer.open_tar()) as tar:
            s = extract_layer(
                tar, dest, mode="apply", label=f"{image.source}: layer {n}", same_owner=same_owner
            )
        for field in ("entries", "files", "bytes", "whiteouts", "hardlinks"):
            setattr(total, field, getattr(total, field) + getattr(s, field))
    return total


def extract_overlay_layers(image, root: str | os.PathLike[str]) -> list[Path]:
    """Each layer of IMAGE into ROOT/<n> in overlay form; returns the dirs bottom-up
    (overlayfs wants lowerdir= top-first, so reverse them for the mount option)."""
    out = []
    for n, layer in enumerate(image.layers):
        d = Path(root) / str(n)
        with contextlib.closing(layer.open_tar()) as tar:
            extract_layer(tar, d, mode="overlay", label=f"{image.source}: layer {n + 1}")
        out.append(d)
    return out
