"""Random access into an outer archive (a `docker save` tar, an oci-archive).

An image archive is a tar of tars. Rather than stream it start to end (its manifest.json
comes last), we read the headers once, remember where every member's data starts, and
later read any member with `pread` at its offset: no extraction to disk, no member held in
memory, and many readers can share one file descriptor.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from typing import BinaryIO

from slimage.errors import InvalidImageError, NotFoundError
from slimage.streams import ReadOnlyStream

CHUNK = 1 << 20


@dataclass(frozen=True)
class Member:
    name: str
    offset: int  # of the data
    size: int
    kind: str  # file, dir, symlink, hardlink, other
    linkname: str = ""


class SectionReader(ReadOnlyStream):
    """A read-only stream over bytes [offset, offset+size) of a shared file descriptor."""

    def __init__(self, fd: int, offset: int, size: int, name: str = ""):
        self._fd = fd
        self._pos = offset
        self._end = offset + size
        self._name = name

    def read(self, n: int = -1) -> bytes:
        left = self._end - self._pos
        if left <= 0:
            return b""
        want = left if n is None or n < 0 else min(n, left)
        data = os.pread(self._fd, want, self._pos)
        if not data:
            raise InvalidImageError(f"{self._name}: truncated (file ends inside this member)")
        self._pos += len(data)
        return data


def _clean(name: str) -> str:
    return posixpath.normpath("/" + name).lstrip("/")


class TarIndex:
    """The member table of a seekable tar file. Keep the object alive while reading."""

    def __init__(self, fileobj: BinaryIO, label: str, path: str | None = None):
        self.label = label
        # The archive's own file when it is one on disk (not a spooled pipe), so that a
        # member's bytes can be named as (path, offset, length) for in-place readers.
        self.path = path
        self._fh = fileobj
        self.fd = fileobj.fileno()
        self.file_size = os.fstat(self.fd).st_size
        self.members: dict[str, Member] = {}
        try:
            tf = tarfile.open(fileobj=fileobj, mode="r:")
            while True:
                info = tf.next()
                if info is None:
                    break
                kind = (
                    "file"
                    if info.isreg()
                    else "dir"
                    if info.isdir()
                    else "symlink"
                    if info.issym()
                    else "hardlink"
                    if info.islnk()
                    else "other"
                )
                size = info.size if kind == "file" else 0
                if info.offset_data + size > self.file_size:
                    raise InvalidImageError(
                        f"{label}: truncated archive: {info.name} needs {size} bytes at offset "
                        f"{info.offset_data} but the file ends at {self.file_size}"
                    )
                name = _clean(info.name)
                self.members[name] = Member(name, info.offset_data, size, kind, info.linkname)
        except tarfile.TarError as exc:
            raise InvalidImageError(f"{label}: not a readable tar archive ({exc})") from exc
        except EOFError as exc:
            raise InvalidImageError(f"{label}: truncated archive") from exc
        if not self.members:
            raise InvalidImageError(f"{label}: empty or not a tar archive")

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> TarIndex:
        try:
            fh = open(path, "rb")  # noqa: SIM115 - lives as long as the index
        except FileNotFoundError:
            raise NotFoundError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise InvalidImageError(f"{path}: is a directory, not an archive") from None
        from slimage.layers.compression import sniff

        if sniff(fh.read(8)) != "none":
            # `docker save | gzip`: docker load takes it, so do we (unpacked to a temp file)
            fh.seek(0)
            try:
                return cls.spool(fh, str(path))
            finally:
                fh.close()
        fh.seek(0)
        return cls(fh, str(path), os.path.abspath(path))

    @classmethod
    def spool(cls, stream: BinaryIO, label: str = "stdin", tmp_dir: str | None = None) -> TarIndex:
        """A non-seekable stream (stdin, a pipe from `docker save`) is first copied to an
        anonymous temp file (deleted by the OS when closed, even on a crash)."""
        from slimage.layers.compression import open_decompressed

        plain, _ = open_decompressed(stream, name=label)  # a gzipped archive works too
        fh = tempfile.TemporaryFile(dir=tmp_dir)  # noqa: SIM115
        shutil.copyfileobj(plain, fh, CHUNK)
        fh.flush()
        fh.seek(0)
        return cls(fh, label)

    def resolve(self, name: str, depth: int = 0) -> Member:
        """Find a member, following symlink members (Docker 25 writes `layer.tar` as a
        symlink to `blobs/sha256/...`) without ever leaving the archive."""
        key = _clean(name)
        member = self.members.get(key)
        if member is None:
            raise InvalidImageError(f"{self.label}: {name} is missing from the archive")
        if member.kind in ("symlink", "hardlink") and depth < 8:
            target = member.linkname
            if member.kind == "symlink" and not target.startswith("/"):
                target = posixpath.join(posixpath.dirname(key), target)
            return self.resolve(target, depth + 1)
        if member.kind != "file":
            raise InvalidImageError(f"{self.label}: {name} is not a regular file in the archive")
        return member

    def location(self, name: str) -> tuple[str, int, int] | None:
        """(file, offset, length) of member NAME's bytes, if the archive is a file on disk."""
        if self.path is None:
            return None
        m = self.resolve(name)
        return self.path, m.offset, m.size

    def has(self, name: str) -> bool:
        return _clean(name) in self.members

    def open_member(self, name: str) -> SectionReader:
        m = self.resolve(name)
        return SectionReader(self.fd, m.offset, m.size, f"{self.label}: {name}")

    def read_member(self, name: str, limit: int = 16 << 20) -> bytes:
        m = self.resolve(name)
        if m.size > limit:
            raise InvalidImageError(f"{self.label}: {name} is {m.size} bytes, over {limit}")
        data = os.pread(self.fd, m.size, m.offset)
        if len(data) != m.size:
            raise InvalidImageError(f"{self.label}: truncated archive inside {name}")
        return data

    def close(self) -> None:
        self._fh.close()
