"""The build context: which files a COPY, ADD or RUN mount may read, .dockerignore, globs
and content digests.

Every source goes through one resolver, `BuildContext.locate`, which treats the context
as `/` (BuildKit's rule): `..` stops at its root and a symlink at any depth, named or
matched by a glob, is followed inside it, so no path can reach a host file. Inside a copied
tree, symlinks stay symlinks. The digests of what a COPY reads go into its cache
key, so editing one file rebuilds from the first step that reads it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slimage.dockerfile.dockerignore import DockerIgnore, load_ignore_patterns
from slimage.errors import BuildError
from slimage.fs.rootpath import resolve_in_root


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
    """One source a COPY, ADD or RUN mount names.

    `rel` is the path as named (its last component names the copy), `path` the host path
    it resolves to and `real` that path relative to the context: `path` holds no symlink,
    so reading it can never leave the context."""

    rel: str
    path: Path
    real: str = ""


class BuildContext:
    def __init__(
        self, root: str | Path, dockerfile: Path | None = None, *, stat_cache: Path | None = None
    ):
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise BuildError(f"build context {root} is not a directory")
        self.ignore = DockerIgnore(load_ignore_patterns(self.root, dockerfile))
        self._digests: dict[str, str] = {}
        self._pruned: dict[str, bool] = {}
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
        tmp = self._stat_cache_path.with_name(
            f"{self._stat_cache_path.name}.{os.getpid()}.{threading.get_ident()}"
        )
        with contextlib.suppress(OSError):
            tmp.write_text(json.dumps(self._stat_cache))
            os.replace(tmp, self._stat_cache_path)

    def ignored(self, rel: str) -> bool:
        """Left out by .dockerignore (BuildKit's rules, from slimage.dockerfile)."""
        return bool(self.ignore) and self.ignore.matches(rel)

    def locate(self, rel: str, *, what: str = "COPY") -> Source:
        """The one resolver for a context path: REL with the context as `/`.

        BuildKit's rule: `..` stops at the context root and a symlink, at any depth, is
        followed as if the context were the whole filesystem (`/etc/passwd` means
        CONTEXT/etc/passwd), so no link can lead outside. A path whose own name or whose
        resolved target is .dockerignore'd does not exist for the build."""
        norm = os.path.normpath("/" + rel).lstrip("/")
        try:
            host = resolve_in_root(str(self.root), norm)
        except BuildError:
            raise BuildError(
                f'{what}: source "/{norm}": too many levels of symbolic links'
            ) from None
        real = os.path.relpath(host, self.root)
        real = "" if real == "." else real
        if (
            not os.path.lexists(host)
            or (norm and self.ignored(norm))
            or (real and self.ignored(real))
        ):
            via = f" (symlink to /{real})" if real != norm else ""
            raise BuildError(
                f'{what}: failed to compute cache key: "/{norm}": not found{via}'
                + (" (.. stops at the build context root)" if ".." in rel.split("/") else "")
            )
        return Source(norm, Path(host), real)

    def resolve(self, pattern: str, *, what: str = "COPY", glob: bool = True) -> list[Source]:
        """The sources a COPY/ADD source (a path or, with GLOB, a Go glob plus `**`) names,
        minus .dockerignore'd ones, each resolved by `locate`.

        As BuildKit (fsutil's ResolveWildcards): the components before the first one with
        a wildcard name a directory, resolved by `locate` (so a symlink there is followed
        inside the context) and required to exist; the rest of the pattern is matched
        below it without descending into symlinked directories, and a matched symlink is
        then resolved like a named one, so a glob can no more leave the context than a
        plain path. A wildcard that matches nothing names no source: BuildKit copies
        nothing and goes on (dockerfile2llb's AllowEmptyWildcard, for COPY and ADD), and
        so do we; a plain path that does not exist is still an error."""
        norm = os.path.normpath("/" + pattern).lstrip("/")
        if not glob or not has_glob(norm):
            return [self.locate(pattern, what=what)]
        parts = norm.split("/")
        first = next(i for i, part in enumerate(parts) if has_glob(part))
        prefix, rest = "/".join(parts[:first]), "/".join(parts[first:])
        try:
            rx = re.compile("^" + _go_glob_regex(rest) + "$")
        except re.error as exc:
            raise BuildError(f"{what} source {pattern!r}: bad pattern: {exc}") from None
        base = self._glob_base(prefix, what) if prefix else self.root
        names: list[str] = []
        depth = rest.count("/")
        for dirpath, dirnames, filenames in os.walk(base):
            reldir = os.path.relpath(dirpath, base)
            reldir = "" if reldir == "." else reldir
            level = reldir.count("/") + 1 if reldir else 0
            for name in sorted(dirnames + filenames):
                rel = f"{reldir}/{name}" if reldir else name
                if not rx.match(rel):
                    continue
                named = f"{prefix}/{rel}" if prefix else rel
                real = os.path.relpath(os.path.join(dirpath, name), self.root)
                if not self.ignored(named) and not self.ignored(real):
                    names.append(named)
            if level >= depth and "**" not in rest:
                dirnames[:] = []
        return [self.locate(rel, what=what) for rel in sorted(names)]

    def _glob_base(self, prefix: str, what: str) -> Path:
        """The directory PREFIX (a glob's fixed leading part) names; it must exist, as in
        BuildKit. A .dockerignore'd one counts when a `!` rule re-includes something in
        it, since BuildKit then sends that much of it."""
        try:
            src = self.locate(prefix, what=what)
        except BuildError as exc:
            if not self.ignore.exclusions:
                raise
            try:
                host = resolve_in_root(str(self.root), prefix)
            except BuildError:
                raise exc from None
            real = os.path.relpath(host, self.root)
            if not os.path.isdir(host) or os.path.islink(host) or not self.walk_included(real):
                raise exc from None
            return Path(host)
        if not src.path.is_dir():
            raise BuildError(f'{what}: source "/{prefix}": not a directory')
        return src.path

    def walk(self, src: Source) -> list[str]:
        """Every path under SRC (relative to the context) that the copy will include."""
        out: list[str] = []
        pruned = False
        if not src.path.is_dir() or src.path.is_symlink():
            return out
        for dirpath, dirnames, filenames in os.walk(src.path):
            reldir = os.path.relpath(dirpath, self.root)
            reldir = "" if reldir == "." else reldir
            keep = []
            for d in sorted(dirnames):
                rel = f"{reldir}/{d}" if reldir else d
                if self.ignored(rel) and not self._has_exception_under(rel):
                    pruned = True
                    continue
                keep.append(d)
                if not self.ignored(rel):
                    out.append(rel)
            dirnames[:] = keep
            for f in sorted(filenames):
                rel = f"{reldir}/{f}" if reldir else f
                if not self.ignored(rel):
                    out.append(rel)
                else:
                    pruned = True
        self._pruned[src.real] = pruned
        return sorted(out)

    def hides_something(self, src: Source) -> bool:
        """Whether .dockerignore leaves out anything under SRC (then a RUN mount of it
        must be a filtered copy, not the directory itself)."""
        if src.real not in self._pruned:
            self.walk(src)
        return self._pruned.get(src.real, False)

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
        cached = self._digests.get(src.real)
        if cached:
            return cached
        h = hashlib.sha256()
        paths = [src.real] + self.walk(src)
        for rel in paths:
            p = self.root / rel if rel else self.root
            st = os.lstat(p)  # never follows: src.path is resolved, links inside stay links
            h.update(f"{rel}\0{stat.S_IFMT(st.st_mode)}\0{st.st_mode & 0o7777}\0".encode())
            if stat.S_ISREG(st.st_mode):
                h.update(self._cached_file_digest(p, st).encode())
            elif stat.S_ISLNK(st.st_mode):
                h.update(os.readlink(p).encode())
        out = "sha256:" + h.hexdigest()
        self._digests[src.real] = out
        return out

    def materialize(self, src: Source, dest: Path) -> Path:
        """A private copy of SRC (a file or a tree, without its .dockerignore'd entries,
        symlinks kept as symlinks) under DEST: what a RUN mount gets when it may write
        (BuildKit throws such writes away) or when the context holds hidden files."""
        from slimage.builder.fsops import Copier, CopyOpts

        dest.mkdir(parents=True, exist_ok=True)
        target = dest / (os.path.basename(src.real) or "context")
        Copier(CopyOpts(context_owner=True), skip=self.skip_path).copy(str(src.path), str(target))
        return target

    def skip_path(self, path: str) -> bool:
        """Whether a copy of a context tree leaves host PATH out (.dockerignore). An
        ignored dir still comes along when a `!` rule re-includes something inside it
        (only that something, as its children are checked one by one)."""
        rel = os.path.relpath(path, self.root)
        if not self.ignored(rel):
            return False
        if self.ignore.exclusions and os.path.isdir(path) and not os.path.islink(path):
            return not self.walk_included(rel)
        return True


def _file_digest(path: Path, st: os.stat_result) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


__all__ = ["BuildContext", "Source", "has_glob"]
