"""Which byte ranges of local files have already been verified against a digest.

Analysing a `docker save` archive means hashing every layer inside it; analysing the same
unchanged archive again should not. Like git's index, we trust a file's stat data to say
it has not changed, but unlike mtime (which anyone can set back) the key includes the
inode's change time, which only the kernel sets and every write, truncate, chmod or utime
moves. A hit therefore means: these very bytes hashed to this digest before.

Entries are empty files under `<store>/verified/`, named by a hash of the key; a lost or
stale entry only costs one re-hash.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path


class VerifiedCache:
    def __init__(self, root: str | os.PathLike[str]):
        self.dir = Path(root) / "verified"

    def _key(self, path: str, offset: int, length: int, digest: str) -> str | None:
        try:
            st = os.stat(path)
            real = os.path.realpath(path)
        except OSError:
            return None
        ident = (
            f"{real}\0{st.st_dev}\0{st.st_ino}\0{st.st_size}\0{st.st_mtime_ns}\0"
            f"{st.st_ctime_ns}\0{offset}\0{length}\0{digest}"
        )
        return hashlib.sha256(ident.encode("utf-8", "surrogateescape")).hexdigest()

    def known(self, path: str, offset: int, length: int, digest: str) -> bool:
        key = self._key(path, offset, length, digest)
        return key is not None and (self.dir / key[:2] / key).exists()

    def remember(self, path: str, offset: int, length: int, digest: str) -> None:
        key = self._key(path, offset, length, digest)
        if key is None:
            return
        with contextlib.suppress(OSError):  # a cache: failing to write it is harmless
            (self.dir / key[:2]).mkdir(parents=True, exist_ok=True)
            (self.dir / key[:2] / key).touch()
