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
from slimage.dockerfile.frontend import parse
from slimage.dockerfile.parser import read_text


def register(subparsers: Any) -> None:
    _register_parse(subparsers)
    # --- lint / fix commands (owned by the lint helper) register below this line ---
    _register_lint(subparsers)
    _register_fix(subparsers)


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


# --- slimage lint / slimage fix (lint helper) -------------------------------------------


def _register_lint(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "lint",
        help="find what makes an image big, slow to rebuild or risky to run",
        description=(
            "Lint Dockerfiles for image size, layers, build cache and security. Exit status "
            "1 when a finding reaches the failure threshold or a file cannot be parsed."
        ),
    )
    p.add_argument(
        "files",
        nargs="*",
        metavar="FILE",
        help="Dockerfiles ('-' for stdin; default: ./Dockerfile)",
    )
    p.add_argument(
        "--format",
        "-f",
        choices=("tty", "json", "sarif"),
        default=None,
        help="output format (default: tty)",
    )
    add_json_flag(p)
    p.add_argument(
        "--failure-threshold",
        "-t",
        choices=("error", "warning", "info", "style", "none"),
        default=None,
        help="lowest severity that makes the exit status 1 (default: config, else warning)",
    )
    p.add_argument(
        "--ignore",
        action="append",
        default=[],
        metavar="RULE",
        help="rule to skip (SL id, hadolint DL id or name); repeatable",
    )
    p.add_argument(
        "--trusted-registry",
        action="append",
        default=[],
        metavar="REGISTRY",
        help="registry allowed for base images (enables SL208); repeatable",
    )
    p.add_argument("--config", metavar="PATH", help=".slimage.toml or pyproject.toml to use")
    p.add_argument("--no-config", action="store_true", help="ignore configuration files")
    p.add_argument(
        "--build-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="value for a global ARG used in FROM (as docker build); repeatable",
    )
    p.add_argument(
        "--no-shellcheck",
        action="store_true",
        help="do not run ShellCheck on RUN scripts (no SCxxxx findings)",
    )
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="re-run ShellCheck on every RUN script instead of reusing cached results "
        "(cache: $XDG_CACHE_HOME/slimage/shellcheck)",
    )
    p.add_argument(
        "--hadolint",
        action="store_true",
        help="only hadolint's rules (DLxxxx and SCxxxx), as with a .hadolint.yaml",
    )
    p.add_argument("--list-rules", action="store_true", help="print the rules and exit")
    p.set_defaults(func=run_lint)


def _lint_config(args: argparse.Namespace, first_file: str | None) -> Any:
    from pathlib import Path

    from slimage.dockerfile.config import LintConfig, find_config, load_config
    from slimage.dockerfile.rules import resolve_rule_id
    from slimage.errors import UsageError

    if args.config:
        config = load_config(Path(args.config))
    elif args.no_config:
        config = LintConfig()
    else:
        start = Path(first_file).parent if first_file and first_file != "-" else Path.cwd()
        found = find_config(start if start.is_dir() else Path.cwd())
        config = load_config(found) if found else LintConfig()
    ignore = set(config.ignore)
    for item in args.ignore:
        for part in item.split(","):
            ids = resolve_rule_id(part)
            if not ids:
                raise UsageError(f"--ignore: unknown rule {part!r} (see slimage lint --list-rules)")
            ignore.update(ids)
    config.ignore = frozenset(ignore)
    if args.no_shellcheck:
        config.shellcheck = False
    if args.hadolint:
        config.profile = "hadolint"
    if args.failure_threshold:
        config.failure_threshold = args.failure_threshold
    for item in args.build_arg:
        key, eq, value = item.partition("=")
        if not key or not eq:
            raise UsageError(f"--build-arg: expected KEY=VALUE, got {item!r}")
        config.build_args[key] = value
    if args.trusted_registry:
        config.trusted_registries = tuple(
            [*config.trusted_registries, *(r.lower().rstrip("/") for r in args.trusted_registry)]
        )
    return config


def run_lint(args: argparse.Namespace) -> int:
    from slimage.dockerfile import lint as lintmod

    fmt = "json" if args.json else (args.format or "tty")
    if args.list_rules:
        table = lintmod.rules_table()
        if fmt == "json":
            print_json(table)
        else:
            from slimage.cli.output import print_table

            print_table(
                ["RULE", "SEVERITY", "HADOLINT", "FIX", "SUMMARY"],  # DL ids: hadolint's own
                [
                    [
                        str(r["id"]),
                        str(r["severity"]),
                        str(r["hadolint"] or "-"),
                        "yes" if r["fixable"] else "-",
                        str(r["summary"]),
                    ]
                    for r in table
                ],
            )
            covered = sorted({str(r["hadolint"]) for r in table if r["hadolint"]})
            print(
                f"hadolint rules covered: {len(covered)} ({', '.join(covered)}); "
                "ShellCheck's SCxxxx on every RUN when `shellcheck` is installed"
            )
        return 0
    files = args.files or ["Dockerfile"]
    config = _lint_config(args, files[0])
    results = lintmod.lint_paths(files, config, cache=not args.no_cache)
    findings = [f for r in results for f in r.findings]
    errors = [r.error for r in results if r.error is not None]
    failed = bool(errors) or lintmod.fails(findings, config.failure_threshold)
    if fmt == "json":
        print_json(
            {
                "findings": [lintmod.finding_dict(f) for f in findings],
                "errors": [
                    {"file": e.file, "line": e.line, "column": e.col, "message": e.bare_message}
                    for e in errors
                ],
                "failure_threshold": config.failure_threshold,
                "failed": failed,
            }
        )
    elif fmt == "sarif":
        from slimage import __version__
        from slimage.dockerfile.rules import RULES
        from slimage.report.sarif import to_sarif

        print_json(
            to_sarif(
                findings,
                list(RULES.values()),
                errors=[(e.file, e.line, e.col, e.bare_message) for e in errors],
                tool_version=__version__,
            )
        )
    else:
        sys.stdout.write(lintmod.render_text([r for r in results if r.error is None]))
    for err in errors:
        print(str(err), file=sys.stderr)
    return 1 if failed else 0


def _register_fix(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "fix",
        help="rewrite a Dockerfile with safe, behaviour-preserving fixes",
        description=(
            "Apply safe mechanical fixes (merge RUNs, apt/pip cache cleanup, exec-form CMD, "
            "COPY --chown). Prints the fixed Dockerfile, a unified diff (--diff), or rewrites "
            "the file in place (--write). A file that cannot be parsed is never written. "
            "Note: --no-install-recommends (SL104) drops packages' Recommends; use "
            "--skip SL104 to keep them."
        ),
    )
    p.add_argument("file", metavar="FILE", help="Dockerfile to fix ('-' for stdin)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--diff", action="store_true", help="print a unified diff")
    mode.add_argument("--write", "-w", action="store_true", help="rewrite FILE in place")
    p.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="RULE",
        help="apply only these fixes (rule ids); repeatable",
    )
    p.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="RULE",
        help="do not apply these fixes (rule ids); repeatable",
    )
    p.add_argument(
        "--context", metavar="DIR", help="build context (default: the Dockerfile's directory)"
    )
    add_json_flag(p)
    p.set_defaults(func=run_fix)


def run_fix(args: argparse.Namespace) -> int:
    from slimage.dockerfile import fix as fixmod

    only = fixmod.parse_rule_list(args.only) if args.only else None
    skip = fixmod.parse_rule_list(args.skip)
    if args.file == "-":
        if args.write:
            from slimage.errors import UsageError

            raise UsageError("--write needs a file, not stdin")
        text = sys.stdin.buffer.read().decode("utf-8", "surrogateescape")
        result = fixmod.fix_text(
            text, path="<stdin>", context_dir=args.context, only=only, skip=skip
        )
    else:
        result = fixmod.fix_file(
            args.file, write=args.write, context_dir=args.context, only=only, skip=skip
        )
    if args.json:
        print_json(result.to_dict())
    elif args.diff:
        sys.stdout.write(result.diff())
    elif args.write:
        for item in result.applied:
            print(f"{result.path}:{item.line}: {item.rule} {item.description}", file=sys.stderr)
        word = "fixed" if result.changed else "unchanged"
        print(f"{result.path}: {word} ({len(result.applied)} fixes)", file=sys.stderr)
    else:
        sys.stdout.buffer.write(result.fixed.encode("utf-8", "surrogateescape"))
    return 0
