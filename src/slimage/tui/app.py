"""The `slimage dive` application: two panes and dive's keys, over a loaded `DiveModel`.

Keys follow dive where dive has one: Tab switches panes, Space opens/closes a directory,
Ctrl-A/R/M/U show or hide added/removed/modified/unchanged entries, Ctrl-B the attributes,
Ctrl-L flips between the merged tree and the selected layer alone, `/` filters by path,
`q` quits. `w` shows the reclaimable ("wasted") paths. Ctrl-M is Enter on a terminal, as
it is for dive; while the filter box has the focus, Enter submits it instead.
"""

from __future__ import annotations

import time
from typing import ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import ContentSwitcher, DataTable, Footer, Input, Static

from slimage.tui.filetree import FileTree
from slimage.tui.hint import Hint
from slimage.tui.model import ADDED, MODIFIED, REMOVED, STATUS_NAMES, UNCHANGED, DiveModel
from slimage.tui.panes import Details, LayerTable, WastedTable, layer_details, totals_text

_TOGGLES = {"added": ADDED, "removed": REMOVED, "modified": MODIFIED, "unchanged": UNCHANGED}


class DiveApp(App[None]):
    TITLE = "slimage dive"
    CSS = """
    #left { width: 40%; min-width: 40; }
    #right { width: 1fr; }
    #totals { height: auto; padding: 0 1; background: $boost; }
    #layers { height: auto; max-height: 50%; overflow-x: hidden; }
    #details { height: 1fr; padding: 0 1; overflow: hidden; }
    #tree-title { height: 1; padding: 0 1; background: $boost; }
    #filter { dock: bottom; display: none; }
    #filter.open { display: block; }
    .pane-title { text-style: bold; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("tab", "switch_pane", "Pane", priority=True),
        Binding("ctrl+a", "toggle('added')", "Added"),
        Binding("ctrl+r", "toggle('removed')", "Removed"),
        Binding("ctrl+m", "toggle('modified')", "Modified", priority=True),
        Binding("ctrl+u", "toggle('unchanged')", "Unchanged"),
        Binding("ctrl+b", "toggle_attributes", "Attrs"),
        Binding("ctrl+l", "toggle_layer_only", "Layer/merged"),
        Binding("slash", "open_filter", "Filter"),
        Binding("w", "wasted", "Wasted"),
        Binding("escape", "close_filter", "Clear filter", show=False),
    ]

    def __init__(self, model: DiveModel, *, started: float | None = None) -> None:
        super().__init__()
        self.dive = model
        self.at_layer = model.layers - 1
        self.hints: dict[int, Hint] | None = None
        self.started = started
        self.first_screen_seconds: float | None = None
        self.last_switch_seconds: float | None = None  # model + tree rebuild
        self.painted_at: float | None = None  # when the last switch reached the screen
        self.warm_seconds: float | None = None  # how long `_warm` took

    def compose(self) -> ComposeResult:
        with Horizontal():
            with Vertical(id="left"):
                yield Static(totals_text(self.dive), id="totals")
                yield LayerTable(self.dive, id="layers")
                yield Details(id="details")
            with Vertical(id="right"):
                yield Static(id="tree-title")
                with ContentSwitcher(initial="tree", id="switcher"):
                    yield FileTree(self.dive, id="tree")
                    yield WastedTable(self.dive, id="wasted")
                yield Input(placeholder="filter paths (Enter to apply, Esc to clear)", id="filter")
        yield Footer()

    # ---- lifecycle -------------------------------------------------------------------

    def on_mount(self) -> None:
        table = self.query_one(LayerTable)
        table.focus()
        table.move_cursor(row=self.at_layer)
        self.show_layer(self.at_layer)
        self.call_after_refresh(self._first_paint)

    def _warm(self) -> None:
        """While the user looks at the first screen, work out every layer's top-level
        sizes and filter masks, so that even the first visit of a layer that touched the
        whole tree (a `chown -R`) is a lookup. The model's memo tables only ever gain
        entries with the same value, so the UI thread may race this safely."""
        t0 = time.perf_counter()
        model = self.dive
        for layer in range(model.layers - 1, -1, -1):
            for entry in model.children(layer, ""):
                if entry.is_dir and entry.status != REMOVED:
                    model.size(layer, entry.path)
                    model.size(layer, entry.path, layer_only=True)
                    model.mask(layer, entry.path)
            time.sleep(0)  # let the UI thread in between layers
        self.warm_seconds = time.perf_counter() - t0

    def _first_paint(self) -> None:
        if self.started is not None:
            self.first_screen_seconds = time.perf_counter() - self.started
        # Only now: threads started earlier would compete with the first paint for the GIL.
        self.run_worker(self._load_hints, thread=True, exclusive=False)
        self.run_worker(self._warm, thread=True, exclusive=False)

    def _load_hints(self) -> None:
        from slimage.tui.hint import hints

        found = hints(self.dive.steps)
        self.call_from_thread(self._hints_ready, found)

    def _hints_ready(self, found: dict[int, Hint]) -> None:
        self.hints = found
        self._update_details()

    # ---- showing a layer -------------------------------------------------------------

    def show_layer(self, index: int) -> None:
        """Switch both panes to layer INDEX (the model answers from memoised snapshots)."""
        t0 = time.perf_counter()
        self.at_layer = index
        tree = self.query_one(FileTree)
        tree.at_layer = index
        if tree.view.matches is not None:
            tree.view.matches = self.dive.search(index, self.query_one("#filter", Input).value)
        tree.rebuild()
        self._update_title()
        self._update_details()
        self.last_switch_seconds = time.perf_counter() - t0
        self.call_after_refresh(self._switch_painted)

    def _switch_painted(self) -> None:
        """Called once the screen shows the new layer (for the latency benchmark)."""
        self.painted_at = time.perf_counter()

    def _update_details(self) -> None:
        hint = self.hints.get(self.at_layer) if self.hints is not None else None
        details = layer_details(self.dive, self.at_layer, hint, self.hints is not None)
        # Fixed-size panes: no layout pass needed, which keeps a switch to one repaint.
        self.query_one(Details).update(details, layout=False)

    def _update_title(self) -> None:
        tree = self.query_one(FileTree)
        st = tree.view
        text = Text()
        mode = "layer alone" if st.layer_only else "merged"
        text.append(f"Layer {self.at_layer} ({mode})", "bold")
        flt = self.query_one("#filter", Input).value.strip()
        if st.matches is not None and flt:
            text.append(f"  filter: {flt} ({len(st.matches)} paths)", "cyan")
        for bit, name in STATUS_NAMES.items():
            on = bool(st.show & bit)
            text.append(f"  {'☑' if on else '☐'} {name}", "" if on else "dim")
        if st.attributes:
            text.append("  attrs")
        self.query_one("#tree-title", Static).update(text, layout=False)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if isinstance(event.data_table, LayerTable) and event.cursor_row != self.at_layer:
            self.show_layer(event.cursor_row)

    # ---- actions ---------------------------------------------------------------------

    def action_switch_pane(self) -> None:
        if isinstance(self.focused, Input):
            self.query_one(FileTree).focus()
            return
        switcher = self.query_one(ContentSwitcher)
        right = self.query_one(f"#{switcher.current}")
        if self.focused is right:
            self.query_one(LayerTable).focus()
        else:
            right.focus()

    async def action_toggle(self, what: str) -> None:
        if isinstance(self.focused, Input):
            if what == "modified":  # Ctrl-M is Enter: let the filter box have it
                await self.focused.action_submit()
            return
        tree = self.query_one(FileTree)
        tree.view.show ^= _TOGGLES[what]
        self._refresh_tree()

    def action_toggle_attributes(self) -> None:
        tree = self.query_one(FileTree)
        tree.view.attributes = not tree.view.attributes
        self._refresh_tree()

    def action_toggle_layer_only(self) -> None:
        tree = self.query_one(FileTree)
        tree.view.layer_only = not tree.view.layer_only
        self._refresh_tree()

    def _refresh_tree(self) -> None:
        self.query_one(FileTree).rebuild()
        self._update_title()

    def action_open_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("open")
        box.focus()

    def action_close_filter(self) -> None:
        box = self.query_one("#filter", Input)
        if not box.has_class("open"):
            return
        box.value = ""
        box.remove_class("open")
        tree = self.query_one(FileTree)
        tree.view.matches = None
        self._refresh_tree()
        tree.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.apply_filter(event.value)
        self.query_one(FileTree).focus()

    def apply_filter(self, text: str) -> None:
        tree = self.query_one(FileTree)
        tree.view.matches = self.dive.search(self.at_layer, text) if text.strip() else None
        self._refresh_tree()

    def action_wasted(self) -> None:
        switcher = self.query_one(ContentSwitcher)
        if switcher.current == "wasted":
            switcher.current = "tree"
            self.query_one(FileTree).focus()
            self._update_title()
            return
        table = self.query_one(WastedTable)
        table.fill()
        switcher.current = "wasted"
        table.focus()
        r = self.dive.report
        shown = len(r.top_reclaimable)
        self.query_one("#tree-title", Static).update(
            Text(
                f"Reclaimable paths: {shown} largest, {r.reclaimable_bytes:,} bytes in all "
                "(w: back to the tree)",
                "bold",
            )
        )
