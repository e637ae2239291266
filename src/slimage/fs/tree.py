"""The merged filesystem of stacked layers, built by applying changesets in order.

Each layer is a changeset tar. It is applied the way the OCI image spec (layer.md) says and
the way overlayfs shows it to a container:

- an entry adds or replaces the path; a directory over a directory only changes metadata
  and keeps the children; a directory over a file, or a file over a directory, replaces
  the whole thing (with the subtree);
- `.wh.NAME` deletes NAME *of the lower layers*, `D/.wh..wh..opq` deletes everything the
  lower layers had under D. Whiteouts never hide entries of their own layer, whatever the
  order of entries in the tar, so every node remembers the layer that wrote it;
- a hardlink is one more name for the target's inode: its bytes are visible (and counted)
  once, and stay visible until the last name goes;
- parent directories a tar omits are created implicitly, as the extractors do.

While applying, the tree counts per layer what it added, modified and removed, and calls
`on_waste` whenever bytes some layer stored stop being visible: that is the raw material of
`analyze`. Memory is one small tuple per visible path; nothing of file data is kept, except
an optional content digest (for `diff`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from slimage.errors import InvalidImageError, UnsafeArchiveError
from slimage.layers.tarscan import DataSink, TarEntry
from slimage.layers.whiteout import OPAQUE, PREFIX, whiteout_victim

FILE, DIR, SYMLINK = "file", "dir", "symlink"


class Node(NamedTuple):
    """One visible path. `size` is what the path costs under Docker's SIZE rule: file
    bytes, or the UTF-8 length of a symlink target; 0 for everything else. `inode` is 0
    unless the file has hardlinks, then it names the group of names sharing the data."""

    kind: str  # file, dir, symlink, chardev, blockdev, fifo (a hardlink becomes a file)
    size: int
    layer: int  # index of the layer that last wrote this path
    inode: int = 0
    mode: int = 0
    uid: int = 0
    gid: int = 0
    link: str = ""  # symlink target
    digest: str | None = None  # sha256 of the content, when the tree was built to diff


@dataclass
class LayerChanges:
    """What one layer did to the merged filesystem. Counts are of non-directory paths
    ("files": regular files, symlinks, hardlinks, devices); bytes follow the SIZE rule.

    - added: paths the layers below did not have;
    - modified: paths the layers below had and this layer wrote again (also when the
      layer first deleted them with a whiteout or an opaque directory);
    - removed: paths of the layers below that this layer deleted and did not write again
      (with their bytes), including files replaced by a directory;
    - wasted_bytes: bytes this layer stored that a later layer made invisible;
    - hidden_bytes: bytes (of this or lower layers) that this layer made invisible.
    """

    added: int = 0
    added_bytes: int = 0
    modified: int = 0
    modified_bytes: int = 0
    removed: int = 0
    removed_bytes: int = 0
    wasted_bytes: int = 0
    hidden_bytes: int = 0
    entries: int = 0
    size_bytes: int = 0  # the layer's SIZE: file bytes + symlink target lengths


# on_waste(path, nbytes, layer_that_stored_them, layer_that_hid_them)
WasteHook = Callable[[str, int, int, int], None]


def _join(parent: str, base: str) -> str:
    return f"{parent}/{base}" if parent else base


@dataclass
class _Links:
    """Hardlink groups: inode id -> [names still visible, bytes, layer that stored them]."""

    groups: dict[int, list[int]] = field(default_factory=dict)
    next_id: int = 1


class MergedTree:
    """The merged view of layers applied so far. Use `begin_layer()`, `apply(entry)` for
    each tar entry (it is a valid TarScanner callback), then `end_layer()`."""

    def __init__(
        self,
        *,
        detail: bool = False,
        hash_content: bool = False,
        on_waste: WasteHook | None = None,
    ) -> None:
        # detail keeps mode/owner/symlink target (for diff); analysis does not need them.
        self.detail = detail or hash_content
        self.hash_content = hash_content
        self.on_waste = on_waste
        self.root = Node(DIR, 0, -1, 0, 0o755)
        self.dirs: dict[str, dict[str, Node]] = {"": {}}
        self.layers: list[LayerChanges] = []
        self._links = _Links()
        self._layer = -1
        self._changes = LayerChanges()
        # Paths this layer's whiteouts removed, with their bytes, so that a path the same
        # layer writes again counts as modified, not removed + added.
        self._removed_here: dict[str, int] = {}
        self._pending: tuple[dict[str, Node], str, Node, hashlib._Hash] | None = None
        self._name = "layer"

    # ---- applying layers -------------------------------------------------------------

    def begin_layer(self, name: str = "") -> int:
        self._finish_pending()
        self._layer = len(self.layers)
        self._changes = LayerChanges()
        self.layers.append(self._changes)
        self._removed_here = {}
        self._name = name or f"layer {self._layer}"
        return self._layer

    def end_layer(self) -> LayerChanges:
        self._finish_pending()
        self._removed_here = {}
        return self._changes

    def apply(self, entry: TarEntry) -> DataSink | None:
        """Apply one changeset entry. Returns a data sink when file content is hashed."""
        if self._pending is not None:
            self._finish_pending()
        ch = self._changes
        ch.entries += 1
        name = entry.name
        if not name:
            if entry.kind == DIR:
                self.root = self._node(entry, DIR, 0, 0)
            return None
        if (
            name.startswith("..")
            and (name == ".." or name.startswith("../"))
            or ("/../" in name or name.endswith("/.."))
        ):
            raise UnsafeArchiveError(f"{self._name}: path {entry.raw_name!r} escapes the root")
        parent, _, base = name.rpartition("/")
        children = self.dirs.get(parent)
        if children is None:
            children = self._ensure_dir(parent)
        if base.startswith(PREFIX):
            self._whiteout(parent, children, base, name)
            return None
        kind = entry.kind
        old = children.get(base)
        if kind == DIR:
            if old is not None and old.kind == DIR:
                # Metadata-only: the children stay (overlay merges directories).
                children[base] = self._node(entry, DIR, 0, 0)
                return None
            if old is not None:
                self._drop(_join(parent, base), old)
            else:
                self._removed_here.pop(_join(parent, base), None)
            children[base] = self._node(entry, DIR, 0, 0)
            self.dirs[_join(parent, base)] = {}
            return None

        inode = 0
        if kind == FILE:
            size = stored = entry.size
            ch.size_bytes += stored
        elif kind == SYMLINK:
            size = stored = len(entry.linkname.encode("utf-8", "surrogateescape"))
            ch.size_bytes += stored
        elif kind == "hardlink":
            stored = 0
            target = self._hardlink_target(entry)
            kind = target.kind  # a file, rarely a symlink or a device
            if target.inode == 0:
                inode = self._links.next_id
                self._links.next_id += 1
                self._links.groups[inode] = [1, target.size, target.layer]
                self._retarget(entry.linkname, target._replace(inode=inode))
            else:
                inode = target.inode
            self._links.groups[inode][0] += 1
            # One inode, so the same metadata, content digest and symlink target.
            self._put(
                children, parent, base, old, target._replace(layer=self._layer, inode=inode), 0
            )
            return None
        else:
            size = stored = 0
        if self.detail:
            node = self._node(entry, kind, size, inode)
        else:
            node = Node(kind, size, self._layer, inode)
        self._put(children, parent, base, old, node, stored)
        if self.hash_content and entry.kind == FILE:
            h = hashlib.sha256()
            self._pending = (children, base, node, h)
            return h.update
        return None

    def _node(self, entry: TarEntry, kind: str, size: int, inode: int) -> Node:
        if self.detail:
            return Node(
                kind,
                size,
                self._layer,
                inode,
                entry.mode,
                entry.uid,
                entry.gid,
                entry.linkname if kind == SYMLINK else "",
            )
        return Node(kind, size, self._layer, inode)

    def _put(
        self,
        children: dict[str, Node],
        parent: str,
        base: str,
        old: Node | None,
        node: Node,
        stored: int,
    ) -> None:
        ch = self._changes
        if old is None:
            gone = self._removed_here.pop(_join(parent, base), None) if self._removed_here else None
            if gone is None:
                ch.added += 1
                ch.added_bytes += stored
            else:
                # Deleted by this layer's whiteout, then written again: a modification.
                ch.removed -= 1
                ch.removed_bytes -= gone
                ch.modified += 1
                ch.modified_bytes += stored
        elif old.kind == DIR:
            self._drop(_join(parent, base), old)
            ch.added += 1
            ch.added_bytes += stored
        elif old.layer == self._layer:
            # The same path twice in one layer: the first copy's bytes are stored, unseen.
            self._release(_join(parent, base), old)
            ch.added_bytes += stored
        else:
            self._release(_join(parent, base), old)
            ch.modified += 1
            ch.modified_bytes += stored
        children[base] = node

    def _finish_pending(self) -> None:
        if self._pending is None:
            return
        children, base, node, h = self._pending
        self._pending = None
        if children.get(base) is node:
            children[base] = node._replace(digest=h.hexdigest())

    def _hardlink_target(self, entry: TarEntry) -> Node:
        target = entry.linkname
        while target.startswith("./"):
            target = target[2:]
        target = target.strip("/")
        if not target or target == ".." or target.startswith("../") or "/../" in target:
            raise UnsafeArchiveError(
                f"{self._name}: hardlink {entry.name!r} -> {entry.linkname!r} escapes the root"
            )
        tparent, _, tbase = target.rpartition("/")
        node = self.dirs.get(tparent, {}).get(tbase)
        if node is None or node.kind == DIR:
            raise InvalidImageError(
                f"{self._name}: hardlink {entry.name!r} points to {entry.linkname!r}, "
                "which is not a file of this image"
            )
        return node

    def _retarget(self, linkname: str, node: Node) -> None:
        target = linkname
        while target.startswith("./"):
            target = target[2:]
        tparent, _, tbase = target.strip("/").rpartition("/")
        self.dirs[tparent][tbase] = node

    def _ensure_dir(self, path: str) -> dict[str, Node]:
        """Create missing parents (a tar may omit them); a file in the way is replaced."""
        children = self.dirs.get(path)
        if children is not None:
            return children
        parent, _, base = path.rpartition("/")
        pchildren = self._ensure_dir(parent)
        old = pchildren.get(base)
        if old is not None and old.kind != DIR:
            self._drop(path, old)
        elif old is None:
            self._removed_here.pop(path, None)
        pchildren[base] = Node(DIR, 0, self._layer, 0, 0o755)
        children = self.dirs[path] = {}
        return children

    def _whiteout(self, parent: str, children: dict[str, Node], base: str, entry: str) -> None:
        if base == OPAQUE:
            for name, node in list(children.items()):
                self._prune(_join(parent, name), node, children, name)
            return
        # The one whiteout rule (refuses `.wh..` and friends); None for AUFS metadata
        # (.wh..wh.plnk, .wh..wh.aufs), which is not a deletion.
        gone = whiteout_victim(entry, where=self._name)
        if gone is None:
            return
        name = gone
        victim = children.get(name)
        if victim is not None:
            self._prune(_join(parent, name), victim, children, name)

    def _prune(self, path: str, node: Node, children: dict[str, Node], name: str) -> None:
        """Delete what the lower layers had at PATH, keeping what this layer wrote."""
        if node.kind == DIR:
            sub = self.dirs.get(path, {})
            for cname, cnode in list(sub.items()):
                self._prune(_join(path, cname), cnode, sub, cname)
            if node.layer < self._layer and not sub:
                del children[name]
                self.dirs.pop(path, None)
            return
        if node.layer < self._layer:
            del children[name]
            self._drop(path, node)

    def _drop(self, path: str, node: Node) -> None:
        """PATH (and its subtree) leaves the merged view because of the current layer."""
        ch = self._changes
        if node.kind == DIR:
            sub = self.dirs.pop(path, {})
            for cname, cnode in sub.items():
                self._drop(_join(path, cname), cnode)
            return
        nbytes = self._release(path, node)
        if node.layer < self._layer:
            ch.removed += 1
            ch.removed_bytes += nbytes
            self._removed_here[path] = nbytes

    def _release(self, path: str, node: Node) -> int:
        """One name of NODE's data goes away; report the bytes if it was the last one."""
        if node.inode:
            group = self._links.groups[node.inode]
            group[0] -= 1
            if group[0] > 0:
                return 0
            del self._links.groups[node.inode]
            nbytes, stored_in = group[1], group[2]
        else:
            nbytes, stored_in = node.size, node.layer
        if nbytes:
            self.layers[stored_in].wasted_bytes += nbytes
            self._changes.hidden_bytes += nbytes
            if self.on_waste is not None:
                self.on_waste(path, nbytes, stored_in, self._layer)
        return nbytes

    # ---- reading the result ----------------------------------------------------------

    def get(self, path: str) -> Node | None:
        path = path.strip("/")
        if not path:
            return self.root
        parent, _, base = path.rpartition("/")
        children = self.dirs.get(parent)
        return None if children is None else children.get(base)

    def walk(self, top: str = "") -> Iterator[tuple[str, Node]]:
        """Every path below TOP (depth first, names sorted), with its node."""
        top = top.strip("/")
        children = self.dirs.get(top)
        if children is None:
            return
        for name in sorted(children):
            node = children[name]
            path = _join(top, name)
            yield path, node
            if node.kind == DIR:
                yield from self.walk(path)

    def iter_files(self) -> Iterator[tuple[str, Node]]:
        """Every non-directory path, unordered (fast)."""
        for parent, children in self.dirs.items():
            for name, node in children.items():
                if node.kind != DIR:
                    yield _join(parent, name), node

    def merged_bytes(self) -> int:
        """Visible bytes under the SIZE rule: regular files (each hardlinked inode once)
        plus symlink target lengths."""
        total = 0
        seen: set[int] = set()
        for children in self.dirs.values():
            for node in children.values():
                if node.inode:
                    if node.inode in seen:
                        continue
                    seen.add(node.inode)
                total += node.size
        return total

    def count(self) -> tuple[int, int]:
        """(directories, other paths) visible, not counting the root."""
        dirs = len(self.dirs) - 1
        files = sum(len(c) for c in self.dirs.values()) - dirs
        return dirs, files
