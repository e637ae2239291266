"""The closure: every path the minified image must keep for the traced behaviour to hold.

It is computed on the *original* image's merged filesystem (a read-only overlay of its
layers, never the container's upper dir), so files the app wrote at run time are not
mistaken for files of the image. Paths are container paths ("/usr/lib/..."); every lookup
goes through `_walk`, which resolves symlinks inside the root the way the kernel would and
records each symlink on the way, so that `/lib/x86_64-linux-gnu/libc.so.6` keeps the
`/lib -> usr/lib` link as a link and the real file under /usr/lib.

The ELF part reuses `compat`'s reader (PT_INTERP, DT_NEEDED, RPATH/RUNPATH) and resolves
names the way glibc's ld.so does: RPATH (when there is no RUNPATH), LD_LIBRARY_PATH,
RUNPATH, the image's own /etc/ld.so.cache, then the trusted directories. musl's path file
is honoured too. The loader has to find the same files after minification, so the cache
itself is kept whenever anything dynamic is.
"""

from __future__ import annotations

import contextlib
import fnmatch
import mmap
import os
import posixpath
import stat
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from slimage.analysis.compat import GLIBC_TRIPLET, MUSL_ARCH, ElfError, ElfInfo, read_elf

VIRTUAL = ("/proc", "/sys", "/dev")
TLS_LIBS = ("libssl.so", "libcrypto.so", "libgnutls.so", "libnss3.so", "libmbedtls.so")
RUNTIME_FILES = (
    "/etc/nsswitch.conf",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/resolv.conf",
    "/etc/ld.so.cache",
    "/etc/localtime",
)
CACHE_MAGIC = b"glibc-ld.so.cache1.1"


@dataclass
class ElfObject:
    path: str
    info: ElfInfo


@dataclass
class Closure:
    """What to keep, and why (for the report). Values are reasons like "traced"."""

    root: str
    keep: dict[str, str] = field(default_factory=dict)
    unresolved: list[str] = field(default_factory=list)  # "lib.so needed by /x"
    elves: dict[str, ElfInfo] = field(default_factory=dict)  # parsed ELF headers, by path

    # ------------------------------------------------------------------ lookups
    def host(self, path: str) -> str:
        return os.path.join(self.root, path.lstrip("/"))

    def _lstat(self, path: str) -> os.stat_result | None:
        try:
            return os.lstat(self.host(path))
        except OSError:
            return None

    def _walk(self, path: str) -> tuple[str | None, list[str]]:
        """(resolved path or None, symlinks passed on the way)."""
        parts = [p for p in path.split("/") if p and p != "."]
        done: list[str] = []
        links: list[str] = []
        hops = 0
        while parts:
            comp = parts.pop(0)
            if comp == "..":
                if done:
                    done.pop()
                continue
            cur = "/" + "/".join([*done, comp])
            st = self._lstat(cur)
            if st is None:
                return None, links
            if stat.S_ISLNK(st.st_mode):
                hops += 1
                if hops > 40:
                    return None, links
                links.append(cur)
                target = os.readlink(self.host(cur))
                if target.startswith("/"):
                    done = []
                parts = [p for p in target.split("/") if p and p != "."] + parts
                continue
            if parts and not stat.S_ISDIR(st.st_mode):
                return None, links
            done.append(comp)
        return "/" + "/".join(done), links

    def resolve(self, path: str) -> str | None:
        return self._walk(path)[0]

    def exists(self, path: str) -> bool:
        return self._walk(path)[0] is not None

    # ------------------------------------------------------------------ adding
    def add(self, path: str, reason: str, *, whole: bool = False) -> str | None:
        """Keep PATH (and the symlinks leading to it); WHOLE keeps a directory's subtree.
        Returns the resolved path, or None when the image has no such path."""
        if not path.startswith("/") or path.startswith(VIRTUAL):
            return None
        if any(path == v or path.startswith(v + "/") for v in VIRTUAL):
            return None
        real, links = self._walk(path)
        if real is None:
            return None
        for link in links:
            self.keep.setdefault(link, reason)
        if real != "/":
            self.keep.setdefault(real, reason)
        if whole:
            st = self._lstat(real)
            if st is not None and stat.S_ISDIR(st.st_mode):
                self._add_tree(real, reason)
        return real

    def _add_tree(self, top: str, reason: str, skip: Iterable[str] = ()) -> None:
        skips = tuple(skip)
        for dirpath, dirnames, filenames in os.walk(self.host(top)):
            rel = "/" + os.path.relpath(dirpath, self.root).lstrip("./")
            rel = "/" if rel == "/." else rel
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                p = posixpath.join(rel, name)
                if any(fnmatch.fnmatch(p, s) for s in skips):
                    if name in dirnames:
                        dirnames.remove(name)
                    continue
                self.keep.setdefault(p, reason)
                with contextlib.suppress(OSError):
                    if os.path.islink(self.host(p)):
                        # A link inside a kept tree must still lead somewhere.
                        target = os.readlink(self.host(p))
                        self.add(posixpath.normpath(posixpath.join(rel, target)), reason)

    def add_tree(self, top: str, reason: str, skip: Iterable[str] = ()) -> None:
        real = self.add(top, reason)
        if real is not None:
            st = self._lstat(real)
            if st is not None and stat.S_ISDIR(st.st_mode):
                self._add_tree(real, reason, skip)

    # ------------------------------------------------------------------ ELF
    def elf_info(self, path: str) -> ElfInfo | None:
        if path in self.elves:
            return self.elves[path]
        host = self.host(path)
        try:
            st = os.lstat(host)
            if not stat.S_ISREG(st.st_mode) or st.st_size < 52:
                return None
            with open(host, "rb") as fh:
                if fh.read(4) != b"\x7fELF":
                    return None
                with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                    info = read_elf(mm)  # type: ignore[arg-type]
        except (OSError, ValueError, ElfError, Exception):
            return None
        self.elves[path] = info
        return info


class LdCache:
    """glibc's /etc/ld.so.cache (format 1.1): soname -> library paths, in cache order."""

    def __init__(self, data: bytes):
        self.entries: dict[str, list[str]] = {}
        start = data.find(CACHE_MAGIC)
        if start < 0:
            return
        try:
            nlibs, _strlen = struct.unpack_from("<II", data, start + 20)
            base = start + 48
            for i in range(min(nlibs, 100000)):
                _flags, key, value, _os, _hw = struct.unpack_from("<iIIIQ", data, base + 24 * i)
                self.entries.setdefault(_cstr(data, key), []).append(_cstr(data, value))
        except struct.error:
            return


def _cstr(data: bytes, off: int) -> str:
    end = data.find(b"\0", off)
    return data[off : end if end >= 0 else len(data)].decode("utf-8", "surrogateescape")


class ElfResolver:
    """Adds the ELF closure of kept files to a `Closure`."""

    def __init__(self, closure: Closure, env: dict[str, str], arch: str):
        self.c = closure
        self.env = env
        self.arch = arch
        triplet = GLIBC_TRIPLET.get(arch, "")
        musl = MUSL_ARCH.get(arch, arch)
        cache_host = closure.host("/etc/ld.so.cache")
        try:
            with open(cache_host, "rb") as fh:
                self.cache = LdCache(fh.read())
        except OSError:
            self.cache = LdCache(b"")
        dirs: list[str] = []
        musl_path = closure.resolve(f"/etc/ld-musl-{musl}.path")
        if musl_path:
            with contextlib.suppress(OSError):
                text = open(closure.host(musl_path), encoding="utf-8", errors="replace").read()
                dirs += [d for d in text.replace(":", "\n").split() if d]
        if triplet:
            dirs += [f"/lib/{triplet}", f"/usr/lib/{triplet}"]
        dirs += ["/lib64", "/usr/lib64", "/lib", "/usr/local/lib", "/usr/lib"]
        self.default_dirs = list(dict.fromkeys(dirs))

    def _expand(self, d: str, origin: str, info: ElfInfo) -> str:
        lib = "lib64" if info.elf_class == 64 else "lib"
        for token in ("$ORIGIN", "${ORIGIN}"):
            d = d.replace(token, origin)
        return d.replace("${LIB}", lib).replace("$LIB", lib)

    def _usable(self, path: str, info: ElfInfo) -> str | None:
        real = self.c.resolve(path)
        if real is None:
            return None
        lib = self.c.elf_info(real)
        if lib is None or lib.machine != info.machine or lib.elf_class != info.elf_class:
            return None
        return path

    def find(self, name: str, path: str, info: ElfInfo) -> str | None:
        origin = posixpath.dirname(path)
        if "/" in name:
            return self._usable(self._expand(name, origin, info), info)
        cands: list[str] = []
        if not info.runpath:
            cands += info.rpath
        cands += [d for d in self.env.get("LD_LIBRARY_PATH", "").split(":") if d]
        cands += info.runpath
        for d in cands:
            got = self._usable(posixpath.join(self._expand(d, origin, info), name), info)
            if got:
                return got
        for cached in self.cache.entries.get(name, []):
            got = self._usable(cached, info)
            if got:
                return got
        for d in self.default_dirs:
            got = self._usable(posixpath.join(d, name), info)
            if got:
                return got
        return None

    def close_over(self, paths: Iterable[str], reason: str = "ELF closure") -> list[str]:
        """Add interpreters and needed libraries of every ELF in PATHS, transitively.
        Returns the ELF objects seen."""
        todo = [p for p in paths]
        seen: set[str] = set()
        elves: list[str] = []
        while todo:
            p = todo.pop()
            real = self.c.resolve(p)
            if real is None or real in seen:
                continue
            seen.add(real)
            info = self.c.elf_info(real)
            if info is None:
                continue
            elves.append(real)
            if info.interp:
                got = self.c.add(info.interp, reason)
                if got:
                    todo.append(got)
                else:
                    self.c.unresolved.append(f"{info.interp} (interpreter of {real})")
            for name in info.needed:
                found = self.find(name, real, info)
                if found is None:
                    self.c.unresolved.append(f"{name} (needed by {real})")
                    continue
                got = self.c.add(found, reason)
                if got:
                    todo.append(got)
        return elves


def shebang(closure: Closure, path: str) -> list[str]:
    """The interpreter argv of a `#!` script, or []."""
    real = closure.resolve(path)
    if real is None:
        return []
    try:
        with open(closure.host(real), "rb") as fh:
            head = fh.read(256)
    except OSError:
        return []
    if not head.startswith(b"#!"):
        return []
    line = head[2:].split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    return line.split()


def which(closure: Closure, name: str, env: dict[str, str]) -> str | None:
    """Where the container's PATH finds NAME (a container path), or None."""
    if "/" in name:
        return name if closure.exists(name) else None
    path = env.get("PATH") or "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    for d in path.split(":"):
        if not d:
            continue
        cand = posixpath.join(d, name)
        real = closure.resolve(cand)
        if real is not None:
            st = closure._lstat(real)
            if st is not None and stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
                return cand
    return None


def add_program(closure: Closure, argv0: str, env: dict[str, str], reason: str) -> list[str]:
    """Keep a program found by PATH, with its `#!` interpreter chain (env's target too)."""
    added = []
    path = which(closure, argv0, env)
    depth = 0
    while path and depth < 4:
        real = closure.add(path, reason)
        if real is None:
            break
        added.append(real)
        interp = shebang(closure, real)
        if not interp:
            break
        nxt = interp[0]
        if posixpath.basename(nxt) == "env" and len(interp) > 1:
            closure.add(nxt, reason)
            added.append(nxt)
            args = [a for a in interp[1:] if not a.startswith("-")]
            nxt = args[0] if args else ""
            path = which(closure, nxt, env) if nxt else None
        else:
            path = nxt
        depth += 1
    return added


def uses_tls(closure: Closure) -> bool:
    return any(posixpath.basename(p).startswith(TLS_LIBS) for p in closure.keep) or any(
        "libnode" in p or "/node" == p[-5:] for p in closure.keep
    )


def matches(path: str, patterns: Iterable[str]) -> str | None:
    """The first --exclude pattern that covers PATH (itself or an ancestor)."""
    for pat in patterns:
        p = pat.rstrip("/") or "/"
        if path == p or path.startswith(p + "/") or fnmatch.fnmatch(path, p):
            return pat
    return None
