"""The check `load` makes on a layer, done on a pulled layer while its bytes arrive.

`pull` used to store a layer and then decompress the stored blob to check it (safe
entries, diff_id, Docker SIZE): every byte was read twice, and the check of the largest
layer, one thread's work, began only once that layer was downloaded. Here the download
thread hands each chunk it writes to a `StreamingLayerCheck`, which runs exactly the
code `index_stored_layer` runs, `open_decompressed` and then the store's scan
(`_scan_uncompressed`: the diff_id hash, `LayerChecker`, Docker SIZE), in two threads
joined by bounded in-memory pipes: one inflates, one hashes and scans. Decoders and
hashlib release the GIL, so download, inflate and scan of one layer overlap; on the
bench's two cores that took the check of its largest layer from 1.25 s to 1.0 s without
costing more CPU.

The split keeps the order of errors of one pass: an error the inflating thread meets is
queued behind the bytes it decoded before it, so the scan sees those first (a bad entry
early in a layer is reported even when the gzip is also cut short later).

The check never stores anything: the caller commits the blob only after `finish`
returned, so a refused layer never becomes a blob at all.
"""

from __future__ import annotations

import collections
import threading

from slimage.errors import DigestMismatchError, InvalidImageError
from slimage.layers.compression import open_decompressed
from slimage.oci.model import Descriptor
from slimage.store.images import _scan_uncompressed, record_layer  # `load`'s own scan
from slimage.store.store import CHUNK, Store
from slimage.streams import ReadOnlyStream

# How far a stage may run ahead of the next. Past it the writer waits (for the download,
# TCP flow control then holds the registry back), so memory stays bounded for any layer.
PIPE_LIMIT = 4 << 20


class _Stopped(Exception):
    """Raised in a check thread when the download gave up on this attempt."""


class _Pipe(ReadOnlyStream):
    """Chunks from one thread, read like a file by another.

    With `exact` (the compressed side) `read(n)` returns n bytes unless the stream ended:
    a file's contract, which the format sniffer relies on (it reads 8 bytes and must get
    8). Without it (the tar side) `read` returns the next chunk as it was put, uncopied.
    After the reader is gone (`reader_done`), `put` drops data instead of waiting for
    room that will never come. `fail(exc)` ends the stream with an error that `read`
    raises once the bytes put before it are read."""

    def __init__(self, *, exact: bool, limit: int = PIPE_LIMIT):
        self._exact = exact
        self._limit = limit
        self._cond = threading.Condition()
        self._chunks: collections.deque[bytes] = collections.deque()
        self._offset = 0  # bytes of _chunks[0] already read
        self._buffered = 0
        self._eof = False
        self._stopped = False
        self._error: BaseException | None = None
        self.reader_gone = False

    # -- the writing thread's side
    def put(self, data: bytes) -> None:
        with self._cond:
            while self._buffered >= self._limit and not self.reader_gone:
                self._cond.wait()
            if self.reader_gone:
                return
            self._chunks.append(data)
            self._buffered += len(data)
            self._cond.notify_all()

    def end(self) -> None:
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def fail(self, exc: BaseException) -> None:
        with self._cond:
            self._error = exc
            self._eof = True
            self._cond.notify_all()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    # -- the reading thread's side
    def reader_done(self) -> None:
        with self._cond:
            self.reader_gone = True
            self._chunks.clear()
            self._buffered = 0
            self._cond.notify_all()

    def read(self, n: int = -1) -> bytes:
        want = -1 if n is None or n < 0 else n
        parts: list[bytes] = []
        with self._cond:
            while want != 0:
                while not self._chunks and not self._eof and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    raise _Stopped()
                if not self._chunks:
                    if self._error is not None and not parts:
                        exc, self._error = self._error, None
                        raise exc
                    break  # the end (or the bytes before an error: it comes next)
                head = self._chunks[0]
                avail = len(head) - self._offset
                take = avail if want < 0 else min(avail, want)
                if self._offset == 0 and take == len(head):
                    parts.append(head)
                else:
                    parts.append(head[self._offset : self._offset + take])
                self._offset += take
                if self._offset == len(head):
                    self._chunks.popleft()
                    self._offset = 0
                self._buffered -= take
                if want > 0:
                    want -= take
                self._cond.notify_all()
                if not self._exact:
                    break
        return parts[0] if len(parts) == 1 else b"".join(parts)


class StreamingLayerCheck:
    """Checks one layer blob from the chunks `feed` is given, in two threads of its own.

    Messages are those `pull` gave when it checked the stored blob: prefixed with WHERE
    (the reference) and naming the layer's digest, e.g. `REF: layer sha256:…: 'x/../y':
    path has a '..' component`. One instance per download attempt: a download that starts
    over from byte 0 `cancel`s this one and starts another."""

    def __init__(self, desc: Descriptor, diff_id: str, where: str):
        self.desc = desc
        self.diff_id = diff_id
        self.where = where
        self._name = f"layer {desc.digest}"
        self._blob = _Pipe(exact=True)  # from the download thread
        self._tar = _Pipe(exact=False)  # from the inflating thread
        self._result: tuple[str, int, int, int] | None = None
        self._error: BaseException | None = None
        short = desc.digest[7:19]
        self._threads = [
            threading.Thread(target=self._inflate, name=f"inflate {short}", daemon=True),
            threading.Thread(target=self._scan, name=f"scan {short}", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def _inflate(self) -> None:
        try:
            stream, _ = open_decompressed(self._blob, name=self._name)  # type: ignore[arg-type]
            while chunk := stream.read(CHUNK):
                self._tar.put(chunk)
                if self._tar.reader_gone:
                    break  # the scan refused the layer: the rest needs no decoding
            self._tar.end()
        except _Stopped:
            self._tar.stop()
        except BaseException as exc:  # raised in the scan thread, after what came before
            self._tar.fail(exc)
        finally:
            self._blob.reader_done()

    def _scan(self) -> None:
        try:
            self._result = _scan_uncompressed(self._tar, self._name, [])  # type: ignore[arg-type]
        except _Stopped:
            pass
        except BaseException as exc:  # handed to the download thread by `finish`
            self._error = exc
        finally:
            self._tar.reader_done()

    def feed(self, data: bytes) -> None:
        """The next bytes of the blob (as written to the store). Once the check has
        failed they are dropped: the download still runs to its end, so a blob that is
        not the one the manifest names is reported as that (as before), not as bad."""
        self._blob.put(data)

    def finish(self) -> tuple[int, int, int]:
        """Wait for the check of the whole blob: (uncompressed size, Docker SIZE, entries),
        or the one-line error that refuses the layer."""
        self._blob.end()
        for thread in self._threads:
            thread.join()
        if self._error is not None:
            exc = self._error
            self._error = None
            if isinstance(exc, InvalidImageError):
                raise type(exc)(f"{self.where}: {exc}") from None
            raise exc
        assert self._result is not None
        got, usize, dsize, entries = self._result
        if got != self.diff_id:
            raise DigestMismatchError(
                f"{self.where}: {self._name} uncompresses to {got}, the config says {self.diff_id}"
            )
        return usize, dsize, entries

    def cancel(self) -> None:
        """Stop the check threads (this download attempt is over); idempotent."""
        self._blob.stop()
        for thread in self._threads:
            thread.join()


def record_checked_layer(
    store: Store, desc: Descriptor, diff_id: str, sizes: tuple[int, int, int]
) -> None:
    """Record what the streaming check learned, as `index_stored_layer` would have: the
    first blob stored for a diff_id stays its record."""
    if store.layer_info(diff_id) is None:
        record_layer(store, desc, diff_id, sizes)
