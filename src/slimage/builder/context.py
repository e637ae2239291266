"""The build context: which files a COPY may read, .dockerignore, globs and content digests.

Sources are always resolved inside the context directory: `..` or a symlink that would
leave it is an error, as with BuildKit. The digests of what a COPY reads go into its cache
key, so editing one file rebuilds from the first step that reads it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slimage.dockerfile.dockerignore import DockerIgnore, load_ignore_patterns
from slimage.errors import BuildError


def _go_glob_regex(pattern: str) -> str:
    """Go filepath.Match syntax to a regex (`*` and `?` never cross `/`), plus `**`."""
    out = []
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            if pattern.startswith("**", i):
                i += 2
                if i < n and pattern[i] == "/":
                    i += 1
                    out.append("(?:.*/)?")
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            j = pattern.find("]", i + 1)
            if j < 0:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : j]
                if body.startswith("^") or body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = j
        elif c == "\\" and i + 1 < n:
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def has_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


@dataclass
class Source:
    """One COPY source: its path relative to the context (or a rootfs) and where it is."""

    rel: str
    path: Path


class BuildContext:
    def __init__(
        self, root: str | Path, dockerfile: Path | None = None, *, stat_cache: Path | None = None
    ):
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise BuildError(f"build context {root} is not a directory")
        self.ignore = DockerIgnore(load_ignore_patterns(self.root, dockerfile))
        self._digests: dict[str, str] = {}
        # path -> [size, mtime_ns, ctime_ns, inode, sha256]: a file whose stat is unchanged
        # is not read again (BuildKit's content-hash cache does the same).
        self._stat_cache_path = stat_cache
        self._stat_cache: dict[str, list[Any]] | None = None
        self._stat_dirty = False

    def _cached_file_digest(self, path: Path, st: os.stat_result) -> str:
        if self._stat_cache is None:
            self._stat_cache = {}
            if self._stat_cache_path is not None:
                try:
                    self._stat_cache = json.loads(self._stat_cache_path.read_bytes())
                except (OSError, ValueError):
                    self._stat_cache = {}
        key = str(path)
        sig = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
        hit = self._stat_cache.get(key)
        if hit is not None and hit[:4] == sig:
            return str(hit[4])
        digest = _file_digest(path, st)
        self._stat_cache[key] = [*sig, digest]
        self._stat_dirty = True
        return digest

    def save_stat_cache(self) -> None:
        """Persist what this build hashed (atomically; a lost update only costs a re-hash)."""
        if not self._stat_dirty or self._stat_cache_path is None or self._stat_cache is None:
            return
        tmp = self._stat_cache_path.with_name(self._stat_cache_path.name + f".{os.getpid()}")
        with contextlib.suppress(OSError):
            tmp.write_text(json.dumps(self._stat_cache))
            os.replace(tmp, self._stat_cache_path)

    def ignored(self, rel: str) -> bool:
        """Left out by .dockerignore (BuildKit's rules, from slimage.dockerfile)."""
        return bool(self.ignore) and self.ignore.matches(rel)

    def _inside(self, rel: str) -> Path:
        norm = os.path.normpath("/" + rel).lstrip("/")
        path = self.root / norm if norm else self.root
        real = Path(os.path.realpath(path))
        if real != self.root and self.root not in real.parents:
            raise BuildError(f"COPY source {rel!r} is outside the build context")
        return path

    def resolve(self, pattern: str) -> list[Source]:
        """The files a COPY source names: a path or a glob, minus .dockerignore'd ones."""
        raw = pattern
        norm = os.path.normpath("/" + pattern).lstrip("/")
        if pattern.replace("\\", "/").startswith("../") or "/../" in "/" + pattern.replace(
            "\\", "/"
        ):
            if os.path.normpath(pattern).startswith(".."):
                raise BuildError(f"COPY source {raw!r} is outside the build context")
        if not has_glob(norm):
            path = self._inside(norm)
            if not os.path.lexists(path) or (norm and self.ignored(norm)):
                raise BuildError(f'failed to compute cache key: "/{norm}": not found')
            return [Source(norm, path)]
        rx = re.compile("^" + _go_glob_regex(norm) + "$")
        found: list[Source] = []
        depth = norm.count("/")
        for dirpath, dirnames, filenames in os.walk(self.root):
            reldir = os.path.relpath(dirpath, self.root)
            reldir = "" if reldir == "." else reldir
            level = reldir.count("/") + 1 if reldir else 0
            for name in sorted(dirnames + filenames):
                rel = f"{reldir}/{name}" if reldir else name
                if rx.match(rel) and not self.ignored(rel):
                    found.append(Source(rel, self.root / rel))
            if level >= depth and "**" not in norm:
                dirnames[:] = []
        if not found:
            raise BuildError(f'failed to compute cache key: "/{norm}": not found')
        found.sort(key=lambda s: s.rel)
        return found

    def walk(self, src: Source) -> list[str]:
        """Every path under SRC (relative to the context) that the copy will include."""
        out: list[str] = []
        if not src.path.is_dir() or src.path.is_symlink() and not os.path.isdir(src.path):
            return out
        for dirpath, dirnames, filenames in os.walk(src.path):
            reldir = os.path.relpath(dirpath, self.root)
            reldir = "" if reldir == "." else reldir
            keep = []
            for d in sorted(dirnames):
                rel = f"{reldir}/{d}" if reldir else d
                if self.ignored(rel) and not self._has_exception_under(rel):
                    continue
                keep.append(d)
                if not self.ignored(rel):
                    out.append(rel)
            dirnames[:] = keep
            for f in sorted(filenames):
                rel = f"{reldir}/{f}" if reldir else f
                if not self.ignored(rel):
                    out.append(rel)
        return sorted(out)

    def walk_included(self, rel: str) -> bool:
        """Whether anything under directory REL survives .dockerignore."""
        base = self.root / rel
        for dirpath, dirnames, filenames in os.walk(base):
            reldir = os.path.relpath(dirpath, self.root)
            for name in dirnames + filenames:
                if not self.ignored(f"{reldir}/{name}"):
                    return True
        return False

    def _has_exception_under(self, rel: str) -> bool:
        return self.ignore.exclusions

    def digest(self, src: Source) -> str:
        """Content digest of a source (file or tree): names, types, modes, contents."""
        cached = self._digests.get(src.rel)
        if cached:
            return cached
        h = hashlib.sha256()
        paths = [src.rel] + self.walk(src)
        for rel in paths:
            p = self.root / rel if rel else self.root
            st = os.lstat(p) if rel != src.rel else os.stat(p)
            h.update(f"{rel}\0{stat.S_IFMT(st.st_mode)}\0{st.st_mode & 0o7777}\0".encode())
            if stat.S_ISREG(st.st_mode):
                h.update(self._cached_file_digest(p, st).encode())
            elif stat.S_ISLNK(st.st_mode):
                h.update(os.readlink(p).encode())
        out = "sha256:" + h.hexdigest()
        self._digests[src.rel] = out
        return out


def _file_digest(path: Path, st: os.stat_result) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


__all__ = ["BuildContext", "Source", "has_glob"]
