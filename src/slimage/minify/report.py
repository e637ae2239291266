"""The minify report: answer first (how much smaller), then what was kept, removed, probed.

Sizes follow Docker's SIZE rule (regular file bytes plus symlink target lengths, each
hardlinked inode once), measured on the original's merged filesystem and on the kept set,
so "before" is what `slimage images` shows and "after" is what the new layers hold.
"""

from __future__ import annotations

import json
import os
import stat
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path

from slimage.minify.probe import ProbeResult
from slimage.units import human_size

SHELLS = ("sh", "bash", "dash", "ash", "zsh", "ksh", "busybox")
PACKAGE_MANAGERS = (
    "apt",
    "apt-get",
    "dpkg",
    "apk",
    "yum",
    "dnf",
    "rpm",
    "pip",
    "pip3",
    "npm",
    "yarn",
)
BIN_DIRS = ("/bin", "/usr/bin", "/sbin", "/usr/sbin", "/usr/local/bin")


@dataclass
class FsStats:
    files: int = 0
    bytes: int = 0
    elf: int = 0


@dataclass
class MinifyReport:
    image: str
    minified: str  # manifest digest
    image_id: str  # config digest
    tags: list[str]
    before: FsStats
    after: FsStats
    factor: float  # image size before / after (the SIZE `slimage images` shows)
    image_size_before: int = 0
    image_size_after: int = 0
    layers: list[dict] = field(default_factory=list)
    probes: list[ProbeResult] = field(default_factory=list)
    verify_probes: list[ProbeResult] = field(default_factory=list)
    verified: str = "passed"  # passed, failed, off
    largest_removed: list[tuple[str, int]] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)  # shells and package managers removed
    keep_packages: dict[str, int] = field(default_factory=dict)
    keep_packages_bytes: int = 0
    traced_paths: int = 0
    # Bytes (SIZE rule) of what the trace and its ELF closure strictly need: the floor
    # the image can shrink to; keep-packages, config and runtime files come on top.
    floor_bytes: int = 0
    seccomp_profile: str = ""  # the file written by --seccomp-profile
    seccomp_syscalls: int = 0  # how many syscalls it allows
    elf_closure_added: int = 0
    unresolved: list[str] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)  # reason -> paths kept for it
    app_exit: str = ""
    seconds: dict[str, float] = field(default_factory=dict)
    kept_paths: list[str] = field(default_factory=list)
    traced: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        data = asdict(self)
        data.pop("kept_paths")
        data.pop("traced")
        data["largest_removed"] = [{"path": p, "bytes": b} for p, b in self.largest_removed]
        return data


def _is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(4) == b"\x7fELF"
    except OSError:
        return False


# One walked entry of the original's view: (path, its directory, bytes counted for it,
# inode key when it is a regular file with other links, whether it is an ELF object).
ViewEntry = tuple[str, str, int, "tuple[int, int] | None", bool]


class ScanCancelled(Exception):
    """`scan_view` was told to stop (the minify it served is ending early)."""


def scan_view(root: str, cancel: threading.Event | None = None) -> list[ViewEntry]:
    """Every file and symlink of the merged ROOT, in walk order, with its size (a hardlink
    counted at its first path only) and whether it is an ELF object. It needs no closure,
    so minify walks the original's view while the traced app starts."""
    out: list[ViewEntry] = []
    seen: set[tuple[int, int]] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        if cancel is not None and cancel.is_set():
            raise ScanCancelled("the view scan was stopped")
        rel = "/" + os.path.relpath(dirpath, root)
        rel = "/" if rel == "/." else rel
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            host = os.path.join(dirpath, name)
            path = rel.rstrip("/") + "/" + name
            try:
                st = os.lstat(host)
            except OSError:
                continue
            multi: tuple[int, int] | None = None
            if stat.S_ISLNK(st.st_mode):
                size = len(os.readlink(host).encode("utf-8", "surrogateescape"))
            elif stat.S_ISREG(st.st_mode):
                key = (st.st_dev, st.st_ino)
                size = 0 if (st.st_nlink > 1 and key in seen) else st.st_size
                seen.add(key)
                if st.st_nlink > 1:
                    multi = key
            else:
                continue
            # ELF objects are executables or shared objects by name; reading the magic of
            # every data file would double the time of this walk.
            elf = bool(
                stat.S_ISREG(st.st_mode)
                and st.st_size >= 52
                and (st.st_mode & 0o111 or ".so" in name)
                and _is_elf(host)
            )
            out.append((path, rel, size, multi, elf))
    return out


def measure(
    root: str, keep: set[str], entries: list[ViewEntry] | None = None
) -> tuple[FsStats, FsStats, list[tuple[str, int]]]:
    """(before, after, largest fully removed directories) over the merged ROOT (ENTRIES:
    its `scan_view`, when already made)."""
    if entries is None:
        entries = scan_view(root)
    before, after = FsStats(), FsStats()
    kept_seen: set[tuple[int, int]] = set()
    removed_dirs: dict[str, int] = {}
    has_kept: set[str] = set()
    for p in keep:
        parts = p.strip("/").split("/")
        for i in range(len(parts)):
            has_kept.add("/" + "/".join(parts[:i]) if i else "/")
    for path, rel, size, multi, elf in entries:
        before.files += 1
        before.bytes += size
        before.elf += elf
        if path in keep:
            if multi is not None:
                if multi in kept_seen:
                    size = 0
                kept_seen.add(multi)
            after.files += 1
            after.bytes += size
            after.elf += elf
        else:
            # Charge removed bytes to the outermost directory with nothing kept.
            d = rel
            top = None
            while d not in has_kept and d != "/":
                top = d
                d = os.path.dirname(d)
            if top:
                removed_dirs[top] = removed_dirs.get(top, 0) + size
    largest = sorted(removed_dirs.items(), key=lambda kv: (-kv[1], kv[0]))[:8]
    return before, after, largest


def size_of(root: str, paths: set[str]) -> int:
    """Docker's SIZE of PATHS in the merged ROOT: regular files (each inode once) plus
    symlink target lengths."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for p in paths:
        host = os.path.join(root, p.lstrip("/"))
        try:
            st = os.lstat(host)
        except OSError:
            continue
        if stat.S_ISLNK(st.st_mode):
            total += len(os.readlink(host).encode("utf-8", "surrogateescape"))
        elif stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


def gone_tools(root: str, keep: set[str]) -> list[str]:
    """Shells and package managers the original had in its bin dirs and the minified lacks."""
    out = []
    for name in SHELLS + PACKAGE_MANAGERS:
        for d in BIN_DIRS:
            p = f"{d}/{name}"
            if os.path.lexists(os.path.join(root, p.lstrip("/"))):
                kept = p in keep or any(k.endswith("/" + name) and "/bin/" in k for k in keep)
                if not kept:
                    out.append(name)
                break
    return out


def _probe_line(p: ProbeResult, v: ProbeResult | None) -> str:
    status = p.status if p.status is not None else "-"
    mark = "ok" if p.ok else f"FAILED ({p.error})"
    line = f"  {p.name:<32} {status!s:>4}  {p.body_bytes:>7} B  {p.seconds * 1000:7.1f} ms  {mark}"
    if v is not None:
        line += "  verify: " + ("same" if not v.differs else "; ".join(v.differs))
    return line


def render(r: MinifyReport) -> str:
    lines = []
    tag = f" -> {', '.join(r.tags)}" if r.tags else ""
    lines.append(
        f"{r.image}: {human_size(r.image_size_before)} -> {human_size(r.image_size_after)} "
        f"({r.factor:.1f}x smaller){tag}"
    )
    lines.append(
        f"  files: {human_size(r.before.bytes)} in the original's filesystem, "
        f"{human_size(r.after.bytes)} kept"
    )
    lines.append(f"  image {r.minified}   verification: {r.verified}")
    if r.floor_bytes:
        lines.append(
            f"  floor (traced files + their ELF closure): {human_size(r.floor_bytes)}; "
            f"the image is {r.image_size_after / r.floor_bytes:.2f}x that"
        )
    lines.append(
        f"  files kept {r.after.files} of {r.before.files} (removed {r.before.files - r.after.files});"
        f" ELF objects kept {r.after.elf} of {r.before.elf} (removed {r.before.elf - r.after.elf})"
    )
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(r.reasons.items(), key=lambda kv: -kv[1]))
    lines.append(f"  kept paths by reason: {reasons}")
    if r.keep_packages:
        pk = ", ".join(f"{k} (+{v})" for k, v in sorted(r.keep_packages.items()))
        lines.append(f"  keep-packages added {human_size(r.keep_packages_bytes)}: {pk}")
    if r.layers:
        lines.append(
            "  layers: " + ", ".join(f"{lay['part']} {human_size(lay['size'])}" for lay in r.layers)
        )
    if r.largest_removed:
        lines.append("  largest directories removed:")
        for p, b in r.largest_removed:
            lines.append(f"    {human_size(b):>8}  {p}")
    if r.probes:
        lines.append("  probes:")
        for i, probe in enumerate(r.probes):
            v = r.verify_probes[i] if i < len(r.verify_probes) else None
            lines.append(_probe_line(probe, v))
    if r.gone:
        lines.append(f"  gone: {', '.join(r.gone)}")
    if r.seccomp_profile:
        lines.append(
            f"  seccomp profile: {r.seccomp_profile} ({r.seccomp_syscalls} syscalls allowed)"
        )
    if r.unresolved:
        lines.append(f"  unresolved ELF dependencies: {', '.join(r.unresolved[:6])}")
    if r.verified == "off":
        lines.append("  verification skipped (--verify=off): the image was not re-run")
    return "\n".join(lines)


def write_report_dir(r: MinifyReport, directory: str) -> None:
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    (d / "report.json").write_text(json.dumps(r.to_json(), indent=2, default=str) + "\n")
    (d / "traced.txt").write_text("".join(p + "\n" for p in sorted(r.traced)))
    (d / "kept.txt").write_text("".join(p + "\n" for p in sorted(r.kept_paths)))
    (d / "summary.txt").write_text(render(r) + "\n")
