"""The package cache: .debs kept by their SHA256, verified before every use.

Content addressing makes the cache safe to share between builds, suites and mirrors, and
lets a lockfile build run offline once its packages were fetched.
"""

from __future__ import annotations

import os
from pathlib import Path

from slimage.bases import fetch
from slimage.bases.errors import HashMismatchError
from slimage.bases.lockfile import LockedPackage


class DebCache:
    def __init__(self, root: Path | None = None):
        base = Path(root) if root else fetch.default_cache_dir()
        self.root = base / "debs"

    def path_for(self, sha256: str) -> Path:
        return self.root / f"{sha256}.deb"

    def get(self, pkg: LockedPackage) -> Path:
        """The verified local copy of PKG, downloading it if needed."""
        path = self.path_for(pkg.sha256)
        if path.exists():
            if os.path.getsize(path) == pkg.size and fetch.file_sha256(path) == pkg.sha256:
                return path
            path.unlink(missing_ok=True)  # corrupt cache entry: fetch again
        try:
            return fetch.download_verified(pkg.url, path, pkg.sha256, pkg.size)
        except HashMismatchError as exc:
            raise HashMismatchError(f"{pkg.name} {pkg.version}: {exc}") from None
