"""Deterministic layer tars, produced as a stream.

A base layer is made of many .debs' data.tar entries plus a few generated files. The bytes
must depend only on the inputs (the .debs, the options and SOURCE_DATE_EPOCH), so that a
build from the lockfile repeats the image digest: names are normalised, each path appears
once (first writer wins, except paths the builder generates itself), the order is fixed,
and mtimes are clamped when SOURCE_DATE_EPOCH is set.

The tar bytes come from the shared `slimage.layers.writer.LayerWriter`; this module adds
what only bases need (first writer wins, reserved paths, filters) and turns the writer's
output into a generator that `store_layer_tar` can read while packages are still being
unpacked.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable, Iterable, Iterator
from typing import IO

from slimage.layers.writer import LayerWriter

CHUNK = 1 << 20


def _norm(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.strip("/")


class _Collector:
    """A write() target whose output the generator hands on after each entry."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        out = b"".join(self.chunks)
        self.chunks.clear()
        return out


class LayerTar:
    """One layer's entries, emitted through the shared `LayerWriter` (numeric owners,
    clamped mtimes, PAX only where needed), remembering which paths it already holds."""

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
        self._out = _Collector()
        self._w = LayerWriter(self._out, epoch=epoch, use_env_epoch=False)  # type: ignore[arg-type]

    def _parents(self, path: str) -> None:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            parent = "/".join(parts[:i])
            if parent not in self.paths:
                self.paths[parent] = "dir"
                self._w.add_dir(parent)

    def directory(self, path: str, mode: int = 0o755, uid: int = 0, gid: int = 0) -> bytes:
        path = _norm(path)
        self._parents(path)
        self.paths[path] = "dir"
        self._w.add_dir(path, mode=mode, uid=uid, gid=gid)
        return self._out.drain()

    def file(self, path: str, data: bytes, mode: int = 0o644, uid: int = 0, gid: int = 0) -> bytes:
        path = _norm(path)
        self._parents(path)
        self.paths[path] = "file"
        self._w.add_bytes(path, data, mode=mode, uid=uid, gid=gid)
        return self._out.drain()

    def symlink(self, path: str, target: str) -> bytes:
        path = _norm(path)
        self._parents(path)
        self.paths[path] = "symlink"
        self._w.add_symlink(path, target)
        return self._out.drain()

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
        w = self._w
        if member.islnk():
            target = _norm(member.linkname)
            if self.paths.get(target) not in ("file", "other"):
                return  # its target was filtered out or shadowed: nothing safe to link to
            self._parents(path)
            self.paths[path] = "other"
            w.add_hardlink(path, target, mtime=member.mtime)
        elif member.isdir():
            self._parents(path)
            self.paths[path] = "dir"
            w.add_dir(path, mode=member.mode, uid=member.uid, gid=member.gid, mtime=member.mtime)
        elif member.issym():
            self._parents(path)
            self.paths[path] = "symlink"
            w.add_symlink(path, member.linkname, uid=member.uid, gid=member.gid, mtime=member.mtime)
        elif member.isreg():
            assert data is not None
            self._parents(path)
            self.paths[path] = "file"
            w.add_stream(
                path,
                _Exact(data, member.size, path),  # type: ignore[arg-type]
                member.size,
                mode=member.mode,
                uid=member.uid,
                gid=member.gid,
                mtime=member.mtime,
            )
        else:
            return  # devices and fifos have no place in a base image
        yield self._out.drain()

    def end(self) -> bytes:
        self._w.close()
        return self._out.drain()


class _Exact:
    """A file's data that must be exactly SIZE bytes (tarfile would pad a short one)."""

    def __init__(self, raw: IO[bytes], size: int, path: str):
        self.raw, self.left, self.path = raw, size, path

    def read(self, n: int = -1) -> bytes:
        want = self.left if n is None or n < 0 else min(n, self.left)
        data = self.raw.read(want)
        if len(data) < want:
            from slimage.bases.errors import DebFormatError

            raise DebFormatError(f"{self.path}: data ends {self.left - len(data)} bytes early")
        self.left -= len(data)
        return data


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
