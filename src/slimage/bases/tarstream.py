"""Deterministic layer tars, produced as a stream.

A base layer is made of many .debs' data.tar entries plus a few generated files. The bytes
must depend only on the inputs (the .debs, the options and SOURCE_DATE_EPOCH), so that a
build from the lockfile repeats the image digest: names are normalised, each path appears
once (first writer wins, except paths the builder generates itself), the order is fixed,
and mtimes are clamped when SOURCE_DATE_EPOCH is set.

(`slimage.layers.writer` is meant to become the shared deterministic writer; until it
exists, this module holds the minimal emission bases need.)
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable, Iterable, Iterator
from typing import IO

BLOCK = 512
CHUNK = 1 << 20


def _norm(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.strip("/")


def _pad(size: int) -> bytes:
    return b"\0" * ((BLOCK - size % BLOCK) % BLOCK)


class LayerTar:
    """Emit tar entries for one layer, remembering which paths it already holds."""

    def __init__(
        self,
        *,
        epoch: int | None = None,
        reserved: Iterable[str] = (),
        skip: Callable[[str], bool] | None = None,
    ):
        self.epoch = epoch
        self.reserved = {_norm(p) for p in reserved}  # written later by the builder itself
        self.skip = skip
        self.paths: dict[str, str] = {}  # path -> kind ("dir", "file", ...)
        self.duplicates: list[str] = []

    def _mtime(self, mtime: float) -> int:
        m = int(mtime)
        if self.epoch is not None and m > self.epoch:
            return self.epoch
        return m

    def _header(self, info: tarfile.TarInfo) -> bytes:
        return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")

    def _parents(self, path: str) -> Iterator[bytes]:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            parent = "/".join(parts[:i])
            if parent not in self.paths:
                yield self.directory(parent)

    def directory(self, path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> bytes:
        path = _norm(path)
        head = b"".join(self._parents(path))
        self.paths[path] = "dir"
        info = tarfile.TarInfo(path)
        info.type = tarfile.DIRTYPE
        info.mode, info.uid, info.gid = mode, uid, gid
        info.mtime = self._mtime(self.epoch or 0)
        info.uname = info.gname = ""
        return head + self._header(info)

    def file(self, path: str, data: bytes, mode: int = 0o644, uid: int = 0, gid: int = 0) -> bytes:
        path = _norm(path)
        head = b"".join(self._parents(path))
        self.paths[path] = "file"
        info = tarfile.TarInfo(path)
        info.size = len(data)
        info.mode, info.uid, info.gid = mode, uid, gid
        info.mtime = self._mtime(self.epoch or 0)
        info.uname = info.gname = ""
        return head + self._header(info) + data + _pad(len(data))

    def symlink(self, path: str, target: str) -> bytes:
        path = _norm(path)
        head = b"".join(self._parents(path))
        self.paths[path] = "symlink"
        info = tarfile.TarInfo(path)
        info.type = tarfile.SYMTYPE
        info.linkname = target
        info.mode = 0o777
        info.mtime = self._mtime(self.epoch or 0)
        info.uname = info.gname = ""
        return head + self._header(info)

    def from_member(self, member: tarfile.TarInfo, data: IO[bytes] | None) -> Iterator[bytes]:
        """Copy one data.tar entry, unless its path is taken or filtered out."""
        path = _norm(member.name)
        if not path:
            return
        if self.skip is not None and self.skip(path):
            return
        kind = "dir" if member.isdir() else "other"
        seen = self.paths.get(path)
        if path in self.reserved and kind != "dir":
            return
        if seen is not None:
            if not (seen == "dir" and kind == "dir"):
                self.duplicates.append(path)
            return
        if member.islnk():
            target = _norm(member.linkname)
            if self.paths.get(target) not in ("file", "other"):
                return  # its target was filtered out or shadowed: nothing safe to link to
        yield from self._parents(path)
        self.paths[path] = "file" if member.isreg() else kind
        info = tarfile.TarInfo(path)
        info.type = member.type
        info.mode, info.uid, info.gid = member.mode, member.uid, member.gid
        info.uname, info.gname = member.uname, member.gname
        info.mtime = self._mtime(member.mtime)
        info.devmajor, info.devminor = member.devmajor, member.devminor
        if member.issym():
            info.linkname = member.linkname
        elif member.islnk():
            info.linkname = _norm(member.linkname)
        if member.isreg():
            info.size = member.size
            yield self._header(info)
            remaining = member.size
            assert data is not None
            while remaining:
                chunk = data.read(min(CHUNK, remaining))
                if not chunk:
                    from slimage.bases.errors import DebFormatError

                    raise DebFormatError(f"{path}: data ends {remaining} bytes early")
                remaining -= len(chunk)
                yield chunk
            yield _pad(member.size)
        else:
            info.size = 0
            yield self._header(info)

    @staticmethod
    def end() -> bytes:
        return b"\0" * (BLOCK * 2)


class IterStream(io.RawIOBase):
    """A read()-able view of an iterator of byte chunks, for `store_layer_tar`."""

    def __init__(self, chunks: Iterable[bytes]):
        self._it = iter(chunks)
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buf: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buf:
            try:
                self._buf = next(self._it)
            except StopIteration:
                return 0
        n = min(len(buf), len(self._buf))
        buf[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            return b"".join([self._buf, *self._it])
        out = []
        have = 0
        while have < n:
            if not self._buf:
                try:
                    self._buf = next(self._it)
                except StopIteration:
                    break
            take = self._buf[: n - have]
            self._buf = self._buf[len(take) :]
            out.append(take)
            have += len(take)
        return b"".join(out)
