"""`slimage diff A B`: what changed between the final filesystems of two images.

Both images are merged layer by layer with content hashing on (the only command that
reads file data: `analyze` does not hash contents), then the trees are compared path by
path (`slimage.fs.diff`). Layers the two images share are scanned once.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

from slimage.analysis.target import ScanTarget, open_target
from slimage.fs.diff import PathChange, diff_trees
from slimage.fs.scan import scan_layer
from slimage.fs.tree import DIR, MergedTree


@dataclass
class ImageSide:
    image: str
    id: str
    size_bytes: int  # sum of the layer sizes (Docker's SIZE)
    merged_bytes: int  # visible bytes of the final filesystem
    files: int
    layers: int


@dataclass
class DiffReport:
    a: ImageSide
    b: ImageSide
    added: int
    removed: int
    changed: int
    added_bytes: int  # bytes of files only in B
    removed_bytes: int  # bytes of files only in A
    size_delta: int  # b.size_bytes - a.size_bytes
    merged_delta: int  # b.merged_bytes - a.merged_bytes
    changes: list[PathChange] = field(default_factory=list)
    seconds: float = 0.0


def build_tree(
    target: ScanTarget,
    *,
    verify: bool = True,
    resume: tuple[MergedTree, int, int] | None = None,
    snapshot_at: int = 0,
) -> tuple[MergedTree, int, tuple[MergedTree, int, int] | None]:
    """The merged tree of TARGET with content digests and the image's SIZE. RESUME is a
    (tree, size, layers) state to continue from (shared bottom layers); a copy of the
    state after SNAPSHOT_AT layers is returned for the other image."""
    image = target.image
    image.check_consistent()
    tree, total, first = resume if resume is not None else (MergedTree(hash_content=True), 0, 0)
    snapshot = None
    if snapshot_at and snapshot_at == first:
        snapshot = (copy.deepcopy(tree), total, first)
    for i in range(first, len(image.layers)):
        layer = image.layers[i]
        tree.begin_layer(f"{image.source} layer {i}")
        where = target.slices[i] if i < len(target.slices) else None
        scan_layer(layer, tree.apply, where=where, verify=verify)
        total += tree.end_layer().size_bytes
        if snapshot_at and i + 1 == snapshot_at:
            snapshot = (copy.deepcopy(tree), total, i + 1)
    return tree, total, snapshot


def _side(target: ScanTarget, tree: MergedTree, size: int) -> ImageSide:
    image = target.image
    return ImageSide(
        image=image.repo_tags[0] if image.repo_tags else image.source,
        id=image.id,
        size_bytes=size,
        merged_bytes=tree.merged_bytes(),
        files=tree.count()[1],
        layers=len(image.layers),
    )


def diff_images(a: ScanTarget | str, b: ScanTarget | str, *, verify: bool = True) -> DiffReport:
    start = time.perf_counter()
    ta = open_target(a) if isinstance(a, str) else a
    tb = open_target(b) if isinstance(b, str) else b
    # Share the common bottom layers: only worth a copy when there is something in common.
    ida = [lay.diff_id for lay in ta.image.layers]
    idb = [lay.diff_id for lay in tb.image.layers]
    common = 0
    while common < min(len(ida), len(idb)) and ida[common] == idb[common]:
        common += 1
    if ta.image.id == tb.image.id:
        common = len(ida)
    tree_a, size_a, snap = build_tree(ta, verify=verify, snapshot_at=common)
    tree_b, size_b, _ = build_tree(tb, verify=verify, resume=snap)
    changes = diff_trees(tree_a, tree_b)
    added = [c for c in changes if c.change == "added" and c.kind != DIR]
    removed = [c for c in changes if c.change == "removed" and c.kind != DIR]
    changed = [c for c in changes if c.change == "changed"]
    sa, sb = _side(ta, tree_a, size_a), _side(tb, tree_b, size_b)
    for c in changes:
        c.path = "/" + c.path
    return DiffReport(
        a=sa,
        b=sb,
        added=len(added),
        removed=len(removed),
        changed=len(changed),
        added_bytes=sum(c.size_after for c in added),
        removed_bytes=sum(c.size_before for c in removed),
        size_delta=sb.size_bytes - sa.size_bytes,
        merged_delta=sb.merged_bytes - sa.merged_bytes,
        changes=changes,
        seconds=round(time.perf_counter() - start, 3),
    )
