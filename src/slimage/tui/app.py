"""The `slimage dive` application: two panes and dive's keys, over a loaded `DiveModel`.

Keys follow dive where dive has one: Tab switches panes, Space opens/closes a directory,
Ctrl-A/R/M/U show or hide added/removed/modified/unchanged entries, Ctrl-B the attributes,
Ctrl-L flips between the merged tree and the selected layer alone, `/` filters by path,
`q` quits. `w` shows the reclaimable ("wasted") paths. Ctrl-M is Enter on a terminal, as
it is for dive; while the filter box has the focus, Enter submits it instead.

The window opens before the layers are read when it is given a `DiveLoad`: the layer pane
lists every layer's instruction at once, each size appears as its layer is read, and the
totals and the file tree arrive when the pass ends. The pass runs on a worker thread, so
the keys work meanwhile; on a big image the user is looking at the layers in a fraction
of a second instead of waiting for the whole pass with nothing on the screen (dive's
behaviour). Leaving early cancels the pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
import threading
import time
from collections.abc import Callable
from typing import ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import ContentSwitcher, DataTable, Footer, Input, Static

from slimage.analysis.efficiency import AnalysisCancelled
from slimage.tui.filetree import FileTree
from slimage.tui.hint import Hint
from slimage.tui.model import (
    ADDED,
    MODIFIED,
    REMOVED,
    STATUS_NAMES,
    UNCHANGED,
    DiveLoad,
    DiveModel,
)
from slimage.tui.panes import (
    Details,
    LayerTable,
    WastedTable,
    layer_details,
    loading_text,
    pending_details,
    totals_text,
)

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

    def __init__(self, source: DiveModel | DiveLoad, *, started: float | None = None) -> None:
        """SOURCE is a loaded model, or a `DiveLoad` already started, which the app
        finishes on a worker thread while its window is up."""
        super().__init__()
        self.source = source
        self.dive: DiveModel | None = source if isinstance(source, DiveModel) else None
        self.at_layer = source.layers - 1
        self.hints: dict[int, Hint] | None = None
        self.started = started
        self.failure: BaseException | None = None  # why the pass failed, re-raised by run_dive
        self.stopped_by: int | None = None  # the signal that ended the app
        self._ui_loop: asyncio.AbstractEventLoop | None = None  # set when mounted
        self.cancel = threading.Event()
        self.frame_seconds: float | None = None  # start to the first frame
        self.first_screen_seconds: float | None = None  # start to the populated screen
        self.last_switch_seconds: float | None = None  # model + tree rebuild
        self.painted_at: float | None = None  # when the last switch reached the screen
        self.warm_seconds: float | None = None  # how long `_warm` took

    def compose(self) -> ComposeResult:
        with Horizontal():
            with Vertical(id="left"):
                yield Static(self._totals(0), id="totals")
                yield LayerTable(self.source, id="layers")
                yield Details(id="details")
            with Vertical(id="right"):
                yield Static(id="tree-title")
                with ContentSwitcher(initial="tree", id="switcher"):
                    yield FileTree(self.dive, self.at_layer, id="tree")
                    yield WastedTable(id="wasted")
                yield Input(placeholder="filter paths (Enter to apply, Esc to clear)", id="filter")
        yield Footer()

    def _totals(self, done: int) -> Text:
        if self.dive is not None:
            return totals_text(self.dive)
        assert isinstance(self.source, DiveLoad)
        return loading_text(self.source, done)

    # ---- lifecycle -------------------------------------------------------------------

    def on_mount(self) -> None:
        # SIGTERM (`kill`) ends the app through its own loop, which restores the terminal:
        # raised as an exception inside Textual's loop it could be swallowed. SIGHUP (the
        # terminal is gone) keeps the CLI's path, an exception that unwinds at once: a
        # graceful exit would wait for ever to write to the dead terminal.
        loop = self._ui_loop = asyncio.get_running_loop()
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):
            loop.add_signal_handler(signal.SIGTERM, self._stop_signal, signal.SIGTERM)
        table = self.query_one(LayerTable)
        table.focus()
        table.move_cursor(row=self.at_layer)
        self.show_layer(self.at_layer)
        self.call_after_refresh(self._frame_painted)

    def _frame_painted(self) -> None:
        if self.started is not None:
            self.frame_seconds = time.perf_counter() - self.started
        if self.dive is not None:
            self._first_paint()
        else:
            # Only now: a thread started earlier would compete with the first frame.
            self.run_worker(self._read_layers, thread=True, exclusive=False)

    def _read_layers(self) -> None:
        assert isinstance(self.source, DiveLoad)
        try:
            model = self.source.finish(on_layer=self._layer_read_in_thread, cancel=self.cancel)
        except AnalysisCancelled:
            return
        except BaseException as exc:  # shown after the terminal is restored (run_dive)
            self.failure = exc
            self._post(self.exit, None, 1)
            return
        self._post(self._loaded, model)

    def _layer_read_in_thread(self, index: int, size: int) -> None:
        self._post(self._layer_read, index, size)

    def _post(self, callback: Callable[..., object], *args: object) -> None:
        """From a worker thread: run CALLBACK(*ARGS) on the UI loop, without waiting.
        Textual's `call_from_thread` waits for the result, and a pass that ended while the
        app was exiting then waited for ever on a loop that was itself waiting for the
        pass's thread (a dive left running with no terminal)."""

        def run() -> None:
            if self.is_running:
                with self._context():
                    callback(*args)

        assert self._ui_loop is not None, "workers start after the app is mounted"
        with contextlib.suppress(RuntimeError):  # the loop is closed: the app is gone
            self._ui_loop.call_soon_threadsafe(run)

    def _layer_read(self, index: int, size: int) -> None:
        self.query_one(LayerTable).set_size(index, size)
        self.query_one("#totals", Static).update(self._totals(index + 1))

    def _loaded(self, model: DiveModel) -> None:
        # The snapshots are many small long-lived objects: keep the cyclic GC from
        # rescanning them while the UI runs (a full collection would walk every node).
        gc.freeze()
        self.dive = model
        self.query_one("#totals", Static).update(totals_text(model))
        self.query_one(FileTree).model = model
        self.show_layer(self.at_layer)
        self.call_after_refresh(self._first_paint)

    def on_unmount(self) -> None:
        self.cancel.set()

    def _stop_signal(self, sig: int) -> None:
        self.stopped_by = sig
        self.cancel.set()
        self.exit(return_code=128 + sig)

    def _warm(self) -> None:
        """While the user looks at the first screen, work out every layer's top-level
        sizes and filter masks, so that even the first visit of a layer that touched the
        whole tree (a `chown -R`) is a lookup. The model's memo tables only ever gain
        entries with the same value, so the UI thread may race this safely."""
        t0 = time.perf_counter()
        model = self.dive
        assert model is not None
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

        found = hints(self.source.steps)
        self._post(self._hints_ready, found)

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
        if tree.view.matches is not None and self.dive is not None:
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
        if self.dive is None:
            assert isinstance(self.source, DiveLoad)
            details = pending_details(self.source, self.at_layer)
        else:
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
        if not text.strip():
            tree.view.matches = None
        elif self.dive is None:  # searched once the layers are read (see `_loaded`)
            tree.view.matches = set()
        else:
            tree.view.matches = self.dive.search(self.at_layer, text)
        self._refresh_tree()

    def action_wasted(self) -> None:
        if self.dive is None:
            self.notify("Still reading the layers: the reclaimable paths come at the end.")
            return
        switcher = self.query_one(ContentSwitcher)
        if switcher.current == "wasted":
            switcher.current = "tree"
            self.query_one(FileTree).focus()
            self._update_title()
            return
        table = self.query_one(WastedTable)
        table.fill(self.dive)
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
