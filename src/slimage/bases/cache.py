"""The package cache: .debs kept by their SHA256, verified before every use.

Content addressing makes the cache safe to share between builds, suites and mirrors, and
lets a lockfile build run offline once its packages were fetched.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import zstandard

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

    # -- unpacked data.tar, for fast rebuilds ------------------------------------------

    def unpacked(self, pkg: LockedPackage, deb_path: Path) -> tuple[str, bytes]:
        """(control, data.tar) of a verified .deb. xz decompression is most of a build's
        work, so the first use keeps the tar recompressed with zstd (~10x faster to read)
        next to the .deb, named by the tar's own sha256, which is checked on every reuse."""
        from slimage.bases.debfile import DebFile

        control_path = self.root / f"{pkg.sha256}.control"
        for cand in self.root.glob(f"{pkg.sha256}.data.*.tar.zst"):
            want = cand.name.split(".")[2]
            try:
                data = zstandard.ZstdDecompressor().decompress(cand.read_bytes())
                control = control_path.read_text()
            except (OSError, zstandard.ZstdError, UnicodeDecodeError):
                data, control = b"", ""
            if data and hashlib.sha256(data).hexdigest() == want:
                return control, data
            cand.unlink(missing_ok=True)  # damaged: fall back to the .deb
        what = f"{pkg.name}_{pkg.version}_{pkg.architecture}.deb"
        with DebFile(deb_path, name=what) as deb:
            control, data = deb.control_text(), deb.data_tar()
        try:
            digest = hashlib.sha256(data).hexdigest()
            fetch.atomic_write(control_path, control.encode())
            packed = zstandard.ZstdCompressor(level=3).compress(data)
            fetch.atomic_write(self.root / f"{pkg.sha256}.data.{digest}.tar.zst", packed)
        except OSError:
            pass  # a read-only or full cache only costs speed
        return control, data
