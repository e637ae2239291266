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
# The page-size limit of mount data (with room for the knobs); past it the lower dirs
# are named by /proc/self/fd paths (see mount_overlay).
_MAX_DATA = 4000


def require_root(what: str = "this") -> None:
    if os.geteuid() != 0:
        raise PermissionRequiredError(
            f"{what} needs root (overlayfs mounts and runc); run it with sudo or as root"
        )


def _topmost_only(bottom_first: list[str]) -> list[str]:
    """LOWERS with each repeated dir kept at its topmost place only.

    An image may hold the same layer twice (`COPY a /a` twice makes two identical
    layers), and overlayfs refuses a lower dir given twice (ELOOP). Dropping the lower
    copy shows the same tree: the upper copy writes every file again, repeats every
    whiteout and opaque marker over all that lies below it, and so undoes nothing the
    layers in between did that the lower copy would have kept."""
    seen: set[str] = set()
    top_first = []
    for path in reversed(bottom_first):
        if path not in seen:
            seen.add(path)
            top_first.append(path)
    return top_first[::-1]


def mount_overlay(
    target: str | Path,
    lowers: Sequence[str | Path],
    upper: str | Path | None = None,
    work: str | Path | None = None,
) -> None:
    """Mount LOWERS (bottom layer first) with an optional UPPER at TARGET.

    mount(2) takes at most a page of options, and an image of ~60 layers named by their
    digests already needs more. Past that, each lower dir is opened (O_PATH) and named as
    `/proc/self/fd/N`: about 20 bytes a layer, so some 180 layers fit (Docker's layer
    store stops at 125), whatever the dirs' names and parents. The kernel resolves those paths at mount
    time and the overlay keeps its own references, so the fds are closed right after.
    This replaced a chdir() to the layers' common parent with relative names: the working
    directory belongs to the whole process, and minify/optimize mount from several
    threads while others open cwd-relative paths.

    Why not the new mount API (fsopen + fsconfig `lowerdir+`, one call a layer, no page
    limit)? It needs Linux 6.8 for `lowerdir+`, so older kernels would still need this
    path (both work on this 6.18 kernel, in about the same time for 150 layers); one
    mechanism that works on every kernel with overlayfs is simpler, and it covers any
    image Docker can make. Short option strings keep the plain paths, which
    mountinfo shows as they are.
    """
    require_root("mounting an overlay")
    lower_dirs = _topmost_only([str(p) for p in lowers])
    if not lower_dirs:
        raise RuntimeToolError("overlay needs at least one lower dir")
    if upper is None and len(lower_dirs) == 1:
        # overlayfs refuses a single lower without upper: bind it read-only instead.
        _mount(lower_dirs[0], str(target), "", 4096 | 16384, "")  # MS_BIND | MS_REC
        _mount("", str(target), "", 4096 | 32 | MS_RDONLY, "")  # remount ro
        return
    top_first = list(reversed(lower_dirs))
    tail = f",upperdir={upper},workdir={work}" if upper is not None else ""
    flags = 0 if upper else MS_RDONLY
    opts = "lowerdir=" + ":".join(top_first) + tail
    if len(opts) <= _MAX_DATA:
        _mount_with_knobs(str(target), flags, opts)
        return
    fds: list[int] = []
    try:
        for path in top_first:
            try:
                fds.append(os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC))
            except OSError as exc:
                raise RuntimeToolError(
                    f"mount overlay on {target}: lower dir {path}: {exc.strerror}"
                ) from None
        opts = "lowerdir=" + ":".join(f"/proc/self/fd/{fd}" for fd in fds) + tail
        if len(opts) > _MAX_DATA:
            raise RuntimeToolError(f"too many layers for one overlay mount ({len(lower_dirs)})")
        _mount_with_knobs(str(target), flags, opts)
    finally:
        for fd in fds:
            os.close(fd)


def _mount_with_knobs(target: str, flags: int, opts: str) -> None:
    knobs = ",index=off,redirect_dir=off"
    try:
        _mount("overlay", target, "overlay", flags, opts + knobs)
    except RuntimeToolError:
        # Older kernels reject the redirect_dir/index knobs; they default off there.
        _mount("overlay", target, "overlay", flags, opts)


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
