"""Small shared I/O pieces: a base for read-only stream wrappers, and atomic file writes.

Many parts of slimage wrap a stream (verify a digest, count decompressed bytes, read one
member of an archive in place). They implement `read` only; the rest of what `tarfile`,
`gzip` and friends expect comes from `ReadOnlyStream`. Every file slimage writes for the
user (refs, layer records, a fixed Dockerfile, cached packages) goes through
`atomic_write`, so a crash leaves the old file or the new one, never half of either.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any


class ReadOnlyStream:
    """Base for wrappers that define `read(n)`: adds readinto, readable, close, `with`."""

    def read(self, n: int = -1) -> bytes:  # pragma: no cover - always overridden
        raise NotImplementedError

    def readinto(self, buf: bytearray | memoryview) -> int:
        data = self.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        pass

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def atomic_write(path: str | os.PathLike[str], data: bytes, *, mode: int | None = None) -> None:
    """Write DATA to PATH through a temp file in the same directory, fsync, then rename."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
