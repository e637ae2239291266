"""A small record of which repositories on which registry hold which blobs.

A push can then mount a layer from a sibling repository (`POST ...?mount=D&from=R`)
instead of uploading it again: the registry links the blob it already has. The record is
only a hint (a wrong entry costs one refused mount and a normal upload), so it is kept
small and written best-effort, under the store's lock, to `root/registry-blobs.json`.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

from slimage.store.store import Store

FILE_NAME = "registry-blobs.json"
MAX_REPOS_PER_BLOB = 8
MAX_BLOBS_PER_REGISTRY = 20000


def _path(store: Store) -> Path:
    return store.root / FILE_NAME


def _load(store: Store) -> dict[str, dict[str, list[str]]]:
    try:
        data = json.loads(_path(store).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def repos_with(store: Store, registry: str, digest: str) -> list[str]:
    """Repositories on REGISTRY where DIGEST was last seen, most recent first."""
    entry = _load(store).get(registry, {})
    repos = entry.get(digest) if isinstance(entry, dict) else None
    return list(repos) if isinstance(repos, list) else []


def record(store: Store, registry: str, repository: str, digests: list[str]) -> None:
    """Note that REPOSITORY on REGISTRY holds DIGESTS."""
    if not digests:
        return
    with contextlib.suppress(OSError), store.lock():
        data = _load(store)
        reg = data.setdefault(registry, {})
        for d in digests:
            repos = [r for r in reg.pop(d, []) if r != repository]
            reg[d] = [repository, *repos][:MAX_REPOS_PER_BLOB]
        if len(reg) > MAX_BLOBS_PER_REGISTRY:
            for d in list(reg)[: len(reg) - MAX_BLOBS_PER_REGISTRY]:
                del reg[d]
        fd, tmp = tempfile.mkstemp(dir=store.root, prefix=f".{FILE_NAME}.")
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(data, fh, separators=(",", ":"))
            os.replace(tmp, _path(store))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
