"""`slimage optimize [-f Dockerfile] CONTEXT` (or IMAGE): the CLI over
`slimage.optimize.api.optimize`, plus its outputs (--write, --load, --json, --html)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def _build_arg(text: str) -> tuple[str, str]:
    k, sep, v = text.partition("=")
    if not k:
        raise argparse.ArgumentTypeError(f"--build-arg {text!r}: expected KEY=VALUE")
    if not sep:
        import os

        v = os.environ.get(k, "")
    return k, v


def cmd_optimize(args: argparse.Namespace) -> int:
    from slimage.cli.session import open_store
    from slimage.minify.api import stderr_log
    from slimage.optimize import advise
    from slimage.optimize.api import OptimizeOptions, load, optimize, write_dockerfile

    store = open_store()
    target = args.target
    context: str | None = target
    image: str | None = None
    if args.file is None and not Path(target).is_dir():
        # No directory of that name: an image (store ref) to optimize without a Dockerfile.
        context, image = None, target
    opts = OptimizeOptions(
        context=context,
        dockerfile=args.file,
        image=image,
        name=args.name,
        build_args=dict(args.build_arg or []),
        http_probes=args.http_probe or [],
        ports=args.port or [],
        execs=args.exec or [],
        probe_timeout=args.probe_timeout,
        prefer=args.prefer,
        skip=[s.strip() for v in args.skip or [] for s in v.split(",") if s.strip()],
        runtime=args.runtime,
        no_cache=args.no_cache,
    )
    quiet = args.json or args.quiet
    report = optimize(opts, store, log=(lambda s: None) if quiet else stderr_log)
    written = ""
    if args.write:
        written = write_dockerfile(report, args.write)
    if args.html:
        from slimage.optimize.report_html import write_optimize_html

        write_optimize_html(report, args.html)
    loaded = load(report, store) if args.load else ""
    if args.json:
        from slimage.cli.output import print_json

        print_json(report)
    else:
        sys.stdout.write(advise.render(report) + "\n")
        if written:
            sys.stdout.write(f"Wrote {args.write}: the {written} variant's Dockerfile\n")
        if args.html:
            sys.stdout.write(f"Wrote {args.html}\n")
        if loaded:
            sys.stdout.write(f"Loaded {loaded} into the Docker engine\n")
    return report.exit_code


def register(sub: Any) -> None:
    p = sub.add_parser(
        "optimize",
        help="build every variant of an app (multi-stage, distroless, musl, minified), "
        "probe and measure each, recommend one",
        description=(
            "Build CONTEXT's Dockerfile as written, fixed, multi-stage, on a distroless "
            "base, on musl and minified; run each under slimage's runtime with the same "
            "probes; measure size, layers, files, shells, package managers, setuid files, "
            "user and compat; recommend one. With an IMAGE instead of a context, only the "
            "base-swap and minify rows are made."
        ),
    )
    p.add_argument("target", metavar="CONTEXT|IMAGE")
    p.add_argument("-f", "--file", metavar="Dockerfile", help="default: CONTEXT/Dockerfile")
    p.add_argument("--name", help="NAME of the NAME:optimize-VARIANT tags (default: the context's)")
    p.add_argument("--build-arg", action="append", type=_build_arg, metavar="KEY=VALUE")
    p.add_argument(
        "--http-probe",
        action="append",
        metavar="METHOD:PATH[:STATUS]",
        help="HTTP request on every exposed port (default: GET / on each)",
    )
    p.add_argument("--port", action="append", type=int, help="probe this port too (no EXPOSE)")
    p.add_argument("--exec", action="append", metavar="CMD", help="command run in the container")
    p.add_argument("--probe-timeout", type=float, default=60.0, metavar="SECONDS")
    p.add_argument(
        "--prefer",
        default="safest",
        choices=["safest", "smallest", "debuggable"],
        help="what the recommendation optimises for (default safest: the smallest with no "
        "shell and no package manager that passes every probe)",
    )
    p.add_argument("--skip", action="append", metavar="VARIANT[,VARIANT]", help="do not make these")
    p.add_argument("--write", metavar="FILE", help="write the recommended variant's Dockerfile")
    p.add_argument("--load", action="store_true", help="load the recommended image into Docker")
    p.add_argument("--html", metavar="FILE", help="write one self-contained HTML report")
    p.add_argument("--runtime", default=None, help="runc (default) or crun")
    p.add_argument("--no-cache", action="store_true", help="build without the build cache")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_optimize)
