"""Reading .deb files: an `ar` archive of debian-binary, control.tar.* and data.tar.*.

We stream it: members are read in order, `data.tar` is decompressed on the fly (xz, zstd,
gzip, bzip2 or none) and handed over as a tar stream. A member that ends before its header
says it should, or a compressed stream that stops early, is a `DebFormatError` naming the
package, so a truncated download can never become half a layer.
"""

from __future__ import annotations

import bz2
import io
import lzma
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

import zstandard

from slimage.bases.errors import DebFormatError

AR_MAGIC = b"!<arch>\n"
CHUNK = 1 << 20


@dataclass
class ArMember:
    name: str
    size: int
    offset: int  # of the data, in the file


def ar_members(fh: BinaryIO, *, what: str) -> list[ArMember]:
    """The table of an ar archive (headers only); checks every member fits in the file."""
    fh.seek(0, io.SEEK_END)
    total = fh.tell()
    fh.seek(0)
    if fh.read(8) != AR_MAGIC:
        raise DebFormatError(f"{what}: not a .deb (no ar magic)")
    members: list[ArMember] = []
    pos = 8
    while pos < total:
        fh.seek(pos)
        header = fh.read(60)
        if len(header) < 60:
            raise DebFormatError(f"{what}: truncated ar header at byte {pos}")
        if header[58:60] != b"`\n":
            raise DebFormatError(f"{what}: corrupt ar header at byte {pos}")
        name = header[0:16].decode("ascii", "replace").strip().rstrip("/")
        try:
            size = int(header[48:58].decode("ascii").strip())
        except ValueError:
            raise DebFormatError(f"{what}: bad member size in ar header at byte {pos}") from None
        start = pos + 60
        if start + size > total:
            raise DebFormatError(
                f"{what}: truncated .deb: member {name} needs {size} bytes at byte {start}, "
                f"the file has {total - start}"
            )
        members.append(ArMember(name, size, start))
        pos = start + size + (size & 1)
    names = [m.name for m in members]
    if not names or names[0] != "debian-binary":
        raise DebFormatError(f"{what}: not a .deb (first member is not debian-binary)")
    return members


class _Slice(io.RawIOBase):
    """A bounded window of a file, so a member's decompressor cannot read past it."""

    def __init__(self, fh: BinaryIO, offset: int, size: int):
        self.fh, self.pos, self.end = fh, offset, offset + size

    def readable(self) -> bool:
        return True

    def readinto(self, buf: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(buf), self.end - self.pos)
        if n <= 0:
            return 0
        self.fh.seek(self.pos)
        data = self.fh.read(n)
        buf[: len(data)] = data
        self.pos += len(data)
        return len(data)


class _Decompressing(io.RawIOBase):
    """Decompress a member incrementally; refuse a stream that ends before its end mark."""

    def __init__(self, raw: io.RawIOBase, kind: str, what: str):
        self.raw = io.BufferedReader(raw, CHUNK)
        self.kind = kind
        self.what = what
        self.buf = b""
        self.done = False
        self.dec: Any
        if kind == "xz":
            self.dec = lzma.LZMADecompressor()
        elif kind == "gz":
            self.dec = zlib.decompressobj(47)
        elif kind == "bz2":
            self.dec = bz2.BZ2Decompressor()
        elif kind == "zst":
            self.dec = zstandard.ZstdDecompressor().decompressobj()
        else:
            self.dec = None

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        while not self.buf and not self.done:
            chunk = self.raw.read(CHUNK)
            if not chunk:
                self.done = True
                finished = self.dec is None or getattr(self.dec, "eof", True)
                if self.kind == "zst":
                    finished = True  # zstd frames are checked by the tar reader's EOF check
                if not finished:
                    raise DebFormatError(f"{self.what}: truncated data.tar.{self.kind}")
                return
            if self.dec is None:
                self.buf = chunk
            else:
                try:
                    self.buf = self.dec.decompress(chunk)
                except (lzma.LZMAError, zlib.error, OSError, zstandard.ZstdError, EOFError) as exc:
                    raise DebFormatError(
                        f"{self.what}: corrupt data.tar.{self.kind} ({exc})"
                    ) from None

    def readinto(self, buf: bytearray | memoryview) -> int:  # type: ignore[override]
        self._fill()
        n = min(len(buf), len(self.buf))
        buf[:n] = self.buf[:n]
        self.buf = self.buf[n:]
        return n


def _member_stream(fh: BinaryIO, member: ArMember, what: str) -> BinaryIO:
    kind = member.name.rsplit(".", 1)[-1] if "." in member.name.split("tar", 1)[-1] else ""
    if kind not in ("", "xz", "gz", "bz2", "zst"):
        raise DebFormatError(f"{what}: unsupported compression {member.name}")
    raw = _Slice(fh, member.offset, member.size)
    return io.BufferedReader(_Decompressing(raw, kind, f"{what} {member.name}"), CHUNK)  # type: ignore[return-value,unused-ignore]


class DebFile:
    """An opened .deb: its control fields and a streaming view of its data.tar."""

    def __init__(self, path: Path, *, name: str | None = None):
        self.path = Path(path)
        self.what = name or self.path.name
        self.fh: BinaryIO = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        try:
            self.members = ar_members(self.fh, what=self.what)
        except BaseException:
            self.fh.close()
            raise

    def close(self) -> None:
        self.fh.close()

    def __enter__(self) -> DebFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _member(self, prefix: str) -> ArMember:
        for m in self.members:
            if m.name == prefix or m.name.startswith(prefix + "."):
                return m
        raise DebFormatError(f"{self.what}: no {prefix}.* member")

    def control_text(self) -> str:
        """The `control` file (package stanza), for /var/lib/dpkg/status.d."""
        stream = _member_stream(self.fh, self._member("control.tar"), self.what)
        try:
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                for info in tar:
                    if info.name.lstrip("./") == "control" and info.isfile():
                        f = tar.extractfile(info)
                        assert f is not None
                        return f.read().decode("utf-8", "replace")
        except tarfile.TarError as exc:
            raise DebFormatError(f"{self.what}: bad control.tar ({exc})") from None
        raise DebFormatError(f"{self.what}: control.tar has no control file")

    def data_tar(self) -> bytes:
        """The whole decompressed data.tar (checked for truncation), so the costly
        decompression can run in a worker thread ahead of the layer writer."""
        stream = _member_stream(self.fh, self._member("data.tar"), self.what)
        return stream.read()

    def data_entries(self) -> Iterator[tuple[tarfile.TarInfo, IO[bytes] | None]]:
        """Entries of data.tar in archive order, with a reader for regular files.

        The reader is only valid until the next entry is requested (streaming)."""
        stream = _member_stream(self.fh, self._member("data.tar"), self.what)
        try:
            with tarfile.open(fileobj=stream, mode="r|") as tar:
                for info in tar:
                    yield info, (tar.extractfile(info) if info.isreg() else None)
        except tarfile.ReadError as exc:
            raise DebFormatError(f"{self.what}: bad data.tar ({exc})") from None
        except (EOFError, tarfile.TarError) as exc:
            raise DebFormatError(f"{self.what}: truncated data.tar ({exc})") from None


def tar_entries(data: bytes, what: str) -> Iterator[tuple[tarfile.TarInfo, IO[bytes] | None]]:
    """Entries of an in-memory data.tar (see `DebFile.data_tar`)."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for info in tar:
                yield info, (tar.extractfile(info) if info.isreg() else None)
    except (EOFError, tarfile.TarError) as exc:
        raise DebFormatError(f"{what}: truncated or corrupt data.tar ({exc})") from None
