"""What one `slimage` invocation decided before its command runs: the store root (from
`--root`, else $SLIMAGE_HOME, else the XDG default) and how signals end it.

The library takes its store root as an argument and installs no signal handler; these are
the CLI's, set once per invocation by `slimage.cli.main.main`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from slimage.store.paths import default_root

if TYPE_CHECKING:
    from slimage.store.store import Store

_root: Path | None = None


def set_store_root(root: str | os.PathLike[str] | None) -> Path:
    """Resolve `--root` (or the default) once; commands read it with `store_root()`."""
    global _root
    _root = Path(os.path.abspath(root)) if root else default_root()
    return _root


def store_root() -> Path:
    return _root if _root is not None else set_store_root(None)


def tell(line: str) -> None:
    """What the library reports through a callback (e.g. `Store(notify=...)`), on stderr."""
    with contextlib.suppress(OSError, ValueError):
        print(f"slimage: {line}", file=sys.stderr, flush=True)


def open_store() -> Store:
    """The store this invocation works on."""
    from slimage.store.store import Store

    return Store(store_root(), notify=tell)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where the program is, so that the same try/finally and
    `with` blocks that make Ctrl-C safe (unmount, kill the container, delete temp dirs)
    run for `kill` and `timeout` too."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = 128 + signum


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def signals_unwind() -> Iterator[None]:
    """SIGINT/SIGTERM/SIGHUP become KeyboardInterrupt (Terminated for the latter two).

    Only the first one is raised: later ones (a second Ctrl-C, `timeout` signalling the
    whole group) are ignored so that they cannot cut the cleanup short. SIGKILL remains
    for a cleanup that hangs, and the next command reaps what it left."""
    fired: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if fired:
            return
        fired.append(signum)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Terminated(signum)

    old = {}
    try:
        for sig in STOP_SIGNALS:
            old[sig] = signal.signal(sig, handler)
    except ValueError:  # not the main thread (main() called from a worker): leave them be
        pass
    try:
        yield
    finally:
        for sig, prev in old.items():
            signal.signal(sig, prev)
