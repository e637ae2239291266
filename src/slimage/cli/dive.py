"""`slimage dive IMAGE` (also `slimage analyze -i IMAGE`): the interactive layer browser.

Thin: checks that there is a terminal, opens the image as `analyze` does and hands over to
`slimage.tui`. Piped, it refuses in one line and points at `analyze`, which is the tool for
scripts and CI.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from slimage.errors import UsageError


def register(sub: Any) -> None:
    p = sub.add_parser(
        "dive",
        help="browse an image's layers and files interactively (like dive)",
        description="Explore IMAGE (a store reference, archive, OCI layout or docker:// "
        "reference) layer by layer: the layers on the left with the image's size, "
        "reclaimable bytes and efficiency; on the right the filesystem as of the selected "
        "layer, added/modified/removed coloured. Keys as dive: Tab, Space, Ctrl-A/R/M/U, "
        "Ctrl-B, /, q; Ctrl-L this layer alone; w the reclaimable paths.",
    )
    p.add_argument("image", metavar="IMAGE|ARCHIVE|OCI-DIR")
    p.add_argument(
        "--no-verify", action="store_true", help="do not hash layers read in place (faster)"
    )
    p.add_argument(
        "--base", type=int, metavar="N", help="the bottom N layers come from the base image"
    )
    p.set_defaults(func=cmd_dive)


def require_terminal() -> None:
    if not (sys.stdout.isatty() and sys.stdin.isatty()):
        which = "output" if not sys.stdout.isatty() else "input"
        raise UsageError(
            f"slimage dive is interactive and its {which} is not a terminal; "
            "use `slimage analyze IMAGE` (or --json) for a report"
        )


def cmd_dive(args: argparse.Namespace) -> int:
    require_terminal()
    if args.base is not None and args.base < 0:
        raise UsageError("--base must be >= 0")
    from slimage.cli.analyze import _target
    from slimage.tui import run_dive

    return run_dive(_target(args.image), verify=not args.no_verify, base_layers=args.base)
