"""File operations inside a mounted rootfs: path resolution that never leaves the root,
and COPY's copy rules (BuildKit's fsutil copier: metadata, ownership, --chmod).
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass

from slimage.errors import BuildError


def resolve_in_root(root: str, path: str, *, follow_last: bool = True) -> str:
    """Host path of container PATH, following symlinks as the container would (an
    absolute link target is relative to ROOT, `..` stops at ROOT)."""
    parts = [p for p in path.split("/") if p and p != "."]
    done: list[str] = []
    hops = 0
    while parts:
        comp = parts.pop(0)
        if comp == "..":
            if done:
                done.pop()
            continue
        host = os.path.join(root, *done, comp)
        if os.path.islink(host) and (parts or follow_last):
            hops += 1
            if hops > 40:
                raise BuildError(f"too many levels of symbolic links in {path}")
            target = os.readlink(host)
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p and p != "."] + parts
            continue
        done.append(comp)
    return os.path.join(root, *done)


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


def mkdir_p(root: str, cpath: str, uid: int = 0, gid: int = 0, mode: int = 0o755) -> str:
    """`mkdir -p` inside ROOT; created dirs get MODE and the owner (as BuildKit's MkdirAll).

    The path is resolved first, with ROOT as `/`, so a dangling symlink on the way (say
    `/app -> /srv/app`) has its target created inside the rootfs, as Docker does; every
    directory is then made on the resolved path, which holds no symlink, so nothing can
    land outside ROOT."""
    host = resolve_in_root(root, cpath)
    rel = os.path.relpath(host, root)
    cur = root
    done = ""
    for comp in [] if rel == "." else rel.split("/"):
        cur = os.path.join(cur, comp)
        done = f"{done}/{comp}"
        if os.path.islink(cur):  # resolve_in_root followed every link; a race is an error
            raise BuildError(f"cannot create directory {done}: it is a symbolic link")
        if os.path.lexists(cur):
            if not os.path.isdir(cur):
                raise BuildError(f"cannot create directory {done}: a file is in the way")
        else:
            os.mkdir(cur, mode)
            os.chmod(cur, mode)
            os.lchown(cur, uid, gid)
    return host


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
