"""The rules a layer tar must obey before we store or unpack it.

A layer is untrusted input that will be written to disk as root. Each entry is checked in
archive order, with the same parser (tarscan) the extractor uses, so what we check is
exactly what we would write:

- no absolute names and no `..` component (in names, and in hardlink targets);
- nothing written *through* a symlink the layer itself created (`link -> /etc`, then
  `link/passwd`), and no hardlink through one;
- a hardlink must name a regular file (or other non-directory) that appeared earlier in
  the same layer; that is also all Docker's overlay2 driver can apply;
- character and block devices only under `dev/`;
- each path at most once per layer;
- a whiteout names one sibling: never empty, `.`, `..`, or anything with a `/`
  (`slimage.layers.whiteout.whiteout_victim`, the rule the extractor and the merged tree use);
- xattrs the kernel would refuse or that steer the runtime are refused (`check_xattrs`).

Numeric fields and name lengths are checked one level down, by the parser itself
(`tarscan.check_fields`, `tarscan.path_problem`), for every reader.

The checker keeps one set of names per layer (tens of bytes per entry), never file data.
Decompression bombs are refused one level down, in `slimage.layers.compression`.
"""

from __future__ import annotations

import struct

from slimage.errors import UnsafeArchiveError
from slimage.layers.tarscan import TarEntry
from slimage.layers.whiteout import OPAQUE, whiteout_victim
from slimage.layers.whiteout import PREFIX as WHITEOUT_PREFIX

__all__ = ["OPAQUE", "WHITEOUT_PREFIX", "LayerChecker", "check_xattrs", "clean_link_target"]

DEVICE_KINDS = frozenset({"chardev", "blockdev"})
XATTR_NAME_MAX = 255
XATTR_SIZE_MAX = 65536
_REFUSED_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.")
# vfs_cap_data revisions (linux/capability.h): magic in the top byte, size fixed by it.
_CAP_SIZES = {0x01000000: 12, 0x02000000: 20, 0x03000000: 24}


def xattr_problem(key: str, value: bytes) -> str | None:
    """Why a layer may not set xattr KEY=VALUE, or None. Decided as Docker decides at
    `docker load` (an xattr the kernel refuses fails the load), so what the store accepts
    `run` can extract:

    - a name must be 1..255 bytes without NUL and a value at most 64 KiB (setxattr's own
      limits);
    - `security.capability` must be a well-formed vfs_cap_data (revision 1, 2 or 3 with
      its exact size): the kernel refuses anything else with EINVAL;
    - `trusted.overlay.*` and `user.overlay.*` are refused, as containerd does: they are
      overlayfs's own metadata (opaque, redirect, metacopy), so a layer setting them
      could make the overlay mount show files of other layers or hide its own.
    """
    raw = key.encode("utf-8", "surrogateescape")
    if not raw or len(raw) > XATTR_NAME_MAX or b"\0" in raw:
        return f"invalid xattr name {key[:64]!r}"
    if len(value) > XATTR_SIZE_MAX:
        return f"xattr {key!r} value is {len(value)} bytes (over {XATTR_SIZE_MAX})"
    if key.startswith(_REFUSED_XATTR_PREFIXES):
        return f"xattr {key!r} is overlayfs metadata, which a layer may not set"
    if key == "security.capability":
        magic = struct.unpack_from("<I", value)[0] & 0xFF000000 if len(value) >= 4 else 0
        if _CAP_SIZES.get(magic) != len(value):
            return f"xattr security.capability is not a valid vfs_cap_data ({len(value)} bytes)"
    return None


def check_xattrs(label: str, name: str, xattrs: dict[str, bytes] | None) -> None:
    """Raise `UnsafeArchiveError` for the first xattr of entry NAME that `xattr_problem`
    refuses."""
    for key, value in (xattrs or {}).items():
        problem = xattr_problem(key, value)
        if problem is not None:
            raise UnsafeArchiveError(f"{label}: {name!r}: {problem}")


def _components(name: str) -> list[str]:
    return [c for c in name.split("/") if c and c != "."]


def clean_link_target(linkname: str) -> str:
    """A hardlink target as a root-relative path (tar writers differ on the leading `/`)."""
    parts = _components(linkname)
    return "/".join(parts)


class LayerChecker:
    """Callable for TarScanner: raises `UnsafeArchiveError` on the first bad entry.

    `label` prefixes every message (the archive and layer), so the one line the user sees
    names the file, the entry and the problem. With `external_hardlinks=True` a hardlink
    may point below this layer (the extractor then checks the target really exists)."""

    def __init__(self, label: str = "layer", *, external_hardlinks: bool = False):
        self.label = label
        self.external_hardlinks = external_hardlinks
        self._seen: set[str] = set()
        self._symlinks: set[str] = set()
        self._dirs: set[str] = set()

    def _fail(self, name: str, problem: str) -> UnsafeArchiveError:
        return UnsafeArchiveError(f"{self.label}: {name!r}: {problem}")

    def _through_symlink(self, parts: list[str]) -> str | None:
        if not self._symlinks:
            return None
        prefix = ""
        for comp in parts[:-1]:
            prefix = f"{prefix}/{comp}" if prefix else comp
            if prefix in self._symlinks:
                return prefix
        return None

    def check(self, entry: TarEntry) -> None:
        raw = entry.raw_name or entry.name
        if raw.startswith("/"):
            raise self._fail(raw, "absolute path in layer")
        parts = _components(raw)
        if ".." in parts:
            raise self._fail(raw, "path has a '..' component (escapes the layer root)")
        name = "/".join(parts)
        if not name:
            return  # the root directory itself ("./")
        if name in self._seen:
            raise self._fail(name, "duplicate entry in one layer")
        link = self._through_symlink(parts)
        if link is not None:
            raise self._fail(name, f"written through symlink {link!r} created by this layer")
        base = parts[-1]
        if entry.kind in DEVICE_KINDS and not name.startswith("dev/"):
            raise self._fail(name, f"{entry.kind} device outside dev/")
        if base.startswith(WHITEOUT_PREFIX):
            if entry.kind not in ("file", "hardlink"):
                raise self._fail(name, f"whiteout is a {entry.kind}, not a regular file")
            whiteout_victim(name, where=self.label)
        if entry.xattrs:
            check_xattrs(self.label, name, entry.xattrs)
        if entry.kind == "hardlink":
            self._check_hardlink(name, entry.linkname)
        self._seen.add(name)
        if entry.kind == "symlink":
            self._symlinks.add(name)
        elif entry.kind == "dir":
            self._dirs.add(name)

    def _check_hardlink(self, name: str, linkname: str) -> None:
        parts = _components(linkname)
        if ".." in parts:
            raise self._fail(name, f"hardlink target {linkname!r} escapes the layer root")
        target = "/".join(parts)
        if not target:
            raise self._fail(name, "hardlink with an empty target")
        if target == name:
            raise self._fail(name, "hardlink to itself")
        link = self._through_symlink(parts)
        if link is not None:
            raise self._fail(name, f"hardlink target {target!r} goes through symlink {link!r}")
        if target in self._dirs:
            raise self._fail(name, f"hardlink to directory {target!r}")
        if target not in self._seen and not self.external_hardlinks:
            raise self._fail(name, f"hardlink to {target!r}, which is not earlier in this layer")

    def __call__(self, entry: TarEntry) -> None:
        self.check(entry)
        return None
