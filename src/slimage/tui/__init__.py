"""`slimage dive`: dive's interactive layer browser over slimage's own analysis.

Why Textual (Textualize): among the Python TUI libraries we could use it is the one that
is both well kept and a fit here, on evidence checked when this was written:
- it is built on rich, which slimage already depends on, so labels, sizes and colours are
  the same `Text` objects the `analyze` tables print, and no second styling system comes in;
- it is actively maintained (8.x released in 2026) and among PyPI's ~110 most downloaded
  packages; urwid (rank ~2000) and prompt_toolkit (a line-editor toolkit, no tree or table
  widget) would have meant writing the tree, table and focus handling ourselves;
- it ships a headless test pilot (`App.run_test`) that presses real keys through the real
  event loop, and SVG screenshots, so the tests drive the UI a user sees, not a mock;
- its Tree widget adds nodes on demand, which is what keeps a 100k-file image responsive.
Its cost is start-up: importing it takes ~0.25 s, paid only by `dive`, never by the other
commands (the CLI imports it lazily).

It is an optional extra (`pip install slimage[tui]`); `scripts/install-deps.sh` installs
it, and `dive` without it says how to get it.

Layout: `model` (snapshots after every layer, sizes, statuses, search: no UI), `hint`
(what `lint`/`fix` say about each layer's instruction), `filetree` and `panes` (widgets),
`app` (keys and wiring), and `run_dive` below, which the CLI calls.
"""

from __future__ import annotations

import importlib.util
import time
from typing import Any

from slimage.errors import SlimageError


class TuiUnavailableError(SlimageError):
    """`dive` was asked for without a terminal, or without Textual installed."""


def run_dive(target: Any, *, verify: bool = True, base_layers: int | None = None) -> int:
    """Open the browser on TARGET (a ScanTarget) at once and read its layers behind it;
    run until the user quits. A failure of the pass (a corrupt layer) ends the app and is
    raised here, once the terminal is restored."""
    started = time.perf_counter()
    if importlib.util.find_spec("textual") is None:
        raise TuiUnavailableError(
            "slimage dive needs Textual (textual is missing): pip install 'slimage[tui]'"
        )
    from slimage.tui.model import DiveLoad

    # Before Textual starts any thread: this may fork the process that parses big layers,
    # which then runs while Textual is imported and the window drawn.
    pending = DiveLoad(target, verify=verify, base_layers=base_layers)
    pending.start()
    from slimage.tui.app import DiveApp

    app = DiveApp(pending, started=started)
    try:
        app.run()
    finally:
        _stop_input_thread(app)
    if app.failure is not None:
        raise app.failure
    if app.stopped_by is not None:
        return 128 + app.stopped_by  # as the shell reports a process a signal ended
    return 0


def _stop_input_thread(app: Any) -> None:
    """Make sure Textual's terminal-reading thread ends. When the terminal closes while
    the app is shutting down (SIGHUP unwinds past Textual's own stop), that thread is
    left polling a hung-up terminal, which always reads as ready and empty: it spun at
    full CPU and, not being a daemon thread, kept the process from exiting. The event is
    the one Textual's Linux driver stops it with (not a public API, hence the guards)."""
    event = getattr(getattr(app, "_driver", None), "exit_event", None)
    if event is not None and hasattr(event, "set"):
        event.set()
