"""Where the store lives. Stdlib only: the fast no-op build check needs it before any
heavier module is imported."""

from __future__ import annotations

import os
from pathlib import Path


def default_root() -> Path:
    """$SLIMAGE_HOME, else $XDG_DATA_HOME/slimage, else ~/.local/share/slimage."""
    env = os.environ.get("SLIMAGE_HOME")
    if env:
        return Path(env)
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return Path(base) / "slimage"
