"""`slimage minify IMAGE [-t TAG]`: the CLI over `slimage.minify.api.minify`."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def _on_off(text: str) -> bool:
    t = text.lower()
    if t in ("on", "true", "yes", "1"):
        return True
    if t in ("off", "false", "no", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected on or off, got {text!r}")


def cmd_minify(args: argparse.Namespace) -> int:
    from slimage.cli.runtime import process_flags
    from slimage.minify.api import MinifyOptions, minify, stderr_log
    from slimage.minify.report import render, write_report_dir
    from slimage.minify.session import RunSettings

    opts = MinifyOptions(
        image=args.image,
        tags=args.tag or [],
        http_probes=args.http_probe or [],
        http_probe_file=args.http_probe_file,
        ports=args.port or [],
        execs=args.exec or [],
        continue_after=args.continue_after,
        probe_timeout=args.probe_timeout,
        include_paths=args.include_path or [],
        include_bins=args.include_bin or [],
        include_shell=args.include_shell,
        excludes=args.exclude or [],
        keep_packages=args.keep_packages,
        verify=args.verify,
        ignore_body=args.ignore_body or [],
        seccomp_profile=args.seccomp_profile,
        http_crawl=args.http_crawl,
        crawl_max=args.crawl_max,
        run=RunSettings(**vars(process_flags(args)), runtime=args.runtime),
    )
    from slimage.cli.session import open_store

    # Ctrl-C, SIGTERM and SIGHUP unwind through minify's `finally`s (cli.main sets that
    # up), which remove the containers, mounts and the untagged image of an unfinished run.
    report = minify(
        opts, open_store(), log=(lambda s: None) if args.json or args.quiet else stderr_log
    )
    if args.report:
        write_report_dir(report, args.report)
    if args.json:
        from slimage.cli.output import print_json

        print_json(report.to_json())
    else:
        sys.stdout.write(render(report) + "\n")
    return 0


def register(sub: Any) -> None:
    from slimage.cli.runtime import add_process_flags

    p = sub.add_parser(
        "minify",
        help="shrink an image to the files its app uses (traced run + verification)",
        description=(
            "Run IMAGE with strace attached, probe it, keep only what it used (plus its ELF "
            "closure and whole application packages), write a new image and verify it "
            "answers the probes the same way."
        ),
    )
    p.add_argument("image", help="a store ref, archive, OCI layout or docker:// reference")
    p.add_argument("-t", "--tag", action="append", metavar="TAG", help="tag for the result")
    p.add_argument(
        "--http-probe",
        action="append",
        metavar="METHOD:PATH[:STATUS]",
        help="HTTP request on every exposed port (default: GET / once the port answers)",
    )
    p.add_argument("--http-probe-file", metavar="FILE", help="lines of `METHOD /path [STATUS]`")
    p.add_argument("--port", action="append", type=int, help="probe this port too (no EXPOSE)")
    p.add_argument(
        "--exec", action="append", metavar="CMD", help="command run inside the container"
    )
    p.add_argument(
        "--continue-after",
        default="probes",
        metavar="probes|timeout:N|signal",
        help="when to end the traced run (default: after the probes)",
    )
    p.add_argument("--probe-timeout", type=float, default=60.0, metavar="SECONDS")
    p.add_argument("--include-path", action="append", metavar="PATH", help="keep PATH (whole)")
    p.add_argument("--include-bin", action="append", metavar="BIN", help="keep BIN + ELF closure")
    p.add_argument("--include-shell", action="store_true", help="keep /bin/sh")
    p.add_argument("--exclude", action="append", metavar="PATTERN", help="drop matching paths")
    p.add_argument(
        "--keep-packages",
        type=_on_off,
        default=True,
        nargs="?",
        const=True,
        metavar="on|off",
        help="keep whole Python/Node packages of touched files (default on)",
    )
    p.add_argument("--verify", type=_on_off, default=True, metavar="on|off")
    p.add_argument("--ignore-body", action="append", metavar="PATH", help="compare status only")
    p.add_argument("--report", metavar="DIR", help="write report.json and the traced file list")
    p.add_argument(
        "--seccomp-profile",
        metavar="FILE",
        help="write the syscalls both runs made as a Docker seccomp profile (traces every "
        "syscall: slower)",
    )
    p.add_argument(
        "--http-crawl",
        action="store_true",
        help="follow same-origin links and assets in HTML answers (127.0.0.1 only)",
    )
    p.add_argument(
        "--crawl-max", type=int, default=50, metavar="N", help="pages --http-crawl fetches at most"
    )
    add_process_flags(p)  # -e, --entrypoint, -u, -w, -v, --mount, --tmpfs: as `slimage run`
    p.add_argument("--runtime", default=None, help="runc (default) or crun")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_minify)
