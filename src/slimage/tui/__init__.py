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

import gc
import time
from typing import Any

from slimage.errors import SlimageError


class TuiUnavailableError(SlimageError):
    """`dive` was asked for without a terminal, or without Textual installed."""


def run_dive(target: Any, *, verify: bool = True, base_layers: int | None = None) -> int:
    """Load TARGET (a ScanTarget), then run the browser until the user quits."""
    started = time.perf_counter()
    try:
        from slimage.tui.app import DiveApp
    except ImportError as exc:
        raise TuiUnavailableError(
            f"slimage dive needs Textual ({exc.name} is missing): pip install 'slimage[tui]'"
        ) from None
    from slimage.tui.model import DiveModel

    # (Importing Textual in a thread while the layers are read was tried: within noise,
    # 3.55 s against 3.56 s on the 2 GB archive, so it is not done.)
    model = DiveModel.load(target, verify=verify, base_layers=base_layers)
    # The snapshots are many small long-lived objects: keep the cyclic GC from rescanning
    # them while the UI runs (a full collection would otherwise walk every node).
    gc.freeze()
    DiveApp(model, started=started).run()
    return 0
