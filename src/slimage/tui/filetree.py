"""The right pane: the file tree as of the selected layer, built as it is opened.

Only the directories the user opened are ever turned into widget nodes; a directory's
children are asked of the model when it is first expanded. Moving to another layer
rebuilds the root and re-opens the directories that were open (those that still exist),
so the view keeps its place the way dive's does.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass, field

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from slimage.fs.tree import DIR, SYMLINK
from slimage.tui.model import ADDED, ALL, MODIFIED, REMOVED, UNCHANGED, DiveModel, Entry
from slimage.units import human_size

STYLES = {ADDED: "green", REMOVED: "red", MODIFIED: "yellow", UNCHANGED: ""}
MARKS = {ADDED: "+", REMOVED: "-", MODIFIED: "~", UNCHANGED: " "}
# A directory opened with more entries than this shows the first ones and a count, so one
# huge directory cannot stall the UI; `/` finds anything past the cut.
MAX_CHILDREN = 3000
_KINDS = {DIR: "d", SYMLINK: "l", "chardev": "c", "blockdev": "b", "fifo": "p"}


@dataclass
class ViewState:
    """What decides the tree's content besides the layer."""

    show: int = ALL  # status bits shown (Ctrl-A/R/M/U)
    attributes: bool = False  # Ctrl-B: mode and owner columns
    layer_only: bool = False  # Ctrl-L: what this layer wrote, not the merged result
    matches: set[str] | None = None  # `/` filter: visible paths (with ancestors)
    expanded: set[str] = field(default_factory=set)


def mode_string(kind: str, mode: int) -> str:
    return _KINDS.get(kind, "-") + stat.filemode(mode)[1:]


class FileTree(Tree[Entry]):
    """The merged filesystem at one layer; node data is the model's `Entry`."""

    DEFAULT_CSS = """
    FileTree { background: $surface; }
    """

    def __init__(self, model: DiveModel | None, at_layer: int, **kwargs: object) -> None:
        super().__init__("/", **kwargs)  # type: ignore[arg-type]
        # None while the layers are still read: the tree stays empty until `show` is given
        # the model.
        self.model = model
        self.at_layer = at_layer
        self.view = ViewState()
        self.show_root = False
        self.guide_depth = 3
        self.auto_expand = False

    # ---- content ---------------------------------------------------------------------

    @property
    def dive(self) -> DiveModel:
        assert self.model is not None, "the tree is only filled once the layers are read"
        return self.model

    def rebuild(self) -> None:
        """Show the tree for the current layer and state, keeping open what was open."""
        if self.model is None:
            return
        cursor = self.cursor_node.data.path if self.cursor_node and self.cursor_node.data else None
        self.clear()
        self.root.data = None
        self._fill(self.root, "", removed=False)
        self.root.expand()
        if self.view.matches is not None:
            self._open_matches()
        if cursor is not None:
            self.call_after_refresh(self._restore_cursor, cursor)

    def _restore_cursor(self, path: str) -> None:
        node = self._find(path)
        if node is not None:
            self.move_cursor(node)

    def _find(self, path: str) -> TreeNode[Entry] | None:
        node = self.root
        for depth in range(path.count("/") + 1):
            want = "/".join(path.split("/")[: depth + 1])
            nxt = next((c for c in node.children if c.data and c.data.path == want), None)
            if nxt is None:
                return node if node is not self.root else None
            node = nxt
        return node

    def _visible(self, e: Entry) -> bool:
        st = self.view
        if st.matches is not None and e.path not in st.matches:
            return False
        if e.is_dir and e.status != REMOVED:
            bits = self.dive.mask(self.at_layer, e.path) if e.status != ADDED else ADDED
            if e.status in (MODIFIED, UNCHANGED):
                bits |= e.status
            return bool(bits & st.show) and not (st.layer_only and bits == UNCHANGED)
        if st.layer_only and e.status == UNCHANGED:
            return False
        return bool(e.status & st.show)

    def _fill(self, parent: TreeNode[Entry], path: str, *, removed: bool) -> None:
        model = self.dive
        entries = (
            model.removed_children(self.at_layer, path)
            if removed
            else model.children(self.at_layer, path)
        )
        shown = 0
        for e in entries:
            if not self._visible(e):
                continue
            if shown == MAX_CHILDREN:
                parent.add_leaf(
                    Text(f"… {len(entries) - shown} more entries; use / to find one", "dim")
                )
                break
            shown += 1
            if e.is_dir:
                child = parent.add(self.label(e), data=e, allow_expand=True)
                if e.path in self.view.expanded:
                    self._fill(child, e.path, removed=e.status == REMOVED)
                    child.expand()
            else:
                parent.add_leaf(self.label(e), data=e)

    def _open_matches(self) -> None:
        """After a search, open the directories on the way to the first matches."""
        opened = 0
        stack = list(self.root.children)
        while stack and opened < 200:
            node = stack.pop(0)
            e = node.data
            if e is None or not e.is_dir:
                continue
            if not node.is_expanded:
                self.view.expanded.add(e.path)
                self._fill(node, e.path, removed=e.status == REMOVED)
                node.expand()
                opened += 1
            stack.extend(node.children)

    def entry_size(self, e: Entry) -> int:
        if not e.is_dir:
            return e.node.size
        if e.status == REMOVED:
            return self.dive.removed_size(self.at_layer, e.path)
        return self.dive.size(self.at_layer, e.path, layer_only=self.view.layer_only)

    def label(self, e: Entry) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        style = STYLES[e.status]
        if self.view.attributes:
            n = e.node
            text.append(f"{mode_string(n.kind, n.mode)} {f'{n.uid}:{n.gid}':>9} ", "dim")
        text.append(f"{human_size(self.entry_size(e)):>7} ", style or "bold")
        text.append(MARKS[e.status] + " ", style)
        name = e.name + ("/" if e.is_dir else "")
        text.append(name, style=(style + " bold").strip() if e.is_dir else style)
        if e.node.kind == SYMLINK and e.node.link:
            text.append(f" → {e.node.link}", "dim")
        return text

    # ---- events ----------------------------------------------------------------------

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[Entry]) -> None:
        node = event.node
        e = node.data
        if e is None:
            return
        self.view.expanded.add(e.path)
        if not node.children:
            self._fill(node, e.path, removed=e.status == REMOVED)
            if not node.children:
                node.allow_expand = False

    def on_tree_node_collapsed(self, event: Tree.NodeCollapsed[Entry]) -> None:
        e = event.node.data
        if e is not None:
            self.view.expanded.discard(e.path)
