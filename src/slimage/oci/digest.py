"""Digests: sha256 content addresses, diff_ids and ChainIDs.

A blob digest names the bytes as stored or sent (often compressed); a diff_id names the
uncompressed tar. The two are never interchangeable, so every API says which one it takes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import BinaryIO

from slimage.errors import DigestMismatchError, InvalidImageError
from slimage.streams import ReadOnlyStream

_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
CHUNK = 1 << 20


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def validate(digest: str, *, what: str = "digest") -> str:
    """Refuse anything but a well-formed sha256 digest; it is used to build file paths."""
    if not isinstance(digest, str) or not _DIGEST_RE.match(digest):
        shown = repr(digest) if len(repr(digest)) <= 100 else repr(digest)[:96] + "...'"
        raise InvalidImageError(f"invalid {what}: {shown} (expected sha256:<64 hex>)")
    return digest


def hex_of(digest: str) -> str:
    return validate(digest).split(":", 1)[1]


def short_id(digest: str, length: int = 12) -> str:
    return digest.split(":", 1)[-1][:length]


def chain_ids(diff_ids: Iterable[str]) -> list[str]:
    """ChainID per the OCI spec: identifies a layer together with everything beneath it."""
    out: list[str] = []
    for diff_id in diff_ids:
        if not out:
            out.append(diff_id)
        else:
            out.append(sha256_digest(f"{out[-1]} {diff_id}".encode()))
    return out


class VerifyingReader(ReadOnlyStream):
    """Wraps a stream and raises DigestMismatchError at EOF if the bytes were not DIGEST.

    Used on every read from the store and from archives, so corruption surfaces at the
    moment the data is consumed rather than much later as a mysterious bad layer.
    """

    def __init__(self, raw: BinaryIO, digest: str, *, size: int | None = None, name: str = ""):
        self._raw = raw
        self._digest = validate(digest)
        self._hash = hashlib.sha256()
        self._size = size
        self._seen = 0
        self._name = name or digest
        self._done = False

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        if data:
            self._hash.update(data)
            self._seen += len(data)
            if self._size is not None and self._seen > self._size:
                raise DigestMismatchError(
                    f"{self._name}: more than the expected {self._size} bytes"
                )
        elif not self._done and n != 0:
            self._finish()
        if n is None or n < 0:
            self._finish()
        return data

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        if self._size is not None and self._seen != self._size:
            raise DigestMismatchError(
                f"{self._name}: truncated, got {self._seen} of {self._size} bytes"
            )
        got = "sha256:" + self._hash.hexdigest()
        if got != self._digest:
            raise DigestMismatchError(f"{self._name}: content is {got}, expected {self._digest}")

    def close(self) -> None:
        self._raw.close()


def digest_stream(stream: BinaryIO) -> tuple[str, int]:
    h = hashlib.sha256()
    size = 0
    while chunk := stream.read(CHUNK):
        h.update(chunk)
        size += len(chunk)
    return "sha256:" + h.hexdigest(), size
