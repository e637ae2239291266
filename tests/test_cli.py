"""The CLI entry: every registered command is in the lazy-import table, and errors are
one line with a non-zero exit."""

from __future__ import annotations

import argparse
import subprocess
import sys

from slimage.cli import main as cli


def test_command_table_matches_what_modules_register() -> None:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(sub.choices) == set(cli.COMMANDS)
    for name, module in cli.COMMANDS.items():
        only = cli.build_parser([module])
        only_sub = next(a for a in only._actions if isinstance(a, argparse._SubParsersAction))
        assert name in only_sub.choices, f"{module} does not register {name}"


def test_only_the_needed_module_is_chosen() -> None:
    assert cli._wanted_modules(["--root", "/x", "images"]) == ("slimage.cli.images",)
    assert cli._wanted_modules(["--help"]) == cli.COMMAND_MODULES
    assert cli._wanted_modules(["nosuchcommand"]) == cli.COMMAND_MODULES


def test_user_error_is_one_line(tmp_path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "slimage.cli.main", "--root", str(tmp_path), "history", "nope:1"],
        capture_output=True,
        text=True,
    )
    assert res.returncode != 0
    assert res.stderr.count("\n") == 1 and "nope" in res.stderr
    assert "Traceback" not in res.stderr
