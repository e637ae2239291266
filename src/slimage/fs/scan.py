"""Reading layers into a MergedTree, as fast as the layer's storage allows.

Two ways to read a layer:

- **In place.** When the layer is an uncompressed tar lying in a local file (a member of
  a `docker save` archive, a blob of an OCI layout), the scanner seeks from header to
  header and never reads file data it does not need. If the digest must be verified, a
  second thread reads and hashes the same byte range meanwhile; hashlib and os.pread
  release the GIL, so the two really run at once on two cores.
- **Streaming.** Anything else (gzip/zstd blobs, the store) is decompressed and scanned
  in one pass through `Layer.open_tar()`, which verifies the diff_id at EOF.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass

from slimage.errors import DigestMismatchError, InvalidImageError
from slimage.image import Layer
from slimage.layers.compression import sniff
from slimage.layers.tarscan import CHUNK, OnEntry, TarScanner


@dataclass(frozen=True)
class FileSlice:
    """Where a blob's bytes are: LENGTH bytes at OFFSET of the local file PATH."""

    path: str
    offset: int
    length: int


class _Hasher(threading.Thread):
    """Hashes a byte range of a file in the background (GIL released while hashing)."""

    def __init__(self, path: str, offset: int, length: int):
        super().__init__(daemon=True)
        self.path, self.offset, self.length = path, offset, length
        self.digest = ""
        self.read = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            h = hashlib.sha256()
            buf = bytearray(4 * CHUNK)
            view = memoryview(buf)
            with open(self.path, "rb", buffering=0) as fh:
                fh.seek(self.offset)
                left = self.length
                while left:
                    n = fh.readinto(view[: min(left, len(buf))])  # type: ignore[attr-defined]
                    if not n:
                        break
                    h.update(view[:n])
                    left -= n
                    self.read += n
            self.digest = "sha256:" + h.hexdigest()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            self.error = exc


def scan_layer(
    layer: Layer,
    on_entry: OnEntry,
    *,
    where: FileSlice | None = None,
    verify: bool = True,
    name: str = "",
) -> str:
    """Feed every entry of LAYER to ON_ENTRY. Returns how it was read: "seek",
    "seek+verify" or "stream" (the last always verifies, as `open_tar` does)."""
    label = name or f"layer {layer.diff_id}"
    scanner = TarScanner(on_entry, name=label)
    if where is not None:
        try:
            fd = os.open(where.path, os.O_RDONLY)
        except OSError as exc:
            raise InvalidImageError(f"{where.path}: cannot open ({exc.strerror})") from exc
        try:
            head = os.pread(fd, 8, where.offset)
            if sniff(head) == "none":
                hasher = None
                if verify:
                    hasher = _Hasher(where.path, where.offset, where.length)
                    hasher.start()
                try:
                    scanner.scan_file(fd, where.offset, where.length)
                    scanner.close()
                finally:
                    if hasher is not None:
                        hasher.join()
                if hasher is not None:
                    if hasher.error is not None:
                        raise InvalidImageError(f"{label}: read failed ({hasher.error})")
                    if hasher.read != where.length:
                        raise InvalidImageError(
                            f"{label}: truncated, {hasher.read} of {where.length} bytes"
                        )
                    # An uncompressed blob's digest is its diff_id.
                    if hasher.digest != layer.diff_id:
                        raise DigestMismatchError(
                            f"{label}: content is {hasher.digest}, expected {layer.diff_id}"
                        )
                    return "seek+verify"
                return "seek"
        finally:
            os.close(fd)
    stream = layer.open_tar()
    try:
        while chunk := stream.read(CHUNK):
            scanner.feed(chunk)
        scanner.close()
    finally:
        stream.close()
    return "stream"
