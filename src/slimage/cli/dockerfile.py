"""`slimage parse` (and, from the lint module, `slimage lint` / `slimage fix`).

Thin: read the file, call `slimage.dockerfile.parse`, render. Parse errors are
`DockerfileError`s, which `slimage.cli.main` prints as one `FILE:LINE:COL: message` line.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from slimage.cli.output import add_json_flag, print_json
from slimage.dockerfile.dump import dump
from slimage.dockerfile.parser import parse, read_text


def register(subparsers: Any) -> None:
    _register_parse(subparsers)
    # --- lint / fix commands (owned by the lint helper) register below this line ---
    # e.g. _register_lint(subparsers); _register_fix(subparsers)


def _register_parse(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "parse",
        help="parse a Dockerfile and print its instruction tree",
        description=(
            "Parse a Dockerfile exactly as BuildKit does and print one entry per instruction "
            "(BuildKit's tree format, or JSON with --json)."
        ),
    )
    p.add_argument("file", metavar="FILE", help="Dockerfile to parse ('-' for stdin)")
    p.add_argument(
        "--no-validate",
        dest="strict",
        action="store_false",
        help="only the parser layer: accept unknown instructions and flags",
    )
    add_json_flag(p)
    p.set_defaults(func=run_parse)


def run_parse(args: argparse.Namespace) -> int:
    if args.file == "-":
        text = sys.stdin.buffer.read().decode("utf-8", "surrogateescape")
        path = "<stdin>"
    else:
        text = read_text(args.file)
        path = args.file
    df = parse(text, path=path, strict=args.strict)
    for w in df.warnings:
        print(f"[WARNING]: {path}:{w.line}: {w.message}", file=sys.stderr)
    if args.json:
        print_json([inst.to_dict() for inst in df.instructions])
    else:
        sys.stdout.write(dump(df))
    return 0
