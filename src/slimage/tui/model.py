"""What `slimage dive` shows, computed without any UI: the filesystem after every layer.

One pass over the layers (the same one `analyze` makes, `analyze_image(on_layer=...)`)
leaves a *snapshot* after each layer: directory path -> {name: Node}. Snapshots share
every directory a layer did not touch with the one before (copy-on-write, decided by a
dict comparison that is an identity check for untouched nodes), so N layers cost one tree
plus what each layer changed, and nothing is ever re-applied when the user moves between
layers.

Everything the panes ask for is derived on demand and memoised: a directory's children
with their status (added, modified, removed, unchanged) at a layer, its subtree size,
the set of statuses under it (for the filters). A directory whose subtree a layer did not
touch answers from the layer below, so after the first look a layer switch only walks the
directories that layer changed. That is what keeps a switch well under 100 ms on a
100k-file image.

Sizes follow slimage's SIZE rule per name: a file's bytes, a symlink's target length,
0 for directories and devices; a directory shows the sum over its subtree, and in the
"this layer alone" view the bytes the layer wrote under it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from slimage.analysis.efficiency import (
    Analysis,
    EfficiencyReport,
    guess_base_layers,
    layer_history,
)
from slimage.analysis.target import ScanTarget
from slimage.fs.tree import DIR, MergedTree, Node
from slimage.oci.model import HistoryEntry

ADDED, REMOVED, MODIFIED, UNCHANGED = 1, 2, 4, 8
ALL = ADDED | REMOVED | MODIFIED | UNCHANGED
STATUS_NAMES = {ADDED: "added", REMOVED: "removed", MODIFIED: "modified", UNCHANGED: "unchanged"}
# Reclaimable paths the "wasted" view lists (largest first); the report counts them all.
WASTED_ROWS = 2000

Snapshot = dict[str, dict[str, Node]]


def join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def parent_of(path: str) -> str:
    return path.rpartition("/")[0]


def command_of(history: list[HistoryEntry], layer: int) -> str:
    """The instruction that made LAYER, on one line (the layer pane's Command column)."""
    h = history[layer] if layer < len(history) else HistoryEntry()
    return " ".join((h.created_by or h.comment or "<missing>").split())


@dataclass(frozen=True, slots=True)
class Entry:
    """One row of the file tree: a name in a directory, as of one layer."""

    name: str
    path: str  # relative to the root, no leading slash
    node: Node
    status: int

    @property
    def is_dir(self) -> bool:
        return self.node.kind == DIR


class Snapshots:
    """`on_layer` hook: keeps the merged directories after each layer, sharing the ones a
    layer left alone with the previous snapshot."""

    def __init__(self) -> None:
        self.snaps: list[Snapshot] = []
        self.touched: list[frozenset[str]] = []

    def __call__(self, index: int, tree: MergedTree) -> None:
        prev = self.snaps[-1] if self.snaps else {}
        snap: Snapshot = {}
        touched: list[str] = []
        for path, kids in tree.dirs.items():
            old = prev.get(path)
            # Untouched nodes are the very same tuples, so this is a cheap identity scan.
            if old is not None and old == kids:
                snap[path] = old
            else:
                snap[path] = dict(kids)
                touched.append(path)
        for path in prev.keys() - snap.keys():  # directories the layer deleted
            touched.append(parent_of(path))
        self.snaps.append(snap)
        self.touched.append(frozenset(touched))


class DiveLoad:
    """An image whose layers are being read: what the window can show before the pass
    ends (the layers' instructions, their count, which are the base's), and the pass
    itself. `start` must run before any thread does (it may fork, see `Analysis`);
    `finish` may then run on a worker thread while the window is already up."""

    def __init__(
        self, target: ScanTarget, *, verify: bool = True, base_layers: int | None = None
    ) -> None:
        self.analysis = Analysis(
            target,
            verify=verify,
            base_layers=base_layers,
            top=WASTED_ROWS,
            largest=0,
            detail=True,
        )
        image = self.analysis.image
        self.image_name = image.repo_tags[0] if image.repo_tags else image.source
        self.source = image.source or self.image_name
        self.history = layer_history(image)
        self.steps = image.config.layer_history()
        self.layers = len(image.layers)
        self.base_layers = (
            guess_base_layers(image)[0]
            if base_layers is None
            else max(0, min(base_layers, self.layers))
        )

    def command(self, layer: int) -> str:
        return command_of(self.history, layer)

    def start(self) -> None:
        self.analysis.start()

    def finish(
        self,
        *,
        on_layer: Callable[[int, int], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> DiveModel:
        """Read every layer; ON_LAYER(index, size_bytes) after each (the window fills its
        layer rows as they come). Raises `AnalysisCancelled` once CANCEL is set."""
        snapshots = Snapshots()

        def after_layer(index: int, tree: MergedTree) -> None:
            snapshots(index, tree)
            if on_layer is not None:
                on_layer(index, tree.layers[index].size_bytes)

        report = self.analysis.run(on_layer=after_layer, cancel=cancel)
        return DiveModel(
            report=report,
            snaps=snapshots.snaps,
            touched=snapshots.touched,
            history=self.history,
            steps=self.steps,
            source=self.source,
        )


@dataclass
class DiveModel:
    """The image, its analysis and the per-layer snapshots, with memoised queries."""

    report: EfficiencyReport
    snaps: list[Snapshot]
    touched: list[frozenset[str]]
    history: list[HistoryEntry]  # the entry that made each layer
    steps: list[tuple[HistoryEntry, int | None]]  # every history entry, with its layer
    source: str
    _changed: dict[int, set[str]] = field(default_factory=dict, repr=False)
    _sizes: dict[tuple[int, str, bool], int] = field(default_factory=dict, repr=False)
    _masks: dict[tuple[int, str], int] = field(default_factory=dict, repr=False)

    @classmethod
    def load(
        cls, target: ScanTarget, *, verify: bool = True, base_layers: int | None = None
    ) -> DiveModel:
        pending = DiveLoad(target, verify=verify, base_layers=base_layers)
        pending.start()
        return pending.finish()

    @property
    def layers(self) -> int:
        return len(self.snaps)

    # ---- what changed -----------------------------------------------------------------

    def changed(self, layer: int) -> set[str]:
        """Directories whose subtree LAYER changed: the touched ones and their ancestors."""
        got = self._changed.get(layer)
        if got is None:
            got = set()
            for path in self.touched[layer]:
                while path not in got:
                    got.add(path)
                    if not path:
                        break
                    path = parent_of(path)
            self._changed[layer] = got
        return got

    def _before(self, layer: int) -> Snapshot:
        return self.snaps[layer - 1] if layer > 0 else {}

    def status(self, layer: int, path: str, node: Node) -> int:
        """ADDED, MODIFIED or UNCHANGED for a path visible at LAYER."""
        before = self._before(layer).get(parent_of(path))
        name = path.rpartition("/")[2]
        old = before.get(name) if before is not None else None
        if old is None:
            return ADDED
        if node.kind == DIR:
            if old.kind != DIR:
                return MODIFIED
            return MODIFIED if (node.layer == layer or path in self.changed(layer)) else UNCHANGED
        return MODIFIED if node.layer == layer else UNCHANGED

    def children(self, layer: int, path: str) -> list[Entry]:
        """The entries of directory PATH at LAYER, removed ones included, sorted by name."""
        snap = self.snaps[layer]
        kids = snap.get(path)
        before = self._before(layer).get(path)
        out: list[Entry] = []
        if kids is not None:
            if path not in self.changed(layer) and before is kids:
                # Nothing under PATH changed: everything is as it was.
                for name in sorted(kids):
                    out.append(Entry(name, join(path, name), kids[name], UNCHANGED))
                return out
            for name in sorted(kids):
                p = join(path, name)
                node = kids[name]
                out.append(Entry(name, p, node, self.status(layer, p, node)))
        if before is not None and (kids is None or before is not kids):
            gone = [n for n in before if kids is None or n not in kids]
            if gone:
                out.extend(Entry(n, join(path, n), before[n], REMOVED) for n in gone)
                out.sort(key=lambda e: e.name)
        return out

    def removed_children(self, layer: int, path: str) -> list[Entry]:
        """Inside a directory LAYER deleted: what it held before, all removed."""
        kids = self._before(layer).get(path, {})
        return [Entry(n, join(path, n), kids[n], REMOVED) for n in sorted(kids)]

    # ---- sizes and filter masks ---------------------------------------------------------

    def size(self, layer: int, path: str, *, layer_only: bool = False) -> int:
        """Subtree bytes of directory PATH as of LAYER, or (LAYER_ONLY) the bytes LAYER
        itself wrote below it."""
        key = (layer, path, layer_only)
        got = self._sizes.get(key)
        if got is not None:
            return got
        if path not in self.changed(layer):
            if layer_only:
                got = 0
            elif layer > 0 and path in self.snaps[layer - 1]:
                got = self.size(layer - 1, path)
            else:
                got = self._sum(layer, path, False)
        else:
            got = self._sum(layer, path, layer_only)
        self._sizes[key] = got
        return got

    def _sum(self, layer: int, path: str, layer_only: bool) -> int:
        total = 0
        for name, node in self.snaps[layer].get(path, {}).items():
            if node.kind == DIR:
                total += self.size(layer, join(path, name), layer_only=layer_only)
            elif not layer_only or node.layer == layer:
                total += node.size
        return total

    def removed_size(self, layer: int, path: str) -> int:
        """Bytes of a directory LAYER deleted, as they were in the layer below."""
        return self.size(layer - 1, path) if layer > 0 else 0

    def mask(self, layer: int, path: str) -> int:
        """The statuses present in directory PATH's subtree at LAYER (for the filters: a
        directory stays visible while anything under it is)."""
        key = (layer, path)
        got = self._masks.get(key)
        if got is not None:
            return got
        if path not in self.changed(layer):
            got = UNCHANGED
        else:
            got = 0
            before = self._before(layer).get(path)
            for e in self.children(layer, path):
                if e.status == REMOVED:
                    got |= REMOVED
                elif e.is_dir:
                    got |= e.status | (ADDED if e.status == ADDED else self.mask(layer, e.path))
                else:
                    got |= e.status
            if before is None:
                got |= ADDED
        self._masks[key] = got
        return got

    # ---- search -------------------------------------------------------------------------

    def search(self, layer: int, text: str) -> set[str]:
        """Paths visible at LAYER whose path contains TEXT, with all their ancestors."""
        needle = text.strip().strip("/") if text.strip() != "/" else ""
        hits: set[str] = set()
        if not needle:
            return hits
        snap = self.snaps[layer]

        def scan(parent: str, names: Any) -> None:
            prefix = parent + "/" if parent else ""
            inside = needle in parent
            for name in names:
                if inside or needle in name or needle in prefix + name:
                    path = prefix + name
                    while path and path not in hits:
                        hits.add(path)
                        path = parent_of(path)

        for parent, kids in snap.items():
            scan(parent, kids)
        # What this layer removed is shown too (in red), so it can be found.
        for parent, kids in self._before(layer).items():
            now = snap.get(parent)
            if now is not kids:
                scan(parent, [n for n in kids if now is None or n not in now])
        return hits

    # ---- the layer pane -----------------------------------------------------------------

    def command(self, layer: int) -> str:
        return command_of(self.history, layer)

    def walk(self, layer: int, top: str = "") -> Iterator[tuple[str, Node]]:
        """Every path under TOP at LAYER, depth first (for tests and exports)."""
        kids = self.snaps[layer].get(top, {})
        for name in sorted(kids):
            node = kids[name]
            path = join(top, name)
            yield path, node
            if node.kind == DIR:
                yield from self.walk(layer, path)
