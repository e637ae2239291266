"""Entry point of the `slimage` command.

The CLI stays thin: each module in `COMMAND_MODULES` registers its sub-commands on the
shared parser and calls one function of the Python API. Every `SlimageError` becomes a
one-line message on stderr and a non-zero exit; nothing else is caught, so a real bug still
shows its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from slimage import __version__
from slimage.errors import SlimageError

# One module per command group. Each exposes `register(subparsers)`; the handler it sets
# as `func` receives the parsed namespace and returns an exit code (or None for 0).
COMMAND_MODULES: tuple[str, ...] = (
    "slimage.cli.images",
    "slimage.cli.analyze",
    "slimage.cli.dockerfile",
    "slimage.cli.build",
    "slimage.cli.runtime",
    "slimage.cli.registry",
    "slimage.cli.bases",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="slimage",
        description="Build, move, inspect and slim container images, without a daemon.",
    )
    parser.add_argument("--version", action="version", version=f"slimage {__version__}")
    parser.add_argument(
        "--root",
        default=None,
        help="store location (default: $SLIMAGE_HOME or ~/.local/share/slimage)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            # A command group that has not been written yet is simply absent; a missing
            # dependency inside an existing module is a real error and must surface.
            if exc.name == name:
                continue
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.root:
        os.environ["SLIMAGE_HOME"] = os.path.abspath(args.root)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        rc = func(args)
    except SlimageError as err:
        print(f"slimage: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("slimage: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
