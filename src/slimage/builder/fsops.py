"""COPY's copy rules inside a mounted rootfs (BuildKit's fsutil copier: metadata,
ownership, --chmod). Paths are resolved with `slimage.fs.rootpath`, which never leaves
the root.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass

from slimage.errors import BuildError


@dataclass
class CopyOpts:
    uid: int | None = None  # None: keep the source owner (context files: 0)
    gid: int | None = None
    chmod: int | None = None
    context_owner: bool = False  # files from the build context: owner becomes 0:0


def _owner(st: os.stat_result, opts: CopyOpts) -> tuple[int, int]:
    if opts.uid is not None:
        return opts.uid, opts.gid if opts.gid is not None else opts.uid
    if opts.context_owner:
        return 0, 0
    return st.st_uid, st.st_gid


def _copy_xattrs(src: str, dst: str) -> None:
    try:
        names = os.listxattr(src, follow_symlinks=False)
    except OSError:
        return
    for n in names:
        if n.startswith("trusted.overlay.") or n.startswith("system."):
            continue
        try:
            os.setxattr(dst, n, os.getxattr(src, n, follow_symlinks=False), follow_symlinks=False)
        except OSError:
            pass


def _apply_meta(dst: str, st: os.stat_result, opts: CopyOpts) -> None:
    uid, gid = _owner(st, opts)
    os.lchown(dst, uid, gid)
    if not stat.S_ISLNK(st.st_mode):
        mode = opts.chmod if opts.chmod is not None else stat.S_IMODE(st.st_mode)
        os.chmod(dst, mode)
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


class Copier:
    """Copies trees into a rootfs, keeping hard links and following BuildKit's metadata
    rules: a created dir takes the source dir's metadata; a nested dir that exists has it
    overwritten; the top destination dir, when it exists, is left as it is."""

    def __init__(self, opts: CopyOpts, skip: Callable[[str], bool] | None = None):
        self.opts = opts
        self.inodes: dict[tuple[int, int], str] = {}
        self.skip = skip  # SKIP(abs source path) -> True leaves it out (.dockerignore)

    def copy(self, src: str, dst: str, *, top: bool = True) -> None:
        st = os.lstat(src)
        if stat.S_ISDIR(st.st_mode):
            self._dir(src, dst, st, overwrite=not top)
        else:
            self._file(src, dst, st)

    def copy_contents(self, src: str, dst: str) -> None:
        """Copy what is inside directory SRC into existing directory DST."""
        for name in sorted(os.listdir(src)):
            s = os.path.join(src, name)
            if self.skip is not None and self.skip(s):
                continue
            self.copy(s, os.path.join(dst, name), top=False)

    def _dir(self, src: str, dst: str, st: os.stat_result, *, overwrite: bool) -> None:
        created = False
        if os.path.islink(dst):
            # BuildKit's copier refuses too ("cannot copy to non-directory"): following
            # the link would write where it points, on the host for an absolute target.
            raise BuildError(
                f"cannot copy directory {os.path.basename(src)}: the destination "
                f"{os.path.basename(dst)} is a symbolic link, not a directory"
            )
        if os.path.lexists(dst) and not os.path.isdir(dst):
            os.unlink(dst)
        if not os.path.lexists(dst):
            os.mkdir(dst, 0o700)
            created = True
        self.copy_contents(src, dst)
        if created or overwrite:
            _apply_meta(dst, st, self.opts)
            _copy_xattrs(src, dst)

    def _file(self, src: str, dst: str, st: os.stat_result) -> None:
        if os.path.isdir(dst) and not os.path.islink(dst):
            raise BuildError(f"cannot copy {os.path.basename(src)}: a directory is in the way")
        if os.path.lexists(dst):
            os.unlink(dst)
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and not stat.S_ISDIR(st.st_mode) and key in self.inodes:
            os.link(self.inodes[key], dst)
            return
        m = st.st_mode
        if stat.S_ISREG(m):
            shutil.copyfile(src, dst, follow_symlinks=False)
        elif stat.S_ISLNK(m):
            os.symlink(os.readlink(src), dst)
        elif stat.S_ISCHR(m) or stat.S_ISBLK(m) or stat.S_ISFIFO(m):
            os.mknod(dst, m, st.st_rdev)
        elif stat.S_ISSOCK(m):
            return
        _apply_meta(dst, st, self.opts)
        _copy_xattrs(src, dst)
        if st.st_nlink > 1:
            self.inodes[key] = dst
