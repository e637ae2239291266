"""`ADD <url>`: download to a temp file, bounded, hashed as it streams, re-validated.

A URL is input the Dockerfile's author controls but the server does not promise anything:
the body is streamed to disk (never held in memory) and cut off at a size cap, a
`--checksum` is checked while it streams, and a `Last-Modified` header that does not parse
is ignored, as Docker ignores it.

The build cache keys an `ADD <url>` step by the body's digest, so the URL is asked again
on every build (BuildKit does the same). What the last download of the URL said
(`UrlRecord`: its digest and validators) lets an unchanged body go without a download:

- with ETags, the request carries `If-None-Match` with those of the last few bodies (as
  BuildKit's does, so a file put back to an earlier version is not downloaded either); a
  304, or a 200 naming one of them (BuildKit's HEAD check, for servers that ignore the
  condition), reuses that body's digest;
- without one, a 200 whose `Last-Modified` is the recorded one, byte for byte, and whose
  length is the recorded one reuses it, but only if the server's `Date` was a second or
  more past that `Last-Modified` when it was recorded (RFC 9110 8.8.2.2: otherwise the
  file may have changed again within that second). `If-Modified-Since` is not sent: it
  asks "newer than", and a file put back to an older version would answer 304.

Only stdlib and `slimage.errors` are imported: the no-op rebuild check
(`builder.noop`) uses `unchanged` before the builder is loaded.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.client
import os
import re
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from email.message import Message
from email.utils import parsedate_to_datetime
from typing import Any

from slimage.errors import BuildError

# The largest body `ADD <url>` accepts (bytes); SLIMAGE_ADD_URL_MAX_BYTES overrides it.
# Docker has no cap; one keeps a hostile or broken server from filling the disk.
DEFAULT_MAX_BYTES = 10 * 1024**3
# BuildKit's `--checksum` takes an OCI digest: these algorithms and hex lengths.
CHECKSUM_ALGOS = {"sha256": 64, "sha384": 96, "sha512": 128}
_CHUNK = 1 << 20
TIMEOUT = 60.0


@dataclass
class UrlRecord:
    """What one download of URL said: enough to ask "still the same?" next time."""

    url: str
    digest: str  # sha256:<hex> of the body
    size: int
    mtime: float | None  # from Last-Modified, when it parses
    etag: str | None = None
    last_modified: str | None = None  # the header as sent
    stable: bool = False  # Date was >= Last-Modified + 1 s: the header may be compared

    def revalidatable(self) -> bool:
        """Whether a later request can tell this body is unchanged without its bytes."""
        return bool(self.etag) or bool(self.last_modified and self.stable)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> UrlRecord | None:
        """The record in DATA, or None when it is not one (a damaged file is no record)."""
        try:
            rec = cls(**data)
        except TypeError:
            return None
        ok = (
            isinstance(rec.url, str)
            and isinstance(rec.digest, str)
            and re.fullmatch(r"sha256:[0-9a-f]{64}", rec.digest) is not None
            and isinstance(rec.size, int)
            and (rec.mtime is None or isinstance(rec.mtime, (int, float)))
            and (rec.etag is None or isinstance(rec.etag, str))
            and (rec.last_modified is None or isinstance(rec.last_modified, str))
        )
        return rec if ok else None


@dataclass
class Fetched:
    """One answer for a URL: a new body in a temp file, or the recorded one (`path` None:
    the server said it has not changed)."""

    path: str | None  # the temp file holding the body (the caller takes or discards it)
    record: UrlRecord  # digest and validators of the body this answer stands for
    fd: int | None = None  # holds a flock on PATH so store gc leaves it alone

    @property
    def mtime(self) -> float | None:
        return self.record.mtime

    @property
    def fresh(self) -> bool:
        return self.path is not None

    def discard(self) -> None:
        """Remove the temp file (if any) and drop its lock; safe to call twice."""
        if self.path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            self.path = None
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None


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


def _etag_value(value: str | None) -> str:
    """An ETag for comparison: BuildKit drops the weak marker, and so does this."""
    return (value or "").strip().removeprefix("W/")


def _stable(headers: Message) -> bool:
    """Whether the response's Last-Modified is at least a second before its Date."""
    lm = last_modified(headers.get("Last-Modified"))
    date = last_modified(headers.get("Date"))
    return lm is not None and date is not None and date >= lm + 1


def _same(headers: Message, known: Sequence[UrlRecord]) -> UrlRecord | None:
    """The body of KNOWN a 200 answer's headers say it is, if any."""
    got = headers.get("ETag")
    length = (headers.get("Content-Length") or "").strip()
    for rec in known:
        if rec.etag:
            if got and _etag_value(got) == _etag_value(rec.etag):
                return rec
        elif (
            rec.last_modified
            and rec.stable
            and headers.get("Last-Modified") == rec.last_modified
            and length.isdigit()
            and int(length) == rec.size
        ):
            return rec
    return None


def _etags(known: Sequence[UrlRecord]) -> list[str]:
    return list(dict.fromkeys(rec.etag for rec in known if rec.etag))


def _open(url: str, known: Sequence[UrlRecord], timeout: float) -> Any:
    """The response to a GET of URL, or the record of KNOWN it still serves (then the
    connection is closed before any of the body is read). Raises what urllib raises."""
    req = urllib.request.Request(url)
    etags = _etags(known)
    if etags:
        req.add_header("If-None-Match", ", ".join(etags))
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code != 304 or not etags:
            raise
        got = exc.headers.get("ETag") if exc.headers is not None else None
        exc.close()
        # A 304 without an ETag answers the one we sent, if we sent one; otherwise it
        # does not say which body it means (BuildKit refuses it): ask without a condition.
        if not got and len(etags) == 1:
            got = etags[0]
        for rec in known:
            if got and rec.etag and _etag_value(rec.etag) == _etag_value(got):
                return rec
        return urllib.request.urlopen(urllib.request.Request(url), timeout=timeout)
    same = _same(resp.headers, known)
    if same is not None:
        resp.close()
        return same
    return resp


def unchanged(record: dict[str, Any], timeout: float = 30.0) -> bool:
    """Whether the URL of RECORD (a `UrlRecord` dict) still serves that body, asked the
    way a build asks; any doubt (no validators, an error, another body) is False."""
    known = UrlRecord.from_dict(record)
    if known is None or not known.revalidatable():
        return False
    try:
        resp = _open(known.url, [known], timeout)
    except (OSError, ValueError, http.client.HTTPException):
        return False
    if isinstance(resp, UrlRecord):
        return True
    resp.close()
    return False


def fetch(
    url: str,
    tmp_dir: str,
    *,
    checksum: str | None,
    what: str,
    known: Sequence[UrlRecord] = (),
    expect: str | None = None,
    lock: bool = False,
) -> Fetched:
    """Download URL into a new temp file in TMP_DIR, or nothing when the server says it
    still serves one of the KNOWN bodies (newest first). A BuildError (and no file) on any failure:
    network, HTTP status, size cap, `--checksum` mismatch, or a body whose sha256 is not
    EXPECT (the digest a step's cache key was made from). LOCK: hold a flock on the file
    until `Fetched.discard` (for files in the store's tmp/, which gc clears)."""
    want = parse_checksum(checksum, what)
    cap = max_bytes()
    sha = hashlib.sha256()
    hasher = hashlib.new(want[0]) if want and want[0] != "sha256" else None
    fd, tmp = tempfile.mkstemp(dir=tmp_dir, prefix=".slimage-add-")
    got: Fetched | None = None
    try:
        if lock:
            fcntl.flock(fd, fcntl.LOCK_EX)
        with open(fd, "wb", closefd=False) as out:
            try:
                resp = _open(url, known, TIMEOUT)
                if isinstance(resp, UrlRecord):
                    got = Fetched(None, resp)
                    return got
                with resp:
                    length = resp.headers.get("Content-Length")
                    if length and length.strip().isdigit() and int(length) > cap:
                        raise BuildError(
                            f"{what} {url}: the body is {int(length)} bytes, over the "
                            f"{cap}-byte limit (SLIMAGE_ADD_URL_MAX_BYTES)"
                        )
                    headers = resp.headers
                    total = 0
                    while chunk := resp.read(_CHUNK):
                        total += len(chunk)
                        if total > cap:
                            raise BuildError(
                                f"{what} {url}: the body is over the {cap}-byte limit "
                                "(SLIMAGE_ADD_URL_MAX_BYTES)"
                            )
                        sha.update(chunk)
                        if hasher is not None:
                            hasher.update(chunk)
                        out.write(chunk)
            except (OSError, ValueError, http.client.HTTPException) as exc:
                # OSError covers URLError, HTTPError, timeouts and resets; ValueError a
                # malformed URL; HTTPException a server that breaks the protocol mid-body.
                raise BuildError(f"{what} {url}: {exc or type(exc).__name__}") from None
        digest = "sha256:" + sha.hexdigest()
        if want is not None:
            have = hasher.hexdigest() if hasher is not None else sha.hexdigest()
            if have != want[1]:
                raise BuildError(
                    f"{what} {url}: digest mismatch {want[0]}:{have}: expected {checksum}"
                )
        if expect is not None and digest != expect:
            raise BuildError(
                f"{what} {url}: the file changed while the build ran (now {digest}, "
                f"was {expect}); build again"
            )
        etag = headers.get("ETag")
        lm = headers.get("Last-Modified")
        record = UrlRecord(
            url=url,
            digest=digest,
            size=total,
            mtime=last_modified(lm),
            etag=etag.strip() if etag and etag.strip() else None,
            last_modified=lm if last_modified(lm) is not None else None,
            stable=_stable(headers),
        )
        got = Fetched(tmp, record, fd if lock else None)
        return got
    finally:
        if got is None or got.path is None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        if got is None or got.fd is None:
            with contextlib.suppress(OSError):
                os.close(fd)


__all__ = [
    "Fetched",
    "UrlRecord",
    "fetch",
    "last_modified",
    "max_bytes",
    "parse_checksum",
    "unchanged",
]
