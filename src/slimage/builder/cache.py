"""The build cache: step key -> the layer (and time) that step produced.

A key is the hash of the parent step's key, the instruction after expansion, and (for
COPY/ADD) the digests of what it reads, so a change anywhere invalidates exactly the steps
that depend on it. Entries are written only after a step succeeded and its layer is in
the store; a failed RUN leaves nothing behind. Secrets never enter a key.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slimage.store.store import Store

if TYPE_CHECKING:
    from slimage.builder.remotecache import RemoteCaches


def step_key(parent: str, *parts: Any) -> str:
    h = hashlib.sha256()
    h.update(parent.encode())
    h.update(b"\0")
    h.update(json.dumps(parts, sort_keys=True, separators=(",", ":")).encode())
    return "sha256:" + h.hexdigest()


@dataclass
class CacheEntry:
    diff_id: str
    layer: dict[str, Any]  # the layer descriptor as stored
    created: str


class BuildCache:
    """The store's own cache, with the build's `--cache-from` sources behind it
    (`remote`, see builder.remotecache) and a note of every step entry the build used
    (`used`, in order: what `--cache-to` exports)."""

    def __init__(self, store: Store, *, enabled: bool = True, remote: RemoteCaches | None = None):
        self.store = store
        self.enabled = enabled
        self.dir = store.root / "build-cache"
        self.remote = remote
        self.used: dict[str, CacheEntry] = {}
        self.remote_hits = 0

    def lookup(self, key: str) -> CacheEntry | None:
        """GET, then the remote sources: a remote hit is taken without its bytes (they are
        fetched when something reads them) and noted locally for the next build."""
        hit = self.get(key)
        if hit is None and self.enabled and self.remote is not None:
            rec = self.remote.lookup(key)
            if rec is not None:
                hit = rec.entry()
                self.remote_hits += 1
                with contextlib.suppress(OSError):
                    self.put(key, hit)  # answered locally once the blob is here
        if hit is not None:
            self.used[key] = hit
        return hit

    def record(self, key: str, entry: CacheEntry) -> None:
        self.put(key, entry)
        self.used[key] = entry

    def _path(self, key: str) -> Path:
        return self.dir / key.split(":", 1)[-1]

    def get(self, key: str) -> CacheEntry | None:
        if not self.enabled:
            return None
        try:
            data = json.loads(self._path(key).read_bytes())
        except (OSError, ValueError):
            return None
        entry = CacheEntry(data["diff_id"], data["layer"], data["created"])
        if not self.store.has_blob(entry.layer["digest"]):
            return None  # gc took the layer: rebuild the step
        return entry

    def put(self, key: str, entry: CacheEntry) -> None:
        """Recorded even with --no-cache, so the next build can reuse the fresh result."""
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self._path(key)
        # A name of its own: two builds in one process (threads) may record the same step.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(
            json.dumps({"diff_id": entry.diff_id, "layer": entry.layer, "created": entry.created})
        )
        os.replace(tmp, path)
