"""The build cache: step key -> the layer (and time) that step produced.

A key is the hash of the parent step's key, the instruction after expansion, and (for
COPY/ADD) the digests of what it reads, so a change anywhere invalidates exactly the steps
that depend on it. Entries are written only after a step succeeded and its layer is in
the store; a failed RUN leaves nothing behind. Secrets never enter a key.

`ADD <url>` reads a body only the server knows, so its key holds the body's digest, and
`<store>/build-urls/<sha256 of the URL>` keeps what the last downloads of each URL said
(digests and validators, see builder.fetch) so that the next build can ask "changed?"
instead of downloading it again.
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
    from slimage.builder.fetch import UrlRecord
    from slimage.builder.remotecache import RemoteCaches


# How many bodies of one URL are remembered (their validators sent on the next request).
URL_RECORDS = 8


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
        # Every URL the build's ADD steps asked, as the no-op record must ask it again
        # (see builder.noop): a UrlRecord dict, {"url", "pinned"} for a --checksum, or
        # {"url"} alone when nothing but a new download can tell it is unchanged.
        self.url_inputs: list[dict[str, Any]] = []

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

    def _url_path(self, url: str) -> Path:
        return (
            self.store.root
            / "build-urls"
            / hashlib.sha256(url.encode("utf-8", "surrogateescape")).hexdigest()
        )

    def url_records(self, url: str) -> list[UrlRecord]:
        """What the last downloads of URL said, newest first; none with --no-cache (the
        step needs the bytes then: a "not modified" would only cost a second request)."""
        return self._url_records(url) if self.enabled else []

    def _url_records(self, url: str) -> list[UrlRecord]:
        from slimage.builder.fetch import UrlRecord

        try:
            data = json.loads(self._url_path(url).read_bytes())
        except (OSError, ValueError):
            return []
        recs = [UrlRecord.from_dict(d) for d in data] if isinstance(data, list) else []
        return [r for r in recs if r is not None and r.url == url and r.revalidatable()]

    def put_url(self, rec: UrlRecord) -> None:
        """Keep REC, newest first, for the next build (only if it can be re-validated; a
        failure to write costs only a download). The last few bodies are kept, as
        BuildKit keeps the ETag of every download it still has."""
        if not rec.revalidatable():
            return
        keep = [rec] + [
            r
            for r in self._url_records(rec.url)
            if (r.digest, r.etag, r.last_modified) != (rec.digest, rec.etag, rec.last_modified)
        ]
        path = self._url_path(rec.url)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps([r.to_dict() for r in keep[:URL_RECORDS]]))
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()

    def note_url(self, entry: dict[str, Any]) -> None:
        self.url_inputs.append(entry)
