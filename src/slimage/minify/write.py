"""Writing the minified image: the closure as (at most) two deterministic layers.

- The bottom layer holds what came from the base (the OS, the language runtime); the top
  layer holds what came from the application's own layers: the first layer made by a
  COPY or ADD, and every layer after it. A rebuild of the app then changes only the top
  layer, and the bottom one is shared between every minified version of it.
- Each file is written from the original's merged view (mode, owner, xattrs as they
  were), parents first, siblings sorted, by the builder's `LayerWriter`: hardlinks stay
  hardlinks, times are clamped to SOURCE_DATE_EPOCH, and two runs give the same bytes.
- The config is the original's (Entrypoint, Cmd, Env, User, WorkingDir, ExposedPorts,
  Labels, StopSignal ...); the original's history entries stay (marked empty_layer,
  their layers are gone) and one entry per new layer says what minify did. `created` is
  SOURCE_DATE_EPOCH when set. The original image is only read.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import shutil
import stat
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from slimage.image import Image
from slimage.layers.writer import LayerWriter, source_date_epoch, stream_layer
from slimage.mutate import ImageAssembler, rfc3339
from slimage.oci import mediatypes as mt
from slimage.oci.model import HistoryEntry
from slimage.store.store import LayerInfo, Store


@dataclass
class Written:
    manifest_digest: str
    config_digest: str
    layers: list[LayerInfo]
    app_layer_from: int  # index of the first original layer counted as the app's
    groups: list[list[str]]  # the kept paths of each new layer, in layer order
    epoch: int | None  # SOURCE_DATE_EPOCH the layers were written under


def _step(h: dict) -> str:
    by = (h.get("created_by") or "").replace("/bin/sh -c #(nop) ", "").lstrip()
    return by.split(None, 1)[0].upper() if by else ""


def app_layer_index(image: Image) -> int:
    """Index of the first layer of the application's own build steps.

    An image's history does not say where its base ends, but a base almost always ends
    with CMD or ENTRYPOINT: the layers after the last such entry that still has layers
    after it are the app's (its dependency install and its sources). An image without
    that marker (an imported base) counts from its first COPY/ADD layer. Returns
    len(layers) when neither is found: everything is base."""
    history = image.config.data.get("history") or []
    n = len(image.layers)
    if sum(1 for h in history if not h.get("empty_layer")) != n:
        return n
    layer = 0
    boundary: int | None = None
    first_copy: int | None = None
    for h in history:
        step = _step(h)
        if h.get("empty_layer"):
            if step in ("CMD", "ENTRYPOINT") and layer < n:
                boundary = layer  # later entries may move it, while layers follow
            continue
        if first_copy is None and step in ("COPY", "ADD"):
            first_copy = layer
        layer += 1
    if boundary is not None and 0 < boundary:
        return boundary
    return first_copy if first_copy is not None else n


def _provider(layer_dirs: list[Path], path: str) -> int:
    """Index of the topmost unpacked layer that holds PATH (0 when none says so)."""
    rel = path.lstrip("/")
    for i in range(len(layer_dirs) - 1, -1, -1):
        try:
            st = os.lstat(layer_dirs[i] / rel)
        except OSError:
            continue
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            return 0  # a whiteout: deleted above, so no layer provides it
        return i
    return 0


def _ordered(paths: Iterable[str]) -> list[str]:
    """Every path and its ancestors, parents first, siblings in byte order."""
    names: set[str] = set()
    for p in paths:
        parts = p.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            names.add("/".join(parts[:i]))
    names.discard("")
    return sorted(names, key=lambda n: [c.encode("utf-8", "surrogateescape") for c in n.split("/")])


def layer_groups(original: Image, layer_dirs: list[Path], keep: Iterable[str]) -> list[list[str]]:
    """KEEP split into the new layers' paths, bottom first: the base's and the app's (see
    the module docstring), or one group when either would be empty."""
    app_from = app_layer_index(original)
    groups: list[list[str]] = [[], []]
    for p in keep:
        groups[1 if _provider(layer_dirs, p) >= app_from else 0].append(p)
    if not groups[0] or not groups[1]:
        groups = [groups[0] + groups[1]]
    return groups


class WriteCancelled(Exception):
    """The caller gave up on the image (its verification failed, or Ctrl-C) while its
    layers were still being written on a thread: the blob being written is dropped."""


def write_image(
    store: Store,
    original: Image,
    root: str,
    layer_dirs: list[Path],
    keep: Iterable[str],
    *,
    created_by: str,
    comment: str,
    groups: list[list[str]] | None = None,
    cancel: threading.Event | None = None,
) -> Written:
    """Write the minified image's blobs (layers, config, manifest) into STORE; it is not
    recorded as an image (the caller does that once it is verified). GROUPS is
    `layer_groups(...)` when the caller already has it. CANCEL, once set, stops the
    writing between two files with `WriteCancelled`."""
    epoch = source_date_epoch()
    app_from = app_layer_index(original)
    if groups is None:
        groups = layer_groups(original, layer_dirs, keep)
    data = copy.deepcopy(original.config.data)
    history = [dict(h, empty_layer=True) for h in data.get("history") or []]
    data["history"] = history
    data["rootfs"] = {"type": "layers", "diff_ids": []}
    created = rfc3339(epoch) if epoch is not None else rfc3339()
    asm = ImageAssembler(store)
    asm.data = data
    asm.docker_types = mt.is_docker(original.manifest.media_type)
    asm.layers = []
    infos = []
    for gi, group in enumerate(groups):
        names = _ordered(group)

        def fill(w: LayerWriter, names: list[str] = names) -> None:
            for n in names:
                if cancel is not None and cancel.is_set():
                    raise WriteCancelled("the minified image was given up")
                w.add_path(os.path.join(root, n), n)

        part = "the base" if gi == 0 and len(groups) == 2 else "the application"
        if len(groups) == 1:
            part = "all kept files"
        info = asm.add_layer(
            stream_layer(fill, epoch=epoch),
            HistoryEntry(
                created=created,
                created_by=f"{created_by} ({part})",
                comment=comment,
            ),
        )
        infos.append(info)
    manifest, config = asm.build(created=created)
    store.put_bytes(config.raw, config.digest)
    digest = store.put_bytes(manifest.raw)
    return Written(digest, config.digest, infos, app_from, groups, epoch)


# ----------------------------------------------------------------------------- unpacked form
_SKIP_XATTRS = ("trusted.overlay.", "security.selinux")  # as the layer writer skips them


def _all_xattrs(path: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return out
    for name in names:
        try:
            out[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
    return out


def _wanted_xattrs(path: str) -> dict[str, bytes]:
    return {k: v for k, v in _all_xattrs(path).items() if not k.startswith(_SKIP_XATTRS)}


def _set_meta(path: str, st: os.stat_result, mtime: int, xattrs: dict[str, bytes]) -> None:
    """What extraction sets: owner, mode (not on links), xattrs, mtime (atime = mtime)."""
    os.lchown(path, st.st_uid, st.st_gid)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(path, stat.S_IMODE(st.st_mode))
    for k, v in xattrs.items():
        os.setxattr(path, k, v, follow_symlinks=False)
    ns = mtime * 1_000_000_000
    os.utime(path, ns=(ns, ns), follow_symlinks=False)


def _linkable(
    src: str, lower: Path, st: os.stat_result, mtime: int, xattrs: dict[str, bytes]
) -> bool:
    """Whether SRC (a file in an unpacked lower layer) already is, byte for byte and in
    every attribute extraction sets, the entry the layer holds: then a hardlink to it
    is what extracting the layer would give."""
    try:
        if os.path.realpath(src) != os.path.normpath(src) or not src.startswith(str(lower) + "/"):
            return False  # reached through a link inside the lower layer
        ls = os.lstat(src)
    except OSError:
        return False
    return (
        stat.S_ISREG(ls.st_mode)
        and ls.st_mode == st.st_mode
        and (ls.st_uid, ls.st_gid, ls.st_size) == (st.st_uid, st.st_gid, st.st_size)
        and ls.st_mtime_ns == mtime * 1_000_000_000
        and _all_xattrs(src) == xattrs
    )


def unpack_from_view(
    dest: Path, root: str, layer_dirs: list[Path], names: Iterable[str], epoch: int | None
) -> tuple[int, int]:
    """Build in DEST what extracting the layer `write_image` made of NAMES would give.

    Same walk and same rules as the layer writer (`_ordered`, the merged view's lstat,
    mtimes in whole seconds clamped to EPOCH, the writer's xattrs, hardlinks within the
    layer kept as hardlinks), but a regular file is a hardlink into the unpacked lower
    layer that provides it whenever that file already has the entry's mode, owner, size,
    mtime and xattrs (overlay never writes to a lower dir, so sharing the inode is safe),
    and a copy otherwise (a clamped mtime, say). Returns (hardlinked, copied) files."""
    linked = copied = 0
    inodes: dict[tuple[int, int], str] = {}
    dir_times: list[tuple[str, int]] = []
    for name in _ordered(names):
        merged = os.path.join(root, name)
        st = os.lstat(merged)
        mtime = max(0, min(int(st.st_mtime), epoch) if epoch is not None else int(st.st_mtime))
        out = os.path.join(dest, name)
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            os.mkdir(out)
            _set_meta(out, st, mtime, _wanted_xattrs(merged))
            dir_times.append((out, mtime))
        elif stat.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in inodes:
                os.link(inodes[key], out)  # a hardlink entry: the same inode as the first
                continue
            inodes[key] = out
            xattrs = _wanted_xattrs(merged)
            i = _provider(layer_dirs, name)
            src = os.path.join(layer_dirs[i], name)
            if _linkable(src, layer_dirs[i], st, mtime, xattrs):
                os.link(src, out)
                linked += 1
                continue
            shutil.copyfile(merged, out)  # sendfile(2): in the kernel
            _set_meta(out, st, mtime, xattrs)
            copied += 1
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(merged), out)
            _set_meta(out, st, mtime, _wanted_xattrs(merged))
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
            if stat.S_ISFIFO(mode):
                os.mkfifo(out, stat.S_IMODE(mode))
            else:
                os.mknod(out, mode, st.st_rdev)
            _set_meta(out, st, mtime, {})
        # sockets: the writer skips them too
    for path, mtime in reversed(dir_times):
        ns = mtime * 1_000_000_000
        os.utime(path, ns=(ns, ns), follow_symlinks=False)
    return linked, copied


# ----------------------------------------------------------------------------- staging
# Bump when `unpack_from_view` or the layer writer change what a layer holds: the index
# below maps what a layer was made of to the diff_id it got.
UNPACK_FORMAT = 1
INDEX_DIR = ".minify-index"


def unpacked_key(original: Image, epoch: int | None, names: Iterable[str]) -> str:
    """What fixes a new layer's content: the original's layers (content-addressed), the
    paths taken from their merged view, and SOURCE_DATE_EPOCH."""
    h = hashlib.sha256()
    h.update(json.dumps([UNPACK_FORMAT, list(original.config.diff_ids), epoch]).encode())
    for n in sorted(names):
        h.update(n.encode("utf-8", "surrogateescape") + b"\0")
    return h.hexdigest()


class StagedLayers:
    """The new layers' unpacked form, ready before their blobs are: the verification run
    stacks these while the layers are written on a thread.

    A layer made of the same paths of the same original under the same epoch before has
    its unpacked dir in the layer cache already, found through a small index
    (`layers-unpacked/.minify-index/<unpacked_key>` -> diff_id): it is used as it is.
    Otherwise it is built by `unpack_from_view` in a temp dir of the cache (same
    filesystem as the lowers it hardlinks into; named for its owner, so a later run
    removes it if we die). `holds(written)` tells whether what was used is what was
    written; `keep(written)` moves the temp dirs into the cache under their diff_ids and
    indexes them. Temp dirs still here when the block ends are removed."""

    def __init__(
        self,
        store: Store,
        original: Image,
        root: str,
        layer_dirs: list[Path],
        groups: list[list[str]],
    ):
        from slimage.runtime.layerdirs import LayerDirs

        self.cache = LayerDirs(store)
        self.root = root
        self.layer_dirs = layer_dirs
        self.groups = groups
        self.epoch = source_date_epoch()
        self.keys = [unpacked_key(original, self.epoch, names) for names in groups]
        self.dirs: list[Path] = []
        self.reused: list[str | None] = []  # the indexed diff_id of a dir used as it was
        self._temps: list[Path] = []

    def __enter__(self) -> StagedLayers:
        try:
            for key, names in zip(self.keys, self.groups, strict=True):
                known = self._indexed(key)
                if (
                    known is not None
                    and known not in self.reused  # overlay refuses a lower twice
                    and self.cache.path(known).is_dir()
                ):
                    self.dirs.append(self.cache.path(known))
                    self.reused.append(known)
                else:
                    self.dirs.append(self._stage(names))
                    self.reused.append(None)
        except BaseException:
            self._cleanup()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._cleanup()

    def _cleanup(self) -> None:
        for d in self._temps:
            if d.exists():
                shutil.rmtree(d, ignore_errors=True)

    def _indexed(self, key: str) -> str | None:
        try:
            text = (self.cache.base / INDEX_DIR / key).read_text().strip()
        except OSError:
            return None
        return text if text.startswith("sha256:") and len(text) == 71 else None

    def _stage(self, names: list[str]) -> Path:
        from slimage.runtime import owner
        from slimage.store.store import disk_errors

        tmp = self.cache.base / f".tmp-{owner.token()}-{uuid.uuid4().hex[:12]}"
        tmp.mkdir()
        self._temps.append(tmp)
        with disk_errors("an unpacked layer", self.cache.base):
            unpack_from_view(tmp, self.root, self.layer_dirs, names, self.epoch)
        return tmp

    def holds(self, written: Written) -> bool:
        """Whether every dir used as it was is the unpacked form of the layer written."""
        if len(self.reused) != len(written.layers):
            return False
        pairs = zip(self.reused, written.layers, strict=True)
        return all(r is None or r == info.diff_id for r, info in pairs)

    def restage(self) -> None:
        """Build afresh every layer that was used as it was."""
        for i, names in enumerate(self.groups):
            if self.reused[i] is not None:
                self.dirs[i] = self._stage(names)
                self.reused[i] = None

    def keep(self, written: Written) -> None:
        """Hand the temp dirs to the layer cache under WRITTEN's diff_ids (a layer already
        unpacked there keeps its dir; ours is then removed at exit), and index them."""
        index = self.cache.base / INDEX_DIR
        for d, key, info in zip(self.dirs, self.keys, written.layers, strict=True):
            if d in self._temps:
                self.cache.adopt(info.diff_id, d)
            with contextlib.suppress(OSError):  # only a shortcut for the next run
                index.mkdir(exist_ok=True)
                tmp = index / f".{key}.{os.getpid()}"
                tmp.write_text(info.diff_id)
                os.replace(tmp, index / key)
