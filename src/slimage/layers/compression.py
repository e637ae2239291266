"""Layer compression: sniff the real format, stream-decompress with a bomb cap, and
compress fast and deterministically.

Media types lie (Docker archives call gzip blobs `layer.tar`; registries mislabel), so the
format is always decided from the first bytes. Gzip goes through ISA-L (isal), which runs
an order of magnitude faster than the stdlib's zlib; zstd through python-zstandard.
"""

from __future__ import annotations

import bz2
import lzma
import os
from collections.abc import Iterator
from typing import Any, BinaryIO, cast

import zstandard
from isal import igzip, isal_zlib

from slimage.errors import InvalidImageError, UnsafeArchiveError
from slimage.streams import ReadOnlyStream

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
XZ_MAGIC = b"\xfd7zXZ\x00"
BZIP2_MAGIC = b"BZh"
CHUNK = 1 << 20

# Decompression-bomb limits. A layer may legitimately expand a lot (sparse zero files),
# so the ratio is only enforced once the output is large enough to hurt.
MAX_LAYER_BYTES = int(os.environ.get("SLIMAGE_MAX_LAYER_BYTES", str(64 << 30)))
MAX_RATIO = int(os.environ.get("SLIMAGE_MAX_RATIO", "200"))
RATIO_GRACE_BYTES = 64 << 20


def sniff(prefix: bytes) -> str:
    """'gzip', 'zstd', 'xz', 'bzip2' or 'none' from a blob's first bytes."""
    if prefix.startswith(GZIP_MAGIC):
        return "gzip"
    if prefix.startswith(ZSTD_MAGIC):
        return "zstd"
    if prefix.startswith(XZ_MAGIC):
        return "xz"
    if prefix.startswith(BZIP2_MAGIC) and len(prefix) > 3 and prefix[3:4].isdigit():
        return "bzip2"
    return "none"


class _Peeked(ReadOnlyStream):
    """A stream with some bytes already read from it pushed back in front."""

    def __init__(self, head: bytes, raw: BinaryIO):
        self._head = head
        self._raw = raw
        self.consumed = 0

    def read(self, n: int = -1) -> bytes:
        if self._head:
            if n is None or n < 0:
                data = self._head + self._raw.read()
                self._head = b""
            else:
                data = self._head[:n]
                self._head = self._head[n:]
                if len(data) < n:
                    data += self._raw.read(n - len(data))
        else:
            data = self._raw.read(n)
        self.consumed += len(data)
        return data

    def close(self) -> None:
        self._raw.close()


# What a decoder raises on corrupt or truncated input. isal's IsalError is not an OSError,
# so a damaged gzip layer would otherwise escape as a traceback.
_DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    zstandard.ZstdError,
    lzma.LZMAError,
    ValueError,
    cast(type[BaseException], isal_zlib.error),
)


class _Capped(ReadOnlyStream):
    """Counts decompressed bytes and refuses a stream that behaves like a bomb."""

    def __init__(self, inner: BinaryIO, source: _Peeked, name: str, max_bytes: int, max_ratio: int):
        self._inner = inner
        self._source = source
        self._name = name
        self._max_bytes = max_bytes
        self._max_ratio = max_ratio
        self.produced = 0

    def read(self, n: int = -1) -> bytes:
        try:
            data = self._inner.read(n)
        except _DECODE_ERRORS as exc:
            raise InvalidImageError(
                f"{self._name}: corrupt or truncated compressed data ({exc})"
            ) from exc
        self.produced += len(data)
        if self.produced > self._max_bytes:
            raise UnsafeArchiveError(
                f"{self._name}: decompresses to more than {self._max_bytes} bytes (refusing a bomb)"
            )
        if self.produced > RATIO_GRACE_BYTES and self.produced > self._max_ratio * max(
            self._source.consumed, 1
        ):
            raise UnsafeArchiveError(
                f"{self._name}: compression ratio over {self._max_ratio}:1 (refusing a bomb)"
            )
        return data

    def close(self) -> None:
        self._inner.close()


def open_decompressed(
    raw: BinaryIO,
    *,
    name: str = "layer",
    max_bytes: int | None = None,
    max_ratio: int | None = None,
) -> tuple[BinaryIO, str]:
    """Wrap RAW so that reading it yields the uncompressed tar. Returns (stream, format)."""
    head = raw.read(8)
    kind = sniff(head)
    peeked = _Peeked(head, raw)
    inner: Any
    if kind == "none":
        return peeked, kind  # type: ignore[return-value]
    if kind == "gzip":
        inner = igzip.IGzipFile(fileobj=peeked, mode="rb")
    elif kind == "zstd":
        inner = zstandard.ZstdDecompressor().stream_reader(peeked, read_across_frames=True)  # type: ignore[arg-type]
    elif kind == "xz":
        inner = lzma.LZMAFile(peeked)  # type: ignore[arg-type]
    else:
        inner = bz2.BZ2File(peeked)  # type: ignore[call-overload]
    capped = _Capped(
        inner,
        peeked,
        name,
        MAX_LAYER_BYTES if max_bytes is None else max_bytes,
        MAX_RATIO if max_ratio is None else max_ratio,
    )
    return capped, kind  # type: ignore[return-value]


class Compressor:
    """Incremental, deterministic compressor: gzip without mtime or name, or zstd.

    `compress(chunk)` returns bytes to write; `flush()` returns the tail. Deterministic
    output is what makes SOURCE_DATE_EPOCH builds bit-identical across days.
    """

    def __init__(self, kind: str = "gzip", level: int | None = None):
        self.kind = kind
        self._obj: Any
        if kind == "gzip":
            # wbits=31: a gzip wrapper with mtime 0 and no file name.
            self._obj = isal_zlib.compressobj(1 if level is None else level, isal_zlib.DEFLATED, 31)
        elif kind == "zstd":
            self._obj = zstandard.ZstdCompressor(level=3 if level is None else level).compressobj()
        elif kind == "none":
            self._obj = None
        else:
            raise InvalidImageError(f"unknown compression {kind!r} (use gzip, zstd or none)")

    def compress(self, data: bytes) -> bytes:
        return data if self._obj is None else self._obj.compress(data)

    def flush(self) -> bytes:
        return b"" if self._obj is None else self._obj.flush()


def compress_chunks(chunks: Iterator[bytes], kind: str = "gzip") -> Iterator[bytes]:
    comp = Compressor(kind)
    for chunk in chunks:
        out = comp.compress(chunk)
        if out:
            yield out
    tail = comp.flush()
    if tail:
        yield tail
