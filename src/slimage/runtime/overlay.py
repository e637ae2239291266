"""overlayfs mounts: the rootfs of every RUN and every container.

Lower dirs are the unpacked layers (top first, as overlayfs wants); the upper dir collects
the changes, which is exactly the next layer. We call mount(2) directly instead of running
mount(8): it is faster and leaves nothing to parse.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from slimage.errors import PermissionRequiredError, RuntimeToolError

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
MS_RDONLY = 1
MNT_DETACH = 2
# umount2's answers for "nothing to undo": EINVAL (not a mount point), ENOENT (no such
# path, e.g. a half-made container or workspace).
_NOT_MOUNTED = (errno.EINVAL, errno.ENOENT)
# The page-size limit of mount data; past it we mount with paths relative to a chdir.
_MAX_DATA = 4000


def require_root(what: str = "this") -> None:
    if os.geteuid() != 0:
        raise PermissionRequiredError(
            f"{what} needs root (overlayfs mounts and runc); run it with sudo or as root"
        )


def mount_overlay(
    target: str | Path,
    lowers: Sequence[str | Path],
    upper: str | Path | None = None,
    work: str | Path | None = None,
) -> None:
    """Mount LOWERS (bottom layer first) with an optional UPPER at TARGET."""
    require_root("mounting an overlay")
    lower_dirs = [str(p) for p in lowers]
    if not lower_dirs:
        raise RuntimeToolError("overlay needs at least one lower dir")
    if upper is None and len(lower_dirs) == 1:
        # overlayfs refuses a single lower without upper: bind it read-only instead.
        _mount(lower_dirs[0], str(target), "", 4096 | 16384, "")  # MS_BIND | MS_REC
        _mount("", str(target), "", 4096 | 32 | MS_RDONLY, "")  # remount ro
        return
    top_first = list(reversed(lower_dirs))
    cwd = None
    parents = {os.path.dirname(p) for p in top_first}
    opts = "lowerdir=" + ":".join(top_first)
    if upper is not None:
        opts += f",upperdir={upper},workdir={work}"
    if len(opts) > _MAX_DATA and len(parents) == 1:
        cwd = parents.pop()
        opts = "lowerdir=" + ":".join(os.path.basename(p) for p in top_first)
        if upper is not None:
            opts += f",upperdir={os.path.abspath(upper)},workdir={os.path.abspath(work or '')}"
    if len(opts) > _MAX_DATA:
        raise RuntimeToolError(f"too many layers for one overlay mount ({len(lower_dirs)})")
    opts += ",index=off,redirect_dir=off"
    old = os.getcwd() if cwd else None
    try:
        if cwd:
            os.chdir(cwd)
        try:
            _mount("overlay", str(target), "overlay", 0 if upper else MS_RDONLY, opts)
        except RuntimeToolError:
            # Older kernels reject the redirect_dir/index knobs; they default off there.
            _mount(
                "overlay",
                str(target),
                "overlay",
                0 if upper else MS_RDONLY,
                opts.replace(",index=off,redirect_dir=off", ""),
            )
    finally:
        if old:
            os.chdir(old)


def _mount(source: str, target: str, fstype: str, flags: int, data: str) -> None:
    rc = _libc.mount(
        source.encode(), target.encode(), fstype.encode() or None, flags, data.encode() or None
    )
    if rc != 0:
        err = ctypes.get_errno()
        raise RuntimeToolError(f"mount {fstype or 'bind'} on {target}: {os.strerror(err)}")


def unmount(target: str | Path) -> None:
    """Unmount, lazily if busy: cleanup must never leave a mount behind."""
    t = str(target).encode()
    if _libc.umount2(t, 0) != 0:
        err = ctypes.get_errno()
        if err in _NOT_MOUNTED:
            return
        if _libc.umount2(t, MNT_DETACH) != 0:
            err = ctypes.get_errno()
            if err not in _NOT_MOUNTED:
                raise RuntimeToolError(f"umount {target}: {os.strerror(err)}")


def is_mounted(target: str | Path) -> bool:
    t = os.path.realpath(str(target))
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) > 4 and parts[4] == t:
                return True
    return False


@contextlib.contextmanager
def overlay(
    target: str | Path,
    lowers: Sequence[str | Path],
    upper: str | Path | None = None,
    work: str | Path | None = None,
) -> Iterator[Path]:
    Path(target).mkdir(parents=True, exist_ok=True)
    mount_overlay(target, lowers, upper, work)
    try:
        yield Path(target)
    finally:
        unmount(target)
