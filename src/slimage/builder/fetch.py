"""`ADD <url>`: download to a temp file, bounded, hashed as it streams.

A URL is input the Dockerfile's author controls but the server does not promise anything:
the body is streamed to disk (never held in memory) and cut off at a size cap, a
`--checksum` is checked while it streams, and a `Last-Modified` header that does not parse
is ignored, as Docker ignores it.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import tempfile
import urllib.request
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

from slimage.errors import BuildError

# The largest body `ADD <url>` accepts (bytes); SLIMAGE_ADD_URL_MAX_BYTES overrides it.
# Docker has no cap; one keeps a hostile or broken server from filling the disk.
DEFAULT_MAX_BYTES = 10 * 1024**3
# BuildKit's `--checksum` takes an OCI digest: these algorithms and hex lengths.
CHECKSUM_ALGOS = {"sha256": 64, "sha384": 96, "sha512": 128}
_CHUNK = 1 << 20


@dataclass
class Fetched:
    path: str  # the temp file holding the body (the caller renames or removes it)
    mtime: float | None  # from Last-Modified, when it parses


def max_bytes() -> int:
    text = os.environ.get("SLIMAGE_ADD_URL_MAX_BYTES", "")
    if text.isdigit() and int(text) > 0:
        return int(text)
    return DEFAULT_MAX_BYTES


def parse_checksum(checksum: str | None, what: str) -> tuple[str, str] | None:
    """`ALGO:HEX` of `ADD --checksum`, checked before anything is downloaded."""
    if not checksum:
        return None
    algo, _, want = checksum.partition(":")
    size = CHECKSUM_ALGOS.get(algo)
    if size is None:
        raise BuildError(
            f"{what}: --checksum={checksum}: unsupported digest algorithm {algo!r} "
            f"(use {', '.join(sorted(CHECKSUM_ALGOS))})"
        )
    if not re.fullmatch(f"[0-9a-f]{{{size}}}", want):
        raise BuildError(f"{what}: --checksum={checksum}: not a {algo} digest")
    return algo, want


def last_modified(value: str | None) -> float | None:
    """The header's time, or None when it is absent or does not parse."""
    if not value:
        return None
    try:
        ts = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, OverflowError, IndexError, OSError):
        return None
    return ts if ts == ts and -(2**62) < ts < 2**62 else None


def fetch(url: str, tmp_dir: str, *, checksum: str | None, what: str) -> Fetched:
    """Download URL into a new temp file in TMP_DIR; a BuildError (and no file) on any
    failure: network, HTTP status, size cap, checksum mismatch."""
    want = parse_checksum(checksum, what)
    cap = max_bytes()
    hasher = hashlib.new(want[0]) if want else None
    fd, tmp = tempfile.mkstemp(dir=tmp_dir, prefix=".slimage-add-")
    ok = False
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(url, timeout=60) as resp:
                    length = resp.headers.get("Content-Length")
                    if length and length.strip().isdigit() and int(length) > cap:
                        raise BuildError(
                            f"{what} {url}: the body is {int(length)} bytes, over the "
                            f"{cap}-byte limit (SLIMAGE_ADD_URL_MAX_BYTES)"
                        )
                    mtime = last_modified(resp.headers.get("Last-Modified"))
                    total = 0
                    while chunk := resp.read(_CHUNK):
                        total += len(chunk)
                        if total > cap:
                            raise BuildError(
                                f"{what} {url}: the body is over the {cap}-byte limit "
                                "(SLIMAGE_ADD_URL_MAX_BYTES)"
                            )
                        if hasher is not None:
                            hasher.update(chunk)
                        out.write(chunk)
            except (OSError, ValueError, http.client.HTTPException) as exc:
                # OSError covers URLError, timeouts and resets; ValueError a malformed
                # URL; HTTPException a server that breaks the protocol mid-body.
                raise BuildError(f"{what} {url}: {exc or type(exc).__name__}") from None
        if want is not None and hasher is not None and hasher.hexdigest() != want[1]:
            raise BuildError(
                f"{what} {url}: digest mismatch {want[0]}:{hasher.hexdigest()}: expected {checksum}"
            )
        ok = True
        return Fetched(tmp, mtime)
    finally:
        if not ok:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


__all__ = ["Fetched", "fetch", "last_modified", "max_bytes", "parse_checksum"]
