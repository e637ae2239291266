"""Small shared I/O pieces: a base for read-only stream wrappers, and atomic file writes.

Many parts of slimage wrap a stream (verify a digest, count decompressed bytes, read one
member of an archive in place). They implement `read` only; the rest of what `tarfile`,
`gzip` and friends expect comes from `ReadOnlyStream`. Every file slimage writes for the
user (refs, layer records, a fixed Dockerfile, cached packages) goes through
`atomic_write`, so a crash leaves the old file or the new one, never half of either.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO


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


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike[str], *, mode: int | None = None) -> Iterator[BinaryIO]:
    """A file that appears at PATH only once it is complete and on disk.

    The one way slimage writes a file: a temp file beside PATH (same file system, so the
    rename is atomic), fsync, rename, then fsync the directory so the rename itself
    survives a crash. On any error the temp file is removed and PATH is untouched."""
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(parent)


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make a rename or a new entry in PATH durable (best effort where unsupported)."""
    try:
        dfd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def atomic_write(path: str | os.PathLike[str], data: bytes, *, mode: int | None = None) -> None:
    """Write DATA to PATH through `atomic_output`."""
    with atomic_output(path, mode=mode) as fh:
        fh.write(data)
