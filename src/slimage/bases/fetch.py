"""HTTP GETs for the Debian client, and the on-disk cache they fill.

Mirrors are plain HTTP, so nothing fetched is trusted for what it is: InRelease is checked
by gpgv, everything else by the SHA256 the signed metadata gives. Files land in the cache
only after they verified (temp file, fsync, rename), so a refused download leaves nothing.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from slimage import streams
from slimage.bases.errors import HashMismatchError, RepositoryError

USER_AGENT = "slimage-bases/1"
TIMEOUT = 60
CHUNK = 1 << 20


def default_cache_dir() -> Path:
    """Where .debs and indexes are kept between builds (SLIMAGE_CACHE overrides)."""
    env = os.environ.get("SLIMAGE_CACHE")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "slimage"


def _open(url: str, *, retries: int = 2) -> Any:
    req = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    last: Exception | None = None
    for attempt in range(retries + 1):
        try:
            return urllib.request.urlopen(req, timeout=TIMEOUT)  # noqa: S310 - http mirrors are the point
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise RepositoryError(f"{url}: not found on the mirror (HTTP 404)") from None
            last = exc
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        if attempt < retries:
            time.sleep(0.5 * (attempt + 1))
    reason = getattr(last, "reason", None) or last
    raise RepositoryError(f"{url}: cannot fetch ({reason})")


def get_bytes(url: str, *, limit: int = 64 << 20) -> bytes:
    with _open(url) as resp:
        data = resp.read(limit + 1)
    if len(data) > limit:
        raise RepositoryError(f"{url}: larger than {limit} bytes, refused")
    return data


def download_verified(url: str, dest: Path, sha256: str, size: int | None = None) -> Path:
    """Stream URL to DEST, keeping it only if it hashes to SHA256 (and has SIZE bytes)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".part-")
    h = hashlib.sha256()
    total = 0
    try:
        with os.fdopen(fd, "wb") as out, _open(url) as resp:
            while chunk := resp.read(CHUNK):
                h.update(chunk)
                total += len(chunk)
                if size is not None and total > size:
                    break
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if size is not None and total != size:
            raise HashMismatchError(
                f"{url}: got {total} bytes, the signed index says {size}; refused"
            )
        if h.hexdigest() != sha256:
            raise HashMismatchError(
                f"{url}: sha256 {h.hexdigest()[:16]}… does not match the signed index "
                f"({sha256[:16]}…); refused"
            )
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def atomic_write(path: Path, data: bytes) -> None:
    """`slimage.streams.atomic_write`, creating the cache directory first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    streams.atomic_write(path, data)
