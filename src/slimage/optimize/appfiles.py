"""What the app needs at run time, found from the image its Dockerfile built.

The multi-stage, distroless and musl variants copy only this set out of the user's
build, so it is found, not guessed:

1. start from the files the user's own layers added or changed (every layer above the
   final stage's base: `node.layer >= base_layers` in the merged tree);
2. drop caches, package indexes and logs (apt lists, ~/.npm, pip caches, /tmp, ...);
3. drop the packages the user installed only to build (compilers, headers, `-dev`), and
   libraries nothing kept links to, unless compat's ELF resolution finds that a kept ELF
   file (or the entry program) needs one of their libraries;
4. keep what ENTRYPOINT/CMD names; `npm start` becomes the script package.json gives it.

Everything here reads the `ImageFiles` of one pass over the image (see measure).
"""

from __future__ import annotations

import fnmatch
import json
import posixpath
import re
import shlex
from dataclasses import dataclass, field

from slimage.analysis.compat import ElfInfo, ImageFiles, TargetSystem

# (pattern on the path without its leading /, why it is not needed at run time)
CACHES: tuple[tuple[str, str], ...] = (
    ("var/lib/apt/lists/*", "apt package lists"),
    ("var/cache/*", "package caches"),
    ("var/lib/dpkg/*", "dpkg database"),
    ("var/log/*", "logs"),
    ("root/.npm/*", "npm cache"),
    ("home/*/.npm/*", "npm cache"),
    ("*/.npm/_cacache/*", "npm cache"),
    ("root/.cache/*", "pip and user caches"),
    ("home/*/.cache/*", "pip and user caches"),
    ("root/.node-gyp/*", "node-gyp headers"),
    ("root/.config/*", "tool settings"),
    ("tmp/*", "temporary files"),
    ("var/tmp/*", "temporary files"),
    ("usr/share/doc/*", "documentation"),
    ("usr/share/man/*", "man pages"),
    ("usr/share/info/*", "info pages"),
    ("etc/ld.so.cache", "loader cache"),
)
# Debian packages that only build things. `-dev` packages are headers and static libs.
TOOLCHAIN = re.compile(
    r"^(gcc|g\+\+|cpp|clang|llvm|lld|binutils|make|cmake|ninja-build|build-essential|"
    r"dpkg-dev|autoconf|automake|libtool|pkg-config|pkgconf|musl-tools|linux-libc-dev|m4|"
    r"bison|flex|patch|gfortran|node-gyp|libc-dev-bin|rpcsvc-proto|python3-pip|"
    r"python3-setuptools|python3-wheel|git)(-[0-9.]+)?(-[a-z0-9-]+)?$|-dev$"
)
# Directories the final stage never copies whole: the base owns them.
SYSTEM_DIRS = frozenset(
    "bin sbin lib lib32 lib64 libx32 usr usr/bin usr/sbin usr/lib usr/lib64 usr/libexec "
    "usr/share usr/include usr/local usr/local/bin usr/local/sbin usr/local/lib "
    "usr/local/share usr/local/include usr/lib/x86_64-linux-gnu usr/lib/aarch64-linux-gnu "
    "etc var var/lib opt home root srv tmp run mnt media".split()
)
SHELL_META = set("$`|&;<>()*?[]{}~\\\"'\n#")
CXX_LIBS = ("libstdc++.so", "libgcc_s.so", "libgomp.so")


@dataclass
class Entry:
    """The command the image runs, as argv, and how it was found."""

    entrypoint: list[str]
    cmd: list[str]
    argv: list[str]
    note: str = ""  # e.g. the npm start rewrite
    needs_shell: str = ""  # why the command cannot run without a shell ("" when it can)


@dataclass
class AppFiles:
    base_layers: int
    user_files: int
    keep: list[str]  # paths (no leading /) the run-time stage copies
    dropped: dict[str, int] = field(default_factory=dict)  # reason -> files
    dropped_bytes: int = 0
    copy_roots: list[str] = field(default_factory=list)  # whole directories or files
    scattered: dict[str, list[str]] = field(default_factory=dict)  # dir -> files in it
    entry: Entry | None = None
    program: str = ""  # the entry program's real path in the image ("" if not found)
    program_in_app: bool = False  # the program is among the app's own files
    interpreter: str = ""  # node, python3.11, ... (the program or its shebang's)
    native: list[str] = field(default_factory=list)  # ELF files among `keep`
    restored: dict[str, str] = field(default_factory=dict)  # path -> why ELF closure kept it
    preset: str = "base"
    preset_reason: str = ""


def app_from(data: dict) -> AppFiles:
    """An AppFiles back from its JSON form (the optimize cache)."""
    app = AppFiles(**{k: v for k, v in data.items() if k != "entry"})
    app.entry = Entry(**data["entry"]) if data.get("entry") else None
    return app


def _cache_reason(path: str) -> str:
    for pat, why in CACHES:
        if fnmatch.fnmatchcase(path, pat):
            return why
    return ""


def _packages(files: ImageFiles, base_layers: int) -> dict[str, list[str]]:
    """Debian packages the user's layers installed: name -> the paths dpkg lists."""
    out: dict[str, list[str]] = {}
    for path, data in files.contents.items():
        if not (path.startswith("var/lib/dpkg/info/") and path.endswith(".list")):
            continue
        node = files.tree.get(path)
        if node is None or node.layer < base_layers:
            continue
        name = path.rsplit("/", 1)[-1][: -len(".list")].split(":", 1)[0]
        out[name] = [
            line.strip().lstrip("/")
            for line in data.decode("utf-8", "replace").splitlines()
            if line.strip() not in ("", "/.")
        ]
    return out


def want_contents(path: str, size: int) -> bool:
    """The small files appfiles reads: dpkg file lists, package.json, scripts in bin dirs."""
    if path.startswith("var/lib/dpkg/info/") and path.endswith(".list"):
        return True
    if path.endswith("package.json") and "node_modules/" not in path:
        return size < 256 << 10
    return "/bin/" in "/" + path and size < 64 << 10


def entry_of(files: ImageFiles) -> Entry:
    cfg = files.config
    ep = list(cfg.get("Entrypoint") or [])
    cmd = list(cfg.get("Cmd") or [])
    argv = ep + cmd
    entry = Entry(ep, cmd, argv)
    if len(argv) >= 3 and argv[0] in ("/bin/sh", "sh", "/bin/bash") and argv[1] == "-c":
        script = argv[2]
        if SHELL_META & set(script):
            entry.needs_shell = f"the command is a shell script ({script!r})"
            return entry
        entry.argv = shlex.split(script) + argv[3:]
        entry.note = f"shell-form `{script}` runs as exec form (no shell needed)"
    if entry.argv[:2] == ["npm", "start"] or entry.argv[:3] == ["npm", "run", "start"]:
        workdir = (cfg.get("WorkingDir") or "/").strip("/")
        pj = files.contents.get(posixpath.join(workdir, "package.json").lstrip("/"))
        script = ""
        if pj is not None:
            try:
                script = str((json.loads(pj).get("scripts") or {}).get("start") or "")
            except (ValueError, AttributeError):
                script = ""
        if not script and files.tree.get(posixpath.join(workdir, "server.js").lstrip("/")):
            script = "node server.js"  # npm's default start
        if not script:
            entry.needs_shell = "CMD is `npm start` and package.json has no start script"
        elif SHELL_META & set(script):
            entry.needs_shell = f"package.json's start script needs a shell ({script!r})"
        else:
            entry.argv = shlex.split(script)
            entry.note = (
                f"`{' '.join(argv)}` rewritten to `{script}` (package.json scripts.start): "
                "no npm, no shell, and the app gets signals directly"
            )
    return entry


def find_program(files: ImageFiles, name: str) -> str:
    """NAME resolved like execvp does, on the image's PATH; '' when absent."""
    if not name:
        return ""
    if "/" in name:
        cands = [name]
    else:
        path = (
            files.env.get("PATH") or "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        )
        cands = [posixpath.join(d, name) for d in path.split(":") if d]
    workdir = files.config.get("WorkingDir") or "/"
    for cand in cands:
        real = files.resolve(posixpath.join(workdir, cand))
        node = files.tree.get(real) if real else None
        if node is not None and node.kind == "file":
            return real or ""
    return ""


def shebang(files: ImageFiles, real: str) -> list[str]:
    data = files.contents.get(real, b"")
    if not data.startswith(b"#!"):
        return []
    line = data[2:].split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    words = line.split()
    if words and words[0].endswith("/env") and len(words) > 1:
        return words[1:2]
    return words[:1]


def interpreter_of(files: ImageFiles, program: str) -> str:
    """`node`, `python3.11`, ... for the program or the interpreter of its script."""
    if not program:
        return ""
    base = program.rsplit("/", 1)[-1]
    if re.match(r"^(node|nodejs|python[0-9.]*)$", base):
        return "node" if base.startswith("node") else base
    interp = shebang(files, program)
    if interp:
        real = find_program(files, interp[0])
        return interpreter_of(files, real) if real and real != program else ""
    return ""


def _elf(files: ImageFiles, path: str) -> ElfInfo | None:
    info = files.elves.get(path)
    return info if isinstance(info, ElfInfo) else None


def choose_preset(files: ImageFiles, app: AppFiles) -> tuple[str, str]:
    """Which `slimage base` preset the app's files need, and why (one line)."""
    if app.interpreter == "node":
        return "nodejs", "the app runs on node"
    if app.interpreter.startswith("python"):
        return "python3", f"the app runs on {app.interpreter}"
    elves = [p for p in [app.program, *app.native] if p and _elf(files, p)]
    if not elves:
        return "base", "no ELF program to match; glibc and OpenSSL cover most apps"
    needed = {n for p in elves for n in (_elf(files, p).needed or [])}  # type: ignore[union-attr]
    dynamic = [p for p in elves if _elf(files, p).interp]  # type: ignore[union-attr]
    if not dynamic:
        return "static", f"/{elves[0]} is statically linked"
    if any(n.startswith(CXX_LIBS) for n in needed):
        return "cc", f"/{dynamic[0]} links the C++ runtime"
    return "base", f"/{dynamic[0]} is dynamically linked against glibc"


def find_app_files(files: ImageFiles, base_layers: int) -> AppFiles:
    """The run-time file set of the app in FILES (see the module docstring)."""
    from slimage.analysis.compat import Checker

    tree = files.tree
    user: dict[str, int] = {}
    for path, node in tree.walk():
        if node.kind != "dir" and node.layer >= base_layers:
            user[path] = node.size if node.kind == "file" else len(node.link)
    app = AppFiles(base_layers=base_layers, user_files=len(user), keep=[])
    dropped: dict[str, str] = {}
    for path in user:
        why = _cache_reason(path)
        if why:
            dropped[path] = why
    pkgs = _packages(files, base_layers)
    owner: dict[str, str] = {}
    for name, paths in pkgs.items():
        for p in paths:
            if p in user:
                owner[p] = name
    for p, name in owner.items():
        if p in dropped:
            continue
        if TOOLCHAIN.search(name):
            dropped[p] = f"build toolchain ({name})"
        elif name.startswith("lib"):
            dropped[p] = f"library nothing kept links to ({name})"
    # The entry program, and the ELF closure of what is kept.
    app.entry = entry_of(files)
    app.program = find_program(files, app.entry.argv[0] if app.entry.argv else "")
    app.program_in_app = bool(app.program) and app.program in user
    app.interpreter = interpreter_of(files, app.program)
    checker = Checker(files, TargetSystem.from_files(files))
    work = [p for p in user if p not in dropped and _elf(files, p)]
    if app.program and _elf(files, app.program):
        work.append(app.program)
    seen: set[str] = set()
    while work:
        path = work.pop()
        if path in seen:
            continue
        seen.add(path)
        info = _elf(files, path)
        if info is None:
            continue
        for name in info.needed:
            got = checker.find(name, path, info)
            if isinstance(got, str):
                continue
            real = got[0]
            if real not in dropped:
                continue
            why = f"needed by /{path} ({name})"
            pkg = owner.get(real)
            back = [q for q in pkgs.get(pkg, []) if q in dropped] if pkg else [real]
            if pkg and TOOLCHAIN.search(pkg):
                back = [real] + [
                    q
                    for q in pkgs.get(pkg, [])
                    if q in dropped
                    and tree.get(q)
                    and tree.get(q).kind == "symlink"  # type: ignore[union-attr]
                    and files.resolve(q) == real
                ]
            for q in back:
                dropped.pop(q, None)
                app.restored[q] = why
                if _elf(files, q):
                    work.append(q)
    for p, why in dropped.items():
        app.dropped[why] = app.dropped.get(why, 0) + 1
        app.dropped_bytes += user.get(p, 0)
    app.keep = sorted(p for p in user if p not in dropped)
    app.native = [p for p in app.keep if _elf(files, p)]
    app.copy_roots, app.scattered = copy_plan(files, set(app.keep))
    app.preset, app.preset_reason = choose_preset(files, app)
    return app


def copy_plan(files: ImageFiles, keep: set[str]) -> tuple[list[str], dict[str, list[str]]]:
    """Whole directories (every file under them kept, not a system directory) and, for
    the rest, the kept files grouped by their directory."""
    total: dict[str, int] = {}
    kept: dict[str, int] = {}
    for path, node in files.tree.walk():
        if node.kind == "dir":
            continue
        parts = path.split("/")
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            total[d] = total.get(d, 0) + 1
            if path in keep:
                kept[d] = kept.get(d, 0) + 1
    roots: set[str] = set()
    scattered: dict[str, list[str]] = {}
    for path in sorted(keep):
        parts = path.split("/")
        top = ""
        for i in range(1, len(parts)):
            d = "/".join(parts[:i])
            if d in SYSTEM_DIRS:
                continue
            if total.get(d) == kept.get(d):
                top = d
                break
        if top:
            roots.add(top)
        else:  # copied by name, one COPY per directory
            scattered.setdefault("/".join(parts[:-1]), []).append(path)
    return sorted(roots), scattered


def what_it_runs(files: ImageFiles) -> list[tuple[str, str]]:
    """(path without /, role) of the ELF files the image's command runs: the ENTRYPOINT/CMD
    program (or its script's interpreter) and the app's own native files (Node addons,
    Python extensions outside the distribution's, ELF files under the working directory).
    What `slimage compat` answers first."""
    out: list[tuple[str, str]] = []
    entry = entry_of(files)
    prog = find_program(files, entry.argv[0]) if entry.argv else ""
    if prog:
        if prog in files.elves:
            out.append((prog, "entrypoint program"))
        else:
            interp = shebang(files, prog)
            real = find_program(files, interp[0]) if interp else ""
            if real in files.elves:
                out.append((real, f"interpreter of /{prog}"))
    workdir = (files.config.get("WorkingDir") or "").strip("/")
    for path in sorted(files.elves):
        if any(path == p for p, _ in out):
            continue
        base = path.rsplit("/", 1)[-1]
        if base.endswith(".node"):
            out.append((path, "Node addon"))
        elif (
            base.endswith(".so")
            and ("site-packages/" in path or ".cpython-" in base or ".abi3." in base)
            and not path.startswith("usr/lib/python3")
        ):
            out.append((path, "Python extension"))
        elif workdir and path.startswith(workdir + "/"):
            out.append((path, "app file"))
    return out
