"""What a pull or push did, blob by blob: the model behind `--json` and the progress bars.

Every blob gets one record with the action taken (`downloaded`, `uploaded`, `mounted`,
`skipped`) and the bytes that actually crossed the wire, so "only the missing layers
moved" is something a test or a user can check rather than take on trust.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol

DOWNLOADED = "downloaded"
UPLOADED = "uploaded"
MOUNTED = "mounted"
SKIPPED = "skipped"


@dataclass
class BlobReport:
    digest: str
    size: int
    media_type: str
    kind: str  # "layer", "config"
    action: str = ""
    bytes_sent: int = 0
    bytes_received: int = 0
    # For a mount: the repository the blob came from.
    mounted_from: str | None = None
    # How many times a transfer had to be retried (or resumed with Range).
    retries: int = 0


@dataclass
class TransferReport:
    """One pull or push. `digest` is the manifest digest as the registry names it."""

    operation: str  # "pull" or "push"
    reference: str
    registry: str
    repository: str
    digest: str = ""
    media_type: str = ""
    # When the reference named an index/manifest list: its digest, and the platform chosen.
    index_digest: str | None = None
    platform: str | None = None
    image_id: str = ""
    tag: str | None = None
    blobs: list[BlobReport] = field(default_factory=list)
    manifest_size: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    seconds: float = 0.0
    status: str = ""

    def total(self) -> None:
        self.bytes_sent = sum(b.bytes_sent for b in self.blobs)
        self.bytes_received = sum(b.bytes_received for b in self.blobs)

    def count(self, action: str) -> int:
        return sum(1 for b in self.blobs if b.action == action)


class ProgressSink(Protocol):
    """Receives per-blob progress; the CLI renders it with rich, the API ignores it."""

    def begin(self, blob: BlobReport) -> None: ...

    def advance(self, blob: BlobReport, nbytes: int) -> None: ...

    def end(self, blob: BlobReport) -> None: ...


class NullProgress:
    def begin(self, blob: BlobReport) -> None:
        pass

    def advance(self, blob: BlobReport, nbytes: int) -> None:
        pass

    def end(self, blob: BlobReport) -> None:
        pass


class CountingProgress(NullProgress):
    """Thread-safe byte counter, handy in tests and for a one-line summary."""

    def __init__(self) -> None:
        self.bytes = 0
        self._lock = threading.Lock()

    def advance(self, blob: BlobReport, nbytes: int) -> None:
        with self._lock:
            self.bytes += nbytes
