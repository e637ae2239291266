"""Paths inside an unpacked rootfs, resolved as the container sees them.

Both the builder (COPY, WORKDIR, RUN mounts) and the runtime (the working directory and
the program to exec) must turn a container path into a host path without ever leaving
the rootfs: a symlink's absolute target is relative to the root and `..` stops there.
One resolver serves both, so they cannot disagree about where a path lands.
"""

from __future__ import annotations

import os

from slimage.errors import RootPathError


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
                raise RootPathError(f"too many levels of symbolic links in {path}")
            target = os.readlink(host)
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p and p != "."] + parts
            continue
        done.append(comp)
    return os.path.join(root, *done)


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
            raise RootPathError(f"cannot create directory {done}: it is a symbolic link")
        if os.path.lexists(cur):
            if not os.path.isdir(cur):
                raise RootPathError(f"cannot create directory {done}: a file is in the way")
        else:
            os.mkdir(cur, mode)
            os.chmod(cur, mode)
            os.lchown(cur, uid, gid)
    return host
