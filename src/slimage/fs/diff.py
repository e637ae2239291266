"""Differences between two merged filesystems.

A path is *added* (only in B), *removed* (only in A) or *changed* (in both, with a
different type, content, symlink target, mode or owner). A directory that changes into a
file (or back) is a type change, and the subtree that goes with it is listed as removed or
added path by path. Content is compared by the sha256 the trees recorded while scanning
(`MergedTree(hash_content=True)`); without digests, by size only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from slimage.fs.tree import DIR, FILE, SYMLINK, MergedTree, Node


@dataclass
class PathChange:
    path: str
    change: str  # added, removed, changed
    kind: str  # node kind in B (or A when removed)
    size_before: int
    size_after: int
    what: list[str] = field(default_factory=list)  # for changed: type/content/link/mode/owner


def _join(parent: str, base: str) -> str:
    return f"{parent}/{base}" if parent else base


def _subtree(tree: MergedTree, path: str) -> Iterator[tuple[str, Node]]:
    yield from tree.walk(path)


def compare_nodes(a: Node, b: Node) -> list[str]:
    what: list[str] = []
    if a.kind != b.kind:
        return ["type"]
    if a.kind == FILE:
        if a.size != b.size or (
            a.digest is not None and b.digest is not None and a.digest != b.digest
        ):
            what.append("content")
    elif a.kind == SYMLINK:
        if a.link != b.link:
            what.append("link")
    if a.mode != b.mode:
        what.append("mode")
    if a.uid != b.uid or a.gid != b.gid:
        what.append("owner")
    return what


def diff_trees(a: MergedTree, b: MergedTree) -> list[PathChange]:
    """Every difference from A to B, sorted by path (paths without a leading slash)."""
    out: list[PathChange] = []

    def added(path: str, node: Node) -> None:
        out.append(PathChange(path, "added", node.kind, 0, node.size))
        if node.kind == DIR:
            for sub, sn in _subtree(b, path):
                out.append(PathChange(sub, "added", sn.kind, 0, sn.size))

    def removed(path: str, node: Node) -> None:
        out.append(PathChange(path, "removed", node.kind, node.size, 0))
        if node.kind == DIR:
            for sub, sn in _subtree(a, path):
                out.append(PathChange(sub, "removed", sn.kind, sn.size, 0))

    what = compare_nodes(a.root, b.root)
    if what:
        out.append(PathChange("", "changed", DIR, 0, 0, what))
    for parent, achildren in a.dirs.items():
        bchildren = b.dirs.get(parent)
        if bchildren is None:
            continue  # the parent was removed or became a file: reported at its level
        for name, an in achildren.items():
            path = _join(parent, name)
            bn = bchildren.get(name)
            if bn is None:
                removed(path, an)
                continue
            what = compare_nodes(an, bn)
            if not what:
                continue
            out.append(PathChange(path, "changed", bn.kind, an.size, bn.size, what))
            if what == ["type"]:
                if an.kind == DIR:
                    for sub, sn in _subtree(a, path):
                        out.append(PathChange(sub, "removed", sn.kind, sn.size, 0))
                if bn.kind == DIR:
                    for sub, sn in _subtree(b, path):
                        out.append(PathChange(sub, "added", sn.kind, 0, sn.size))
        for name, bn in bchildren.items():
            if name not in achildren:
                added(_join(parent, name), bn)
    out.sort(key=lambda c: c.path)
    return out
