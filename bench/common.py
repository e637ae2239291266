"""What the benchmark scripts share."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def slimage_command() -> list[str]:
    """The installed `slimage` console script, run by this interpreter.

    Not `slimage` from PATH: under pyenv that is a bash shim which resolves the version
    and execs the real script, adding ~50 ms to every run that a user of a plain venv or
    pip install never pays."""
    script = Path(sys.executable).parent / "slimage"
    if script.is_file():
        return [sys.executable, str(script)]
    return [sys.executable, "-m", "slimage.cli.main"]


def user_env(**extra: str) -> dict[str, str]:
    """The environment a user's shell has: bytecode caching on (some sandboxes set
    PYTHONDONTWRITEBYTECODE, which makes every run recompile slimage's modules)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(extra)
    return env
