"""`base build`, `base lock`, `base ls`, `compat` and `surface`.

Thin: flags become a `BaseSpec` (or a lockfile path) and one call into `slimage.bases`;
`compat` and `surface` open images with `open_source` and render the analysis models.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from slimage.cli.output import add_json_flag, print_json, print_table
from slimage.errors import UsageError
from slimage.units import human_size


def _csv(values: list[str] | None) -> list[str]:
    out: list[str] = []
    for v in values or []:
        out += [x.strip() for x in v.split(",") if x.strip()]
    return out


def _store() -> Any:
    from slimage.cli.session import store_root
    from slimage.store.store import Store

    return Store(store_root())


def _add_repo_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "preset",
        nargs="?",
        default=None,
        help="static, base, cc, nodejs, python3, musl, or debian (with --full)",
    )
    p.add_argument(
        "--packages",
        action="append",
        metavar="PKG[,PKG]",
        help="extra packages (or the only ones, without a preset)",
    )
    p.add_argument(
        "--exclude",
        action="append",
        metavar="PKG[,PKG]",
        help="never pull these in as dependencies",
    )
    p.add_argument(
        "--arch",
        default="amd64",
        choices=["amd64", "arm64"],
        help="target architecture (default amd64)",
    )
    p.add_argument("--suite", default="bookworm", help="Debian suite (default bookworm)")
    p.add_argument(
        "--mirror", default=None, help="Debian mirror URL (default http://deb.debian.org/debian)"
    )
    p.add_argument("--security-mirror", default=None, help="security archive URL, or 'none'")
    p.add_argument(
        "--snapshot",
        default=None,
        metavar="YYYYMMDDTHHMMSSZ",
        help="use snapshot.debian.org at this time",
    )
    p.add_argument(
        "--keyring", default=None, help="keyring for InRelease (default debian-archive-keyring)"
    )
    p.add_argument(
        "--debug",
        action="store_true",
        help="add a busybox shell under /busybox (like distroless :debug)",
    )
    p.add_argument("--nonroot", action="store_true", help="USER 65532, WORKDIR /home/nonroot")
    p.add_argument(
        "--single-layer", action="store_true", help="one layer instead of one per package group"
    )
    p.add_argument(
        "--keep-docs", action="store_true", help="keep /usr/share/doc, man and info pages"
    )
    p.add_argument("--offline", action="store_true", help="use only cached indexes and packages")
    p.add_argument(
        "--cache",
        default=None,
        metavar="DIR",
        help="package cache (default $SLIMAGE_CACHE or ~/.cache/slimage)",
    )
    add_json_flag(p)


def _spec(args: argparse.Namespace) -> Any:
    from slimage.bases.builder import BaseSpec
    from slimage.bases.repository import DEFAULT_KEYRING, Source, default_sources

    preset = args.preset or "custom"
    packages = _csv(args.packages)
    if preset == "custom" and not packages:
        raise UsageError(
            "name a preset (static, base, cc, nodejs, python3, musl) or give --packages"
        )
    spec = BaseSpec(
        preset=preset,
        packages=packages,
        exclude=_csv(args.exclude),
        arch=args.arch,
        suite=args.suite,
        mirror=args.mirror,
        security_mirror=None if args.security_mirror in (None, "none") else args.security_mirror,
        snapshot=args.snapshot,
        keyring=args.keyring or DEFAULT_KEYRING,
        debug=args.debug,
        nonroot=args.nonroot,
        single_layer=args.single_layer,
        keep_docs=args.keep_docs,
    )
    if args.security_mirror == "none":
        spec.sources = [
            s
            for s in default_sources(args.suite, mirror=args.mirror, snapshot=args.snapshot)
            if not s.suite.endswith("-security")
        ]
    elif args.mirror and not args.security_mirror and not args.snapshot:
        spec.sources = [
            Source(args.mirror.rstrip("/"), s) for s in (args.suite, f"{args.suite}-updates")
        ]
    return spec


def _plan(args: argparse.Namespace) -> tuple[Any, Any]:
    from slimage.bases.builder import make_repository, plan

    spec = _spec(args)
    repo = make_repository(spec, Path(args.cache) if args.cache else None, offline=args.offline)
    lock, res = plan(spec, repo)
    return lock, res


def cmd_build(args: argparse.Namespace) -> int:
    from slimage.bases.builder import build
    from slimage.bases.lockfile import Lockfile

    cache = Path(args.cache) if args.cache else None
    if args.preset == "debian" or args.full:
        if not args.full:
            raise UsageError("the debian preset runs package scripts: ask for it with --full")
        from slimage.bases.full import build_full

        result = build_full(
            _store(), suite=args.suite, arch=args.arch, mirror=args.mirror, tags=args.tag or None
        )
    else:
        if args.lock:
            if args.preset or args.packages:
                raise UsageError(
                    "--lock builds exactly what the lockfile says; drop the preset and --packages"
                )
            lock = Lockfile.load(args.lock)
        else:
            lock, _ = _plan(args)
        if args.write_lock:
            lock.write(args.write_lock)
        result = build(
            lock,
            _store(),
            tags=args.tag or None,
            cache_dir=cache,
            add_ca=[Path(p) for p in args.add_ca or []],
        )
    if getattr(args, "load", False):
        from slimage.store.images import open_image
        from slimage.transports.docker_engine import load_into_engine

        if not result.tags:
            raise UsageError("--load needs a name for the image in the engine: give -t NAME")
        load_into_engine(open_image(_store(), result.manifest_digest), list(result.tags))
    if args.json:
        print_json(result)
        return 0
    for layer in result.layers:
        print(
            f"{layer.group:<10} {human_size(layer.size):>8}  {len(layer.packages)} packages  {layer.diff_id[:19]}"
        )
    names = ", ".join(result.tags) if result.tags else "(untagged)"
    reused = (
        f", {result.reused_layers} layers reused" if getattr(result, "reused_layers", 0) else ""
    )
    print(
        f"Built {result.preset} base {result.image_id[:19]} {names}: {human_size(result.size)}, {result.packages} packages in {result.seconds:.1f}s{reused}"
    )
    return 0


def cmd_lock(args: argparse.Namespace) -> int:
    lock, res = _plan(args)
    if args.output and args.output != "-":
        lock.write(args.output)
    if args.json:
        print_json(
            {
                "lock": lock,
                "skipped_essential": sorted(res.skipped_essential),
                "reasons": res.reasons,
            }
        )
        return 0
    if not args.output or args.output == "-":
        sys.stdout.write(lock.dumps())
        return 0
    rows = [[p.group, p.name, p.version, p.architecture, human_size(p.size)] for p in lock.packages]
    print_table(["GROUP", "PACKAGE", "VERSION", "ARCH", "SIZE"], rows)
    print(f"Wrote {args.output}: {len(lock.packages)} packages")
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    from slimage.bases.presets import PRESETS

    items: list[dict[str, Any]] = [
        {"name": p.name, "description": p.description, "groups": {g: list(r) for g, r in p.groups}}
        for p in PRESETS.values()
        if p.name != "custom"
    ]
    items.append(
        {
            "name": "debian",
            "description": "full Debian via mmdebstrap/debootstrap (--full)",
            "groups": {},
        }
    )
    if args.json:
        print_json(items)
        return 0
    print_table(["PRESET", "DESCRIPTION"], [[i["name"], i["description"]] for i in items])
    return 0


def _open(spec: str) -> Any:
    from slimage.transports.sources import open_source

    return open_source(spec, _store())


def cmd_compat(args: argparse.Namespace) -> int:
    """Answer first: does what the image runs load on the base? Then a count per verdict;
    every file only with --all."""
    from slimage.analysis.compat import check_compat
    from slimage.optimize.appfiles import what_it_runs

    runs: list[tuple[str, str]] = []
    report = check_compat(
        _open(args.image),
        _open(args.against),
        paths=args.path or [],
        image_name=args.image,
        target_name=args.against,
        on_source=lambda files: runs.extend(what_it_runs(files)),
    )
    if args.json:
        print_json(report)
        return 0 if report.compatible else 1
    by_path = {v.path: v for v in report.files}
    ran = [(by_path[p], role) for p, role in runs if p in by_path]
    if ran:
        bad = [(v, role) for v, role in ran if not v.loads]
        head = "would NOT load" if bad else "loads"
        print(f"{args.image} on {args.against} ({report.target_libc}): what it runs {head}")
        print_table(
            ["FILE", "ROLE", "VERDICT", "WHY"],
            [["/" + v.path, role, v.verdict, v.detail or v.note] for v, role in ran],
        )
    else:
        print(f"{args.image} on {args.against}: no ENTRYPOINT/CMD program or native app file found")
    counts = ", ".join(f"{n} {k}" for k, n in sorted(report.counts.items(), key=lambda kv: -kv[1]))
    verdict = "compatible" if report.compatible else "NOT compatible"
    print(
        f"All ELF files: {verdict}; {report.elf_files} ELF files ({counts or 'none'})"
        + ("" if args.all or not report.files else "; --all lists each")
    )
    if args.all and report.files:
        print_table(
            ["FILE", "KIND", "VERDICT", "WHY"],
            [["/" + v.path, v.kind, v.verdict, v.detail or v.note] for v in report.files],
        )
    return 0 if report.compatible else 1


def cmd_surface(args: argparse.Namespace) -> int:
    from slimage.analysis.surface import analyze_surface, table_rows

    reports = [analyze_surface(_open(name), name) for name in args.images]
    if args.json:
        print_json(reports)  # always a list, like docker inspect
        return 0
    headers, rows = table_rows(reports)
    print_table(headers, rows)
    return 0


def register(subparsers: Any) -> None:
    base = subparsers.add_parser(
        "base", help="assemble distroless-style base images from Debian packages"
    )
    bsub = base.add_subparsers(dest="base_command", metavar="COMMAND")
    base.set_defaults(func=lambda a: (base.print_help(), 2)[1])

    b = bsub.add_parser("build", help="build a base image from a preset, packages or a lockfile")
    _add_repo_flags(b)
    b.add_argument("-t", "--tag", action="append", help="name:tag for the result (repeatable)")
    b.add_argument(
        "--add-ca",
        action="append",
        metavar="FILE",
        help="append these PEM certificates to the CA bundle",
    )
    b.add_argument(
        "--load", action="store_true", help="also load the result into the Docker engine"
    )
    b.add_argument("--lock", metavar="FILE", help="build exactly what this lockfile pins")
    b.add_argument("--write-lock", metavar="FILE", help="also write the lockfile of this build")
    b.add_argument(
        "--full", action="store_true", help="with the debian preset: run mmdebstrap/debootstrap"
    )
    b.set_defaults(func=cmd_build)

    lk = bsub.add_parser("lock", help="resolve a preset and write its lockfile")
    _add_repo_flags(lk)
    lk.add_argument("-o", "--output", default=None, help="lockfile path (default: stdout)")
    lk.set_defaults(func=cmd_lock)

    ls = bsub.add_parser("ls", help="list the presets")
    add_json_flag(ls)
    ls.set_defaults(func=cmd_presets)

    c = subparsers.add_parser(
        "compat",
        help="which ELF files of IMAGE would fail on a base, and why",
        description="Predict, without running anything, whether IMAGE's ELF files load on "
        "BASE. Exit status 1 when any file would fail.",
    )
    c.add_argument("image")
    c.add_argument(
        "--against", required=True, metavar="BASE", help="the base image to check against"
    )
    c.add_argument(
        "--path", action="append", metavar="PATH", help="only check files under PATH (repeatable)"
    )
    c.add_argument("--all", action="store_true", help="list files that load, too")
    add_json_flag(c)
    c.set_defaults(func=cmd_compat)

    s = subparsers.add_parser("surface", help="attack surface of images, side by side")
    s.add_argument("images", nargs="+", metavar="IMAGE")
    add_json_flag(s)
    s.set_defaults(func=cmd_surface)
