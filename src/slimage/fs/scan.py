"""Reading layers into a MergedTree, as fast as the layer's storage allows.

Two ways to read a layer:

- **In place.** When the layer is an uncompressed tar lying in a local file (a member of
  a `docker save` archive, a blob of an OCI layout), the scanner seeks from header to
  header and never reads file data it does not need. If the digest must be verified,
  child processes hash the same byte ranges meanwhile (`Verifier`, for a whole image;
  a thread for a single layer), so hashing and parsing really run at once when a core is
  free. `parse_records` does the same scan in a worker process.
- **Streaming.** Anything else (gzip/zstd blobs, the store) is decompressed and scanned
  in one pass through `Layer.open_tar()`, which verifies the diff_id at EOF.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import mmap
import os
import signal
import threading
from dataclasses import dataclass

from slimage.errors import DigestMismatchError, InvalidImageError
from slimage.image import Layer
from slimage.layers.compression import sniff
from slimage.layers.tarscan import CHUNK, OnEntry, TarEntry, TarScanner
from slimage.store.verified import VerifiedCache


@dataclass(frozen=True)
class FileSlice:
    """Where a blob's bytes are: LENGTH bytes at OFFSET of the local file PATH."""

    path: str
    offset: int
    length: int


_WINDOW = 2 << 20


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
            with open(self.path, "rb", buffering=0) as fh:
                size = os.fstat(fh.fileno()).st_size
                end = min(self.offset + self.length, size)
                pos = self.offset
                flags = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
                while pos < end:
                    # Hash straight from the page cache through small mappings: no copy
                    # into a buffer (~15% less CPU than readinto), hashlib drops the GIL,
                    # and only one window of pages counts in our RSS at a time.
                    start = pos - pos % mmap.ALLOCATIONGRANULARITY
                    stop = min(start + _WINDOW, end)
                    with mmap.mmap(
                        fh.fileno(), stop - start, flags=flags, prot=mmap.PROT_READ, offset=start
                    ) as mm:
                        view = memoryview(mm)
                        try:
                            h.update(view[pos - start :])
                        finally:
                            view.release()
                    self.read += stop - pos
                    pos = stop
            self.digest = "sha256:" + h.hexdigest()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            self.error = exc


class Verifier:
    """Checks the digests of in-place layers in child processes while the caller goes on
    scanning: the hashing of an image's layers overlaps all of its header parsing, not
    just that of the same layer. Processes, not threads: a thread hashing 8 MB windows
    still queues for the GIL behind the pure-Python header parser, and on two cores that
    cost about half the overlap. `finish()` waits and raises the first mismatch."""

    def __init__(self, cache: VerifiedCache | None = None) -> None:
        self._cache = cache
        self._jobs: list[tuple[str, FileSlice, str]] = []
        self._children: list[tuple[int, int, list[tuple[str, FileSlice, str]]]] = []

    def add(self, label: str, where: FileSlice, expected: str) -> None:
        if self._cache is not None and self._cache.known(
            where.path, where.offset, where.length, expected
        ):
            return  # these very bytes were verified before (see VerifiedCache)
        self._jobs.append((label, where, expected))

    @property
    def pending(self) -> int:
        """Layers that will be hashed (those not verified before)."""
        return len(self._jobs)

    def start(self, workers: int = 2) -> None:
        if not self._jobs:
            return
        # Largest layers first, each to the least loaded worker.
        self._jobs.sort(key=lambda job: -job[1].length)
        n = max(1, min(workers, len(self._jobs), os.cpu_count() or 1))
        bins: list[list[tuple[str, FileSlice, str]]] = [[] for _ in range(n)]
        loads = [0] * n
        for job in self._jobs:
            i = loads.index(min(loads))
            bins[i].append(job)
            loads[i] += job[1].length
        for jobs in bins:
            rfd, wfd = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child: hash, report one JSON list, leave at once
                code = 0
                try:
                    os.close(rfd)
                    out = []
                    for _label, where, _expected in jobs:
                        hasher = _Hasher(where.path, where.offset, where.length)
                        hasher.run()
                        err = None if hasher.error is None else str(hasher.error)
                        out.append([hasher.digest, hasher.read, err])
                    data = json.dumps(out).encode()
                    while data:
                        data = data[os.write(wfd, data) :]
                except BaseException:  # noqa: BLE001 - the parent sees the missing report
                    code = 1
                finally:
                    os._exit(code)
            os.close(wfd)
            self._children.append((pid, rfd, jobs))
        self._jobs = []

    def abort(self) -> None:
        """Stop hashing (the caller failed anyway)."""
        for pid, _, _ in self._children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.finish(raise_error=False)

    def finish(self, *, raise_error: bool = True) -> None:
        error: BaseException | None = None
        children, self._children = self._children, []
        for pid, rfd, jobs in children:
            with os.fdopen(rfd, "rb") as fh:
                raw = fh.read()
            os.waitpid(pid, 0)
            try:
                results = json.loads(raw) if raw else None
            except ValueError:
                results = None
            for n, (label, where, expected) in enumerate(jobs):
                if error is not None:
                    break
                if results is None or n >= len(results):
                    error = InvalidImageError(f"{label}: could not be verified (hashing failed)")
                    break
                digest, read, err = results[n]
                try:
                    _check_result(digest, read, err, label, where, expected)
                except BaseException as exc:  # noqa: BLE001 - raised below
                    error = exc
                    break
                if self._cache is not None:
                    self._cache.remember(where.path, where.offset, where.length, expected)
        if error is not None and raise_error:
            raise error


def _check(hasher: _Hasher, label: str, where: FileSlice, expected: str) -> None:
    err = None if hasher.error is None else str(hasher.error)
    _check_result(hasher.digest, hasher.read, err, label, where, expected)


def _check_result(
    digest: str, read: int, error: str | None, label: str, where: FileSlice, expected: str
) -> None:
    if error is not None:
        raise InvalidImageError(f"{label}: read failed ({error})")
    if read != where.length:
        raise InvalidImageError(f"{label}: truncated, {read} of {where.length} bytes")
    # An uncompressed blob's digest is its diff_id.
    if digest != expected:
        raise DigestMismatchError(f"{label}: content is {digest}, expected {expected}")


def is_plain_tar(where: FileSlice) -> bool:
    """Can this blob be scanned in place (an uncompressed tar)?"""
    try:
        with open(where.path, "rb") as fh:
            fh.seek(where.offset)
            return sniff(fh.read(8)) == "none"
    except OSError:
        return False


def scan_layer(
    layer: Layer,
    on_entry: OnEntry,
    *,
    where: FileSlice | None = None,
    verify: bool = True,
    name: str = "",
    verifier: Verifier | None = None,
) -> str:
    """Feed every entry of LAYER to ON_ENTRY. Returns how it was read: "seek",
    "seek+verify" or "stream" (the last always verifies, as `open_tar` does). With a
    VERIFIER, an in-place layer's digest is left to it (see Verifier)."""
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
                if verifier is not None:
                    scanner.scan_file(fd, where.offset, where.length)
                    scanner.close()
                    return "seek+verify" if verify else "seek"
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
                    _check(hasher, label, where, layer.diff_id)
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


# name, kind, size, linkname: all `analyze` needs; mode, uid, gid for `dive`'s attributes
Record = tuple[str, str, int, str, int, int, int]


def parse_records(where: FileSlice, label: str) -> list[Record]:
    """Scan an in-place layer into compact records (run in a worker process; the caller
    applies them to its tree in layer order). Nothing is hashed here."""
    out: list[Record] = []
    append = out.append

    def on_entry(e: TarEntry) -> None:
        append((e.name, e.kind, e.size, e.linkname, e.mode, e.uid, e.gid))

    fd = os.open(where.path, os.O_RDONLY)
    try:
        scanner = TarScanner(on_entry, name=label)
        scanner.scan_file(fd, where.offset, where.length)
        scanner.close()
    finally:
        os.close(fd)
    return out


def apply_records(records: list[Record], on_entry: OnEntry) -> None:
    for name, kind, size, link, mode, uid, gid in records:
        on_entry(TarEntry(name, kind, size, mode, uid, gid, 0.0, link, 0, 0, "", "", None, name))
