"""Compare an image slimage built with the one BuildKit built from the same input.

Facts compared (the issue's list): layer count, history length and created_by text,
the runtime config fields users see, and the merged file tree (paths, types, modes,
owners, symlink targets, file contents). Docker's tree comes from `docker export` of a
created container; ours from the overlay mount our own `run` would use.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from tests.support import testbed

CONFIG_FIELDS = (
    "Env",
    "Cmd",
    "Entrypoint",
    "WorkingDir",
    "User",
    "ExposedPorts",
    "Labels",
    "Volumes",
    "Healthcheck",
    "StopSignal",
)
# What Docker's init layer adds to every container (and so to `docker export`).
DOCKER_INIT = {
    ".dockerenv",
    "etc/hosts",
    "etc/hostname",
    "etc/resolv.conf",
    "etc/mtab",
    "dev",
    "proc",
    "sys",
}
Tree = dict[str, tuple[Any, ...]]


# What a RUN makes differently on every run (npm's cache index and logs hold timestamps).
VOLATILE = ("root/.npm/_cacache/index-v5/", "root/.npm/_logs/")


def _skip(path: str) -> bool:
    return path in DOCKER_INIT or path.startswith(("dev/", "proc/", "sys/") + VOLATILE)


def docker_build(
    ctx: Path, dockerfile: Path, tag: str, *, target: str | None, build_args: dict[str, str]
) -> None:
    args = ["build", "--network", "host", "-q", "-t", tag, "-f", str(dockerfile)]
    if target:
        args += ["--target", target]
    for k, v in build_args.items():
        args += ["--build-arg", f"{k}={v}"]
    testbed.docker(*args, str(ctx), stdout=subprocess.DEVNULL)


def docker_facts(tag: str) -> dict[str, Any]:
    raw = testbed.docker("image", "inspect", tag, capture_output=True, text=True).stdout
    info = json.loads(raw)[0]
    hist = testbed.docker(
        "history",
        "--no-trunc",
        "--format",
        "{{json .CreatedBy}}",
        tag,
        capture_output=True,
        text=True,
    ).stdout
    created_by = [json.loads(line) for line in hist.splitlines()][::-1]
    cfg = info.get("Config") or {}
    return {
        "layers": len(info["RootFS"].get("Layers") or []),
        "created_by": created_by,
        "config": {k: cfg.get(k) or None for k in CONFIG_FIELDS},
    }


def slimage_facts(store: Any, ref: str) -> dict[str, Any]:
    from slimage.store.images import open_image

    img = open_image(store, ref)
    cfg = img.config.config
    return {
        "layers": len(img.config.diff_ids),
        "created_by": [h.created_by for h in img.config.history],
        "config": {k: cfg.get(k) or None for k in CONFIG_FIELDS},
        "history": img.config.data.get("history"),
    }


def _entry(kind: str, mode: int, uid: int, gid: int, extra: str) -> tuple[Any, ...]:
    return (kind, oct(mode & 0o7777), uid, gid, extra)


def docker_tree(tag: str) -> Tree:
    cid = testbed.docker(
        "create", "--network", "host", tag, "true", capture_output=True, text=True
    ).stdout.strip()
    tree: Tree = {}
    try:
        proc = subprocess.Popen([testbed.DOCKER, "export", cid], stdout=subprocess.PIPE)
        assert proc.stdout is not None
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tf:
            for m in tf:
                name = m.name.removeprefix("./").rstrip("/")
                if not name or _skip(name):
                    continue
                if m.isreg():
                    fh = tf.extractfile(m)
                    h = hashlib.sha256(fh.read() if fh else b"").hexdigest()
                    tree[name] = _entry("file", m.mode, m.uid, m.gid, h)
                elif m.islnk():
                    tree[name] = ("hardlink", m.linkname.removeprefix("./"))
                elif m.isdir():
                    tree[name] = _entry("dir", m.mode, m.uid, m.gid, "")
                elif m.issym():
                    tree[name] = _entry("symlink", 0o777, m.uid, m.gid, m.linkname)
                else:
                    tree[name] = _entry(
                        f"type{m.type!r}", m.mode, m.uid, m.gid, f"{m.devmajor}:{m.devminor}"
                    )
        proc.wait()
    finally:
        testbed.docker("rm", "-f", cid, capture_output=True)
    # Hard links: compare by the content of what they point at.
    for name, val in list(tree.items()):
        if val[0] == "hardlink":
            tree[name] = tree.get(val[1], ("missing-link-target",))
    return tree


def slimage_tree(store: Any, ref: str) -> Tree:
    from slimage.runtime.layerdirs import LayerDirs
    from slimage.store.images import open_image

    img = open_image(store, ref)
    dirs = LayerDirs(store)
    lowers = dirs.ensure_all(img.layers)
    tree: Tree = {}
    with dirs.workspace(lowers, writable=False) as ws:
        root = str(ws.merged)
        for dirpath, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, root)
                if _skip(rel):
                    continue
                st = os.lstat(full)
                m = st.st_mode
                if stat.S_ISREG(m):
                    h = hashlib.sha256()
                    with open(full, "rb") as fh:
                        while chunk := fh.read(1 << 20):
                            h.update(chunk)
                    tree[rel] = _entry("file", m, st.st_uid, st.st_gid, h.hexdigest())
                elif stat.S_ISDIR(m):
                    tree[rel] = _entry("dir", m, st.st_uid, st.st_gid, "")
                elif stat.S_ISLNK(m):
                    tree[rel] = _entry("symlink", 0o777, st.st_uid, st.st_gid, os.readlink(full))
                else:
                    kind = {
                        stat.S_IFCHR: "type'3'",
                        stat.S_IFBLK: "type'4'",
                        stat.S_IFIFO: "type'6'",
                    }.get(stat.S_IFMT(m), "other")
                    tree[rel] = _entry(
                        kind,
                        m,
                        st.st_uid,
                        st.st_gid,
                        f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}",
                    )
    return tree


def tree_diff(ours: Tree, theirs: Tree) -> list[str]:
    """Human-readable differences (empty when the trees are the same)."""
    out = []
    for path in sorted(set(ours) | set(theirs)):
        a, b = ours.get(path), theirs.get(path)
        if a == b:
            continue
        if a is None and path == "etc" and b is not None:
            continue  # Docker's init layer makes /etc for its mount points on scratch images
        out.append(f"{path}: slimage={a} docker={b}")
    return out
