"""Will these binaries run on that base? A prediction made from the ELF files, before
anything runs.

For every ELF file of an image we read what the dynamic loader will need: the interpreter
(PT_INTERP), the libraries (DT_NEEDED) and where to look for them (DT_RPATH, DT_RUNPATH,
`$ORIGIN`), and the symbol versions (GLIBC_2.34, GLIBCXX_3.4.30, ...). Then we resolve
each one inside the target base the way its loader would: glibc's trusted directories
(and ld.so.conf, but only when an ld.so.cache exists, since ld.so itself never reads the
conf), or musl's /etc/ld-musl-ARCH.path; and we check each needed version against the
versions the resolved library defines. The verdict per file is one of: loads, missing
interpreter, missing library, symbol version too new, wrong architecture.

Reading ELF headers with pyelftools costs ~5 ms a file; an image of 20k files has
hundreds of ELF objects, so the hot path uses a small struct-based reader of the same
structures (program headers, dynamic segment, verneed/verdef), and pyelftools is the
fallback for files that reader refuses (and the oracle the tests compare it with).
"""

from __future__ import annotations

import fnmatch
import io
import posixpath
import struct
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from slimage.fs.tree import MergedTree, Node
from slimage.image import Image
from slimage.layers.tarscan import TarEntry, TarScanner

CHUNK = 1 << 20
ELF_MAGIC = b"\x7fELF"

# e_machine -> Docker architecture name
MACHINES = {
    3: "386",
    62: "amd64",
    183: "arm64",
    40: "arm",
    8: "mips",
    20: "ppc",
    21: "ppc64le",
    22: "s390x",
    243: "riscv64",
}
# Docker arch -> (e_machine, ELF class bits)
ARCH_ELF = {
    "amd64": (62, 64),
    "arm64": (183, 64),
    "386": (3, 32),
    "arm": (40, 32),
    "ppc64le": (21, 64),
    "s390x": (22, 64),
    "riscv64": (243, 64),
}
# The directories glibc's ld.so searches without any cache (Debian builds add multiarch).
GLIBC_TRIPLET = {
    "amd64": "x86_64-linux-gnu",
    "arm64": "aarch64-linux-gnu",
    "386": "i386-linux-gnu",
    "arm": "arm-linux-gnueabihf",
    "ppc64le": "powerpc64le-linux-gnu",
    "s390x": "s390x-linux-gnu",
    "riscv64": "riscv64-linux-gnu",
}
MUSL_ARCH = {"amd64": "x86_64", "arm64": "aarch64", "386": "i386", "arm": "armhf"}

LOADS = "loads"
MISSING_INTERPRETER = "missing-interpreter"
MISSING_LIBRARY = "missing-library"
VERSION_TOO_NEW = "version-too-new"
WRONG_ARCH = "wrong-architecture"
UNREADABLE = "unreadable"


# ---------------------------------------------------------------------------------------
# ELF reading


@dataclass
class ElfInfo:
    elf_class: int  # 32 or 64
    machine: int
    elf_type: str  # exec, dyn, rel, core
    interp: str = ""
    needed: list[str] = field(default_factory=list)
    rpath: list[str] = field(default_factory=list)
    runpath: list[str] = field(default_factory=list)
    soname: str = ""
    # library file name -> versions needed from it (GLIBC_2.34, ...)
    verneed: dict[str, list[str]] = field(default_factory=dict)
    verdef: list[str] = field(default_factory=list)
    dynamic: bool = False
    flags_1: int = 0  # DT_FLAGS_1; DF_1_PIE tells a static-pie from a shared library

    @property
    def arch(self) -> str:
        return MACHINES.get(self.machine, f"machine-{self.machine}")


class ElfError(ValueError):
    pass


def _cstr(data: bytes | memoryview, off: int) -> str:
    end = bytes(data[off : off + 4096]).find(b"\0")
    if end < 0:
        raise ElfError("unterminated string")
    return bytes(data[off : off + end]).decode("utf-8", "surrogateescape")


def parse_elf(data: bytes) -> ElfInfo:
    """The dynamic-linking facts of one ELF image (raises ElfError when malformed)."""
    if len(data) < 52 or data[:4] != ELF_MAGIC:
        raise ElfError("not an ELF file")
    cls, enc = data[4], data[5]
    if cls not in (1, 2) or enc not in (1, 2):
        raise ElfError("bad ELF identification")
    e = "<" if enc == 1 else ">"
    try:
        if cls == 2:
            (e_type, machine, _, _, phoff, _, _, _, phentsize, phnum) = struct.unpack_from(
                e + "HHIQQQIHHH", data, 16
            )
            ph_fmt, dyn_fmt = e + "IIQQQQQQ", e + "qQ"
        else:
            (e_type, machine, _, _, phoff, _, _, _, phentsize, phnum) = struct.unpack_from(
                e + "HHIIIIIHHH", data, 16
            )
            ph_fmt, dyn_fmt = e + "IIIIIIII", e + "iI"
        info = ElfInfo(
            64 if cls == 2 else 32,
            machine,
            {1: "rel", 2: "exec", 3: "dyn", 4: "core"}.get(e_type, "other"),
        )
        loads: list[tuple[int, int, int]] = []  # vaddr, filesz, offset
        dyn_off = dyn_size = 0
        for i in range(phnum):
            fields = struct.unpack_from(ph_fmt, data, phoff + i * phentsize)
            if cls == 2:
                p_type, _, p_offset, p_vaddr, _, p_filesz, _, _ = fields
            else:
                p_type, p_offset, p_vaddr, _, p_filesz, _, _, _ = fields
            if p_type == 1:
                loads.append((p_vaddr, p_filesz, p_offset))
            elif p_type == 2:
                dyn_off, dyn_size = p_offset, p_filesz
            elif p_type == 3:
                info.interp = _cstr(data, p_offset)
        if not dyn_size:
            return info
        info.dynamic = True

        def addr(vaddr: int) -> int:
            for start, size, off in loads:
                if start <= vaddr < start + size:
                    return vaddr - start + off
            raise ElfError(f"address {vaddr:#x} not in any PT_LOAD")

        tags: list[tuple[int, int]] = []
        step = struct.calcsize(dyn_fmt)
        for off in range(dyn_off, dyn_off + dyn_size - step + 1, step):
            tag, val = struct.unpack_from(dyn_fmt, data, off)
            if tag == 0:
                break
            tags.append((tag, val))
        strtab = next((v for t, v in tags if t == 5), None)
        if strtab is None:
            return info
        stroff = addr(strtab)

        def s(v: int) -> str:
            return _cstr(data, stroff + v)

        verneed = verneednum = verdef = verdefnum = 0
        for tag, val in tags:
            if tag == 1:
                info.needed.append(s(val))
            elif tag == 14:
                info.soname = s(val)
            elif tag == 15:
                info.rpath += [p for p in s(val).split(":") if p]
            elif tag == 29:
                info.runpath += [p for p in s(val).split(":") if p]
            elif tag == 0x6FFFFFFE:
                verneed = val
            elif tag == 0x6FFFFFFF:
                verneednum = val
            elif tag == 0x6FFFFFFC:
                verdef = val
            elif tag == 0x6FFFFFFD:
                verdefnum = val
            elif tag == 0x6FFFFFFB:
                info.flags_1 = val
        if verneed and verneednum:
            off = addr(verneed)
            for _ in range(min(verneednum, 4096)):
                _, cnt, vn_file, vn_aux, vn_next = struct.unpack_from(e + "HHIII", data, off)
                names = info.verneed.setdefault(s(vn_file), [])
                aux = off + vn_aux
                for _ in range(min(cnt, 4096)):
                    _, _, _, vna_name, vna_next = struct.unpack_from(e + "IHHII", data, aux)
                    names.append(s(vna_name))
                    if not vna_next:
                        break
                    aux += vna_next
                if not vn_next:
                    break
                off += vn_next
        if verdef and verdefnum:
            off = addr(verdef)
            for _ in range(min(verdefnum, 65536)):
                _, flags, _, cnt, _, vd_aux, vd_next = struct.unpack_from(e + "HHHHIII", data, off)
                if cnt and not flags & 1:  # VER_FLG_BASE names the file itself
                    (vda_name,) = struct.unpack_from(e + "I", data, off + vd_aux)
                    info.verdef.append(s(vda_name))
                if not vd_next:
                    break
                off += vd_next
        return info
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise ElfError(f"malformed ELF ({exc})") from None


def parse_elf_pyelftools(data: bytes) -> ElfInfo:
    """The same facts through pyelftools: slower, used when parse_elf refuses a file."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.dynamic import DynamicSegment
    from elftools.elf.elffile import ELFFile
    from elftools.elf.gnuversions import GNUVerDefSection, GNUVerNeedSection

    try:
        elf: Any = ELFFile(io.BytesIO(data))
        info = ElfInfo(
            elf.elfclass,
            {v: k for k, v in _PYELF_MACHINES.items()}.get(elf["e_machine"], 0),
            {"ET_REL": "rel", "ET_EXEC": "exec", "ET_DYN": "dyn", "ET_CORE": "core"}.get(
                elf["e_type"], "other"
            ),
        )
        seg: Any
        tag: Any
        for seg in elf.iter_segments():
            if seg["p_type"] == "PT_INTERP":
                info.interp = seg.get_interp_name()
            elif isinstance(seg, DynamicSegment):
                info.dynamic = True
                for tag in seg.iter_tags():
                    t = tag.entry.d_tag
                    if t == "DT_NEEDED":
                        info.needed.append(tag.needed)
                    elif t == "DT_SONAME":
                        info.soname = tag.soname
                    elif t == "DT_RPATH":
                        info.rpath += [p for p in tag.rpath.split(":") if p]
                    elif t == "DT_RUNPATH":
                        info.runpath += [p for p in tag.runpath.split(":") if p]
                    elif t == "DT_FLAGS_1":
                        info.flags_1 = tag.entry.d_val
        for sec in elf.iter_sections():
            if isinstance(sec, GNUVerNeedSection):
                for vn, auxs in sec.iter_versions():
                    info.verneed.setdefault(str(vn.name), []).extend(a.name for a in auxs)
            elif isinstance(sec, GNUVerDefSection):
                for vd, auxs in sec.iter_versions():
                    if not vd["vd_flags"] & 1:
                        info.verdef.append(next(iter(auxs)).name)
        return info
    except (ELFError, struct.error, ValueError, AttributeError, StopIteration) as exc:
        raise ElfError(f"unreadable ELF ({exc})") from None


_PYELF_MACHINES = {
    3: "EM_386",
    62: "EM_X86_64",
    183: "EM_AARCH64",
    40: "EM_ARM",
    8: "EM_MIPS",
    20: "EM_PPC",
    21: "EM_PPC64",
    22: "EM_S390",
    243: "EM_RISCV",
}


def read_elf(data: bytes) -> ElfInfo:
    try:
        return parse_elf(data)
    except ElfError:
        return parse_elf_pyelftools(data)


# ---------------------------------------------------------------------------------------
# Reading an image once: the merged tree, the ELF facts, and small files callers ask for


@dataclass
class ImageFiles:
    """What one pass over an image's layers gives the analyses."""

    tree: MergedTree
    elves: dict[str, ElfInfo | str]  # path -> facts, or the reason it was unreadable
    contents: dict[str, bytes]  # small files captured by the `want` predicate
    config: dict
    arch: str
    env: dict[str, str]
    files_seen: int = 0
    # path -> xattr names, for files that carry extended attributes (file capabilities)
    xattrs: dict[str, list[str]] = field(default_factory=dict)

    def resolve(self, path: str) -> str | None:
        return resolve_path(self.tree, path)

    def node(self, path: str) -> Node | None:
        real = resolve_path(self.tree, path)
        return None if real is None else self.tree.get(real)


def resolve_path(tree: MergedTree, path: str, *, max_links: int = 40) -> str | None:
    """Follow symlinks inside the image; the final path (without a leading /) or None."""
    parts = [p for p in path.split("/") if p and p != "."]
    resolved: list[str] = []
    hops = 0
    i = 0
    while i < len(parts):
        comp = parts[i]
        if comp == "..":
            if resolved:
                resolved.pop()
            i += 1
            continue
        cand = "/".join([*resolved, comp])
        node = tree.get(cand)
        if node is None:
            return None
        if node.kind == "symlink":
            hops += 1
            if hops > max_links:
                return None
            target = node.link
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p and p != "."] + parts[i + 1 :]
            i = 0
            continue
        resolved.append(comp)
        i += 1
    return "/".join(resolved)


@dataclass
class _Pending:
    """The file whose bytes are being collected (until the next tar entry)."""

    path: str
    layer: int
    buf: bytearray
    elf: bool
    keep: bool


def read_image(
    image: Image,
    *,
    elf: Callable[[str], bool] | None = lambda p: True,
    want: Callable[[str, int], bool] | None = None,
    want_limit: int = 1 << 20,
) -> ImageFiles:
    """Apply IMAGE's layers in order; parse ELF files whose path ELF(path) accepts, and
    keep the bytes of small files WANT(path, size) asks for."""
    tree = MergedTree(detail=True)
    elves: dict[str, tuple[int, ElfInfo | str]] = {}
    contents: dict[str, tuple[int, bytes]] = {}
    xattrs: dict[str, tuple[int, list[str]]] = {}
    state: dict[str, _Pending] = {}
    seen = 0

    def finish() -> None:
        cur = state.pop("cur", None)
        if cur is None:
            return
        path, layer = cur.path, cur.layer
        data = bytes(cur.buf)
        if cur.keep:
            contents[path] = (layer, data)
        if cur.elf and data[:4] == ELF_MAGIC:
            try:
                elves[path] = (layer, read_elf(data))
            except ElfError as exc:
                elves[path] = (layer, str(exc))

    for layer_index, layer in enumerate(image.layers):
        tree.begin_layer(f"layer {layer.diff_id}")

        def on_entry(
            entry: TarEntry, layer_index: int = layer_index
        ) -> Callable[[bytes], None] | None:
            nonlocal seen
            finish()
            tree.apply(entry)
            name = entry.name
            if entry.kind == "hardlink":
                target = entry.linkname.lstrip("./").strip("/")
                if target in elves and elves[target][0] == layer_index:
                    elves[name] = elves[target]
                if target in contents and contents[target][0] == layer_index:
                    contents[name] = contents[target]
                return None
            if entry.kind != "file":
                return None
            if entry.xattrs:
                xattrs[name] = (layer_index, sorted(entry.xattrs))
            seen += 1
            base = name.rsplit("/", 1)[-1]
            if base.startswith(".wh."):
                return None
            is_elf = elf is not None and entry.size >= 52 and elf(name)
            keep = want is not None and entry.size <= want_limit and want(name, entry.size)
            if not is_elf and not keep:
                return None
            buf = bytearray()
            state["cur"] = _Pending(name, layer_index, buf, is_elf, keep)
            checked = [False]

            def sink(piece: bytes) -> None:
                cur = state.get("cur")
                if cur is None:
                    return
                buf.extend(piece)
                if not checked[0] and len(buf) >= 4:
                    checked[0] = True
                    if not keep and buf[:4] != ELF_MAGIC:
                        state.pop("cur", None)  # not ELF, nothing else wanted

            return sink

        scanner = TarScanner(on_entry, name=f"layer {layer.diff_id}")
        stream = layer.open_tar()
        try:
            while chunk := stream.read(CHUNK):
                scanner.feed(chunk)
            scanner.close()
            finish()
        finally:
            stream.close()
        tree.end_layer()

    def visible(path: str, layer: int) -> bool:
        node = tree.get(path)
        return node is not None and node.kind == "file" and (node.layer == layer or node.inode != 0)

    config = image.config.data.get("config") or {}
    env = {}
    for item in config.get("Env") or []:
        k, _, v = item.partition("=")
        env[k] = v
    return ImageFiles(
        tree=tree,
        elves={p: info for p, (layer, info) in elves.items() if visible(p, layer)},
        contents={p: data for p, (layer, data) in contents.items() if visible(p, layer)},
        config=config,
        arch=image.config.data.get("architecture", "amd64"),
        env=env,
        files_seen=seen,
        xattrs={p: names for p, (layer, names) in xattrs.items() if visible(p, layer)},
    )


# ---------------------------------------------------------------------------------------
# The target system as its loader sees it


@dataclass
class TargetSystem:
    files: ImageFiles
    libc: str  # glibc, musl, none
    libc_version: str
    search_dirs: list[str]
    interpreters: list[str]

    @classmethod
    def from_files(cls, files: ImageFiles) -> TargetSystem:
        arch = files.arch
        triplet = GLIBC_TRIPLET.get(arch, "")
        musl_arch = MUSL_ARCH.get(arch, arch)
        interps: list[str] = []
        libc, libc_version = "none", ""
        for cand in (
            "lib64/ld-linux-x86-64.so.2",
            "lib/ld-linux-aarch64.so.1",
            "lib/ld-linux-armhf.so.3",
            "lib/ld-linux.so.2",
            f"lib/ld-musl-{musl_arch}.so.1",
        ):
            if files.node(cand) is not None:
                interps.append("/" + cand)
        if any("ld-musl" in i for i in interps):
            libc = "musl"
        if any("ld-linux" in i for i in interps):
            libc = "glibc"
        dirs: list[str] = []
        if libc == "musl" and not any("ld-linux" in i for i in interps):
            path_file = files.contents.get(f"etc/ld-musl-{musl_arch}.path")
            if path_file is not None:
                text = path_file.decode("utf-8", "replace")
                dirs = [d for d in text.replace(":", "\n").split() if d]
            else:
                dirs = ["/lib", "/usr/local/lib", "/usr/lib"]
        else:
            if files.tree.get("etc/ld.so.cache") is not None:
                dirs += _ld_so_conf(files, "etc/ld.so.conf", set())
            if triplet:
                dirs += [f"/lib/{triplet}", f"/usr/lib/{triplet}"]
            dirs += (
                ["/lib64", "/usr/lib64", "/lib", "/usr/lib"]
                if arch
                in (
                    "amd64",
                    "arm64",
                    "ppc64le",
                    "s390x",
                    "riscv64",
                )
                else ["/lib", "/usr/lib"]
            )
        seen: set[str] = set()
        search = [d for d in dirs if not (d in seen or seen.add(d))]  # type: ignore[func-returns-value]
        for path in (f"lib/{triplet}/libc.so.6", "lib/libc.so.6", "usr/lib/libc.so.6"):
            real = files.resolve(path)
            info = files.elves.get(real) if real else None
            if isinstance(info, ElfInfo):
                versions = [v for v in info.verdef if v.startswith("GLIBC_2.")]
                if versions:
                    libc_version = max(versions, key=_version_key).split("_", 1)[1]
                break
        return cls(files, libc, libc_version, search, interps)

    def describe(self) -> str:
        if self.libc == "glibc":
            return f"glibc {self.libc_version}".strip()
        if self.libc == "musl":
            return "musl"
        return "no libc (static binaries only)"


def _ld_so_conf(files: ImageFiles, path: str, seen: set[str]) -> list[str]:
    if path in seen:
        return []
    seen.add(path)
    data = files.contents.get(path)
    if data is None:
        return []
    dirs: list[str] = []
    for line in data.decode("utf-8", "replace").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("include "):
            pattern = line.split(None, 1)[1].strip().lstrip("/")
            for cand in sorted(files.contents):
                if fnmatch.fnmatch(cand, pattern):
                    dirs += _ld_so_conf(files, cand, seen)
        else:
            dirs.append(line)
    return dirs


def _version_key(name: str) -> tuple:
    tail = name.split("_", 1)[-1]
    return tuple(int(p) if p.isdigit() else 0 for p in tail.split("."))


# ---------------------------------------------------------------------------------------
# Verdicts


@dataclass
class FileVerdict:
    path: str
    kind: str  # executable, library, node-addon, python-extension, static
    verdict: str
    detail: str = ""
    arch: str = ""
    interpreter: str = ""
    needed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    versions: list[str] = field(default_factory=list)  # the too-new versions
    note: str = ""

    @property
    def loads(self) -> bool:
        return self.verdict == LOADS


@dataclass
class CompatReport:
    image: str
    against: str
    arch: str
    target_libc: str
    compatible: bool
    files: list[FileVerdict]
    elf_files: int
    files_scanned: int
    seconds: float
    counts: dict[str, int] = field(default_factory=dict)


def _kind(path: str, info: ElfInfo) -> str:
    base = path.rsplit("/", 1)[-1]
    if base.endswith(".node"):
        return "node-addon"
    if (
        base.endswith(".so")
        and ("site-packages/" in path or "dist-packages/" in path or "lib-dynload/" in path)
        and (".cpython-" in base or ".abi3." in base or ".pypy" in base or "lib-dynload/" in path)
    ):
        return "python-extension"
    if not info.interp and (not info.dynamic or info.flags_1 & 0x08000000):
        return "static"  # static, or static-pie (DF_1_PIE without an interpreter)
    if info.interp:
        return "executable"
    return "library"


def _wheel_notes(files: ImageFiles) -> dict[str, str]:
    """Python extension path -> 'wheel NAME tagged TAGS', from *.dist-info RECORD/WHEEL."""
    notes: dict[str, str] = {}
    for path, data in files.contents.items():
        if not path.endswith(".dist-info/RECORD"):
            continue
        distinfo = path[: -len("/RECORD")]
        site = distinfo.rsplit("/", 1)[0]
        wheel = files.contents.get(distinfo + "/WHEEL", b"").decode("utf-8", "replace")
        tags = [
            line.split(":", 1)[1].strip() for line in wheel.splitlines() if line.startswith("Tag:")
        ]
        name = distinfo.rsplit("/", 1)[-1][: -len(".dist-info")]
        platforms = sorted({t.rsplit("-", 1)[-1] for t in tags})
        for line in data.decode("utf-8", "replace").splitlines():
            rel = line.split(",", 1)[0]
            if rel.endswith(".so"):
                full = posixpath.normpath(posixpath.join(site, rel))
                notes[full] = f"from wheel {name} ({', '.join(platforms) or 'no platform tag'})"
    return notes


def _addon_note(path: str) -> str:
    parts = path.split("/")
    pkg = ""
    if "node_modules" in parts:
        i = len(parts) - 1 - parts[::-1].index("node_modules")
        if i + 1 < len(parts):
            pkg = parts[i + 1]
            if pkg.startswith("@") and i + 2 < len(parts):
                pkg += "/" + parts[i + 2]
    built = ""
    base = parts[-1]
    if "musl" in path:
        built = "; prebuilt for musl"
    elif "glibc" in path or "linux-x64" in path or "linux-arm64" in path:
        built = "; prebuilt for glibc"
    return f"Node native addon{' of ' + pkg if pkg else ''} ({base}){built}"


class Checker:
    def __init__(self, source: ImageFiles, target: TargetSystem):
        self.source = source
        self.target = target
        self.want = ARCH_ELF.get(target.files.arch)
        self._cache: dict[tuple[str, int, int], tuple[str, ElfInfo] | None] = {}

    def _lib_in(
        self, files: ImageFiles, path: str, info: ElfInfo
    ) -> tuple[str, ElfInfo] | None | bool:
        real = files.resolve(path)
        if real is None:
            return None
        lib = files.elves.get(real)
        if not isinstance(lib, ElfInfo):
            return None
        if lib.machine != info.machine or lib.elf_class != info.elf_class:
            return False  # found, but for another architecture: ld.so skips it
        return real, lib

    def _expand(self, d: str, origin: str) -> str:
        for token in ("$ORIGIN", "${ORIGIN}"):
            d = d.replace(token, "/" + origin)
        lib = "lib64" if self.want and self.want[1] == 64 else "lib"
        return (
            d.replace("$LIB", lib)
            .replace("${LIB}", lib)
            .replace("$PLATFORM", MUSL_ARCH.get(self.target.files.arch, ""))
        )

    def find(self, name: str, path: str, info: ElfInfo) -> tuple[str, ElfInfo] | str:
        """Where NAME (needed by PATH) resolves on the target, or why it does not."""
        if self.target.libc == "musl" and name in (
            "libc.so",
            f"libc.musl-{MUSL_ARCH.get(self.target.files.arch, '')}.so.1",
        ):
            return ("(musl libc)", ElfInfo(info.elf_class, info.machine, "dyn", dynamic=True))
        origin = posixpath.dirname(path)
        wrong = False
        if "/" in name:
            cands_src = [(self.source, self._expand(name, origin))]
            cands: list[tuple[ImageFiles, str]] = cands_src + [(self.target.files, name)]
        else:
            own = [] if info.runpath else list(info.rpath)
            # An app built FROM the base inherits the base's Env, and may add its own.
            for env in (self.source.env, self.target.files.env):
                own += [d for d in env.get("LD_LIBRARY_PATH", "").split(":") if d]
            own += info.runpath
            cands = []
            for d in own:
                d = self._expand(d, origin)
                # App-relative directories travel with the app; others may be in either.
                cands.append((self.source, posixpath.join(d, name)))
                cands.append((self.target.files, posixpath.join(d, name)))
            for d in self.target.search_dirs:
                cands.append((self.target.files, posixpath.join(d, name)))
        for files, cand in cands:
            got = self._lib_in(files, cand, info)
            if got is False:
                wrong = True
                continue
            if got:
                return got  # type: ignore[return-value]
        return "wrong-arch" if wrong else "missing"

    def check(self, path: str, info: ElfInfo | str) -> FileVerdict:
        if isinstance(info, str):
            return FileVerdict(path, "unknown", UNREADABLE, info)
        kind = _kind(path, info)
        v = FileVerdict(
            path, kind, LOADS, arch=info.arch, interpreter=info.interp, needed=list(info.needed)
        )
        if self.want and (info.machine, info.elf_class) != self.want:
            v.verdict = WRONG_ARCH
            v.detail = f"built for {info.arch} ({info.elf_class}-bit); the base is {self.target.files.arch}"
            return v
        if kind == "static":
            v.detail = "statically linked"
            return v
        if info.interp:
            real = self.target.files.resolve(info.interp)
            node = self.target.files.tree.get(real) if real else None
            if node is None or node.kind != "file":
                have = ", ".join(self.target.interpreters) or "none"
                flavour = (
                    "musl"
                    if "musl" in info.interp
                    else "glibc"
                    if "ld-linux" in info.interp
                    else ""
                )
                v.verdict = MISSING_INTERPRETER
                v.detail = (
                    f"needs the {flavour + ' ' if flavour else ''}loader {info.interp}; "
                    f"the base ({self.target.describe()}) has {have}"
                )
                return v
        resolved: dict[str, tuple[str, ElfInfo]] = {}
        for name in info.needed:
            got = self.find(name, path, info)
            if isinstance(got, str):
                v.missing.append(
                    name + (" (only for another architecture)" if got == "wrong-arch" else "")
                )
            else:
                resolved[name] = got
        if v.missing:
            v.verdict = MISSING_LIBRARY
            v.detail = f"{', '.join(v.missing)} not found on the base ({self.target.describe()})"
            return v
        too_new: list[str] = []
        for lib, versions in info.verneed.items():
            found = resolved.get(lib)
            if found is None or found[0] == "(musl libc)":
                continue
            defined = set(found[1].verdef)
            for ver in versions:
                if ver not in defined:
                    too_new.append(f"{ver} from {lib}")
        if too_new:
            v.verdict = VERSION_TOO_NEW
            v.versions = too_new
            v.detail = f"needs {', '.join(too_new[:4])}{' …' if len(too_new) > 4 else ''}; the base has {self.target.describe()}"
        return v


def check_compat(
    image: Image,
    target: Image,
    *,
    paths: Iterable[str] = (),
    image_name: str = "",
    target_name: str = "",
    on_source: Callable[[ImageFiles], None] | None = None,
) -> CompatReport:
    """Predict, per ELF file of IMAGE, whether it would load on TARGET. ON_SOURCE, if
    given, sees IMAGE's files once read (callers that need the tree avoid a second pass)."""
    t0 = time.monotonic()
    prefixes = [p.strip("/") for p in paths]

    def in_scope(p: str) -> bool:
        return not prefixes or any(p == x or p.startswith(x + "/") for x in prefixes)

    def want_src(p: str, size: int) -> bool:
        return p.endswith((".dist-info/RECORD", ".dist-info/WHEEL")) or (
            on_source is not None and "/bin/" in "/" + p and size < 64 << 10
        )

    # The target is read in a second thread: its decompression and hashing release the
    # GIL and overlap with the source's tar parsing.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(
            read_image,
            target,
            elf=lambda p: "/lib" in "/" + p or p.startswith("lib") or "/ld-" in p,
            want=lambda p, s: p.startswith(("etc/ld.so.conf", "etc/ld-musl-")),
        )
        source = read_image(image, elf=in_scope, want=want_src)
        target_files = pending.result()
    if on_source is not None:
        on_source(source)
    system = TargetSystem.from_files(target_files)
    checker = Checker(source, system)
    notes = _wheel_notes(source)
    verdicts: list[FileVerdict] = []
    for path in sorted(source.elves):
        info = source.elves[path]
        if isinstance(info, ElfInfo) and info.elf_type in ("rel", "core", "other"):
            continue  # object files and core dumps are not loaded by anyone
        v = checker.check(path, info)
        if v.kind == "node-addon":
            v.note = _addon_note(path)
        elif v.kind == "python-extension":
            note = notes.get(path, "not from a wheel (a distribution package or built locally)")
            v.note = "Python extension module, " + note
            if system.libc == "musl" and "manylinux" in note:
                v.note += "; manylinux wheels are built for glibc, pick a musllinux wheel"
            elif system.libc == "glibc" and "musllinux" in note:
                v.note += "; musllinux wheels are built for musl, pick a manylinux wheel"
        verdicts.append(v)
    counts: dict[str, int] = {}
    for v in verdicts:
        counts[v.verdict] = counts.get(v.verdict, 0) + 1
    return CompatReport(
        image=image_name or image.source,
        against=target_name or target.source,
        arch=system.files.arch,
        target_libc=system.describe(),
        compatible=all(v.verdict == LOADS for v in verdicts),
        files=verdicts,
        elf_files=len(verdicts),
        files_scanned=source.files_seen,
        seconds=round(time.monotonic() - t0, 3),
        counts=counts,
    )
