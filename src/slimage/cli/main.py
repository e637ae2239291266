"""Entry point of the `slimage` command.

The CLI stays thin: each module in `COMMAND_MODULES` registers its sub-commands on the
shared parser and calls one function of the Python API. Every `SlimageError` becomes a
one-line message on stderr and a non-zero exit; nothing else is caught, so a real bug still
shows its traceback. The CLI, not the library, resolves the store root (handed to commands
through `slimage.cli.session`) and turns SIGTERM/SIGHUP into the same unwinding as Ctrl-C.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from slimage import __version__
from slimage.errors import SlimageError

# Which module registers which commands. Only the module of the command being run is
# imported, so `slimage build` on a warm cache doesn't pay for the registry client, rich
# tables or ELF parsing; `slimage --help` imports them all. Each module exposes
# `register(subparsers)`; the handler it sets as `func` gets the parsed namespace and
# returns an exit code (or None for 0).
COMMANDS: dict[str, str] = {
    **dict.fromkeys(
        ["load", "import", "save", "images", "history", "inspect", "tag", "rmi", "gc", "fsck"],
        "slimage.cli.images",
    ),
    **dict.fromkeys(["analyze", "diff"], "slimage.cli.analyze"),
    **dict.fromkeys(["parse", "lint", "fix"], "slimage.cli.dockerfile"),
    "build": "slimage.cli.build",
    **dict.fromkeys(["run", "exec", "ps", "logs", "stop", "rm"], "slimage.cli.runtime"),
    **dict.fromkeys(["pull", "push", "copy", "login", "logout"], "slimage.cli.registry"),
    **dict.fromkeys(["base", "compat", "surface"], "slimage.cli.bases"),
    "minify": "slimage.cli.minify",
    "optimize": "slimage.cli.optimize",
    "dive": "slimage.cli.dive",
}
COMMAND_MODULES: tuple[str, ...] = tuple(dict.fromkeys(COMMANDS.values()))


def _wanted_modules(argv: Sequence[str]) -> tuple[str, ...]:
    """The module for the first positional word, or all of them (help, typos)."""
    skip = False
    for word in argv:
        if skip:
            skip = False
            continue
        if word == "--root":
            skip = True
            continue
        if word.startswith("-"):
            continue
        module = COMMANDS.get(word)
        return (module,) if module else COMMAND_MODULES
    return COMMAND_MODULES


def build_parser(modules: Sequence[str] = COMMAND_MODULES) -> argparse.ArgumentParser:
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
    for name in modules:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from slimage.cli.session import signals_unwind

    try:
        with signals_unwind():  # first: a signal at any later point unwinds cleanly
            return _main(list(sys.argv[1:] if argv is None else argv))
    except KeyboardInterrupt as exc:  # (before _main's own handler could take it)
        _say("slimage: interrupted")
        return int(getattr(exc, "exit_code", 130))


def _main(argv: list[str]) -> int:
    from slimage.cli.session import set_store_root

    parser = build_parser(_wanted_modules(argv))
    args = parser.parse_args(argv)
    set_store_root(args.root)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        rc = func(args)
    except SlimageError as err:
        _say(f"slimage: error: {err}")
        return err.exit_code
    except KeyboardInterrupt as exc:
        _say("slimage: interrupted")
        return int(getattr(exc, "exit_code", 130))
    except BrokenPipeError:
        return 0
    return int(rc or 0)


def _say(line: str) -> None:
    """A last line on stderr, which may be gone (SIGHUP: the terminal closed)."""
    try:
        print(line, file=sys.stderr)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
