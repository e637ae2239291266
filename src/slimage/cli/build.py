"""`slimage build`: docker build's flags over `slimage.builder.build`.

Imports of the builder happen inside the handler, so a warm no-op rebuild pays only for
what it uses: it is measured against BuildKit's no-op in bench/build_vs_buildkit.py.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def _kv(items: list[str] | None, what: str) -> dict[str, str]:
    import os

    from slimage.errors import UsageError

    out: dict[str, str] = {}
    for item in items or []:
        k, eq, v = item.partition("=")
        if not k:
            raise UsageError(f"{what} {item!r}: expected KEY=VALUE")
        if not eq:
            if k not in os.environ:
                continue  # docker: --build-arg NAME takes the value from the environment
            v = os.environ[k]
        out[k] = v
    return out


def _secrets(items: list[str] | None, private_dir: str) -> dict[str, str]:
    """`id=NAME,src=FILE` or `id=NAME,env=VAR` (docker's forms). An env secret is written
    to a file in PRIVATE_DIR (mode 0700, removed after the build) for the bind mount."""
    import os

    from slimage.errors import UsageError

    out: dict[str, str] = {}
    for item in items or []:
        fields = dict(p.partition("=")[::2] for p in item.split(","))
        sid = fields.get("id")
        src = fields.get("src") or fields.get("source")
        env = fields.get("env")
        if sid and env and not src:
            if env not in os.environ:
                raise UsageError(f"--secret {item!r}: environment variable {env} is not set")
            path = os.path.join(private_dir, f"secret-{len(out)}")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(os.environ[env])
            src = path
        if not sid or not src:
            raise UsageError(f"--secret {item!r}: use id=NAME,src=FILE or id=NAME,env=VAR")
        out[sid] = src
    return out


def cmd_build(args: argparse.Namespace) -> int:
    import shutil
    import tempfile

    needs_dir = any("env=" in item for item in args.secret or [])
    private = tempfile.mkdtemp(prefix="slimage-secrets-") if needs_dir else ""
    try:
        return _run_build(args, _secrets(args.secret, private))
    finally:
        if private:
            shutil.rmtree(private, ignore_errors=True)


def _print_result(args: argparse.Namespace, result: Any) -> None:
    if args.json:
        from slimage.cli.output import print_json

        print_json(result)
    elif args.quiet:
        image_id = result["image_id"] if isinstance(result, dict) else result.image_id
        sys.stdout.write(image_id + "\n")


def _run_build(args: argparse.Namespace, secrets: dict[str, str]) -> int:
    import time
    from types import SimpleNamespace

    from slimage.cli.session import store_root

    started = time.perf_counter()
    quiet = args.quiet or args.json or args.progress == "quiet"
    fields: dict[str, Any] = dict(
        context=args.context,
        dockerfile=args.file,
        tags=args.tag or [],
        target=args.target,
        build_args=_kv(args.build_arg, "--build-arg"),
        no_cache=args.no_cache,
        network=args.network,
        runtime=args.runtime,
        secrets=secrets,
        outputs=args.output or [],
        load=args.load,
        quiet=quiet,
        progress=sys.stderr,
        compression=args.compression,
        labels=_kv(args.label, "--label"),
        iidfile=args.iidfile,
        source_date_epoch=None,
        noop_cache=args.file != "-",  # a temp Dockerfile: no record could ever match
        cache_from=args.cache_from or [],
        cache_to=args.cache_to or [],
        push=args.push,
    )
    # The no-op record first, with the same key `build()` uses, so that an identical
    # rebuild is answered before the builder (or even its options class) is imported.
    from slimage.builder import noop

    key = noop.options_key(SimpleNamespace(**fields))
    hit = noop.lookup(store_root(), key, fields["tags"]) if key is not None else None
    if hit is not None:
        hit.update(cached_steps=hit["steps"], seconds=round(time.perf_counter() - started, 3))
        if not quiet:
            noop.report_hit(sys.stderr, hit)
        _print_result(args, hit)
        return 0

    from slimage.builder.api import BuildOptions, build

    if args.file == "-":
        # `-f -`: the Dockerfile comes on stdin (as with docker build).
        import tempfile

        with tempfile.NamedTemporaryFile("wb", suffix=".Dockerfile", delete=False) as fh:
            fh.write(sys.stdin.buffer.read())
            fields["dockerfile"] = fh.name
    try:
        result = build(BuildOptions(**fields), store_root())
    finally:
        if args.file == "-":
            import os

            os.unlink(fields["dockerfile"])
    _print_result(args, result)
    if not quiet:
        for line in result.pushed:  # the digest a deploy pins, as `docker push` prints it
            sys.stdout.write(f"{line}\n")
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "build", help="build an image from a Dockerfile (daemonless, runc + overlayfs)"
    )
    p.add_argument("context", help="build context directory")
    p.add_argument("-f", "--file", help="Dockerfile (default: CONTEXT/Dockerfile)")
    p.add_argument("-t", "--tag", action="append", help="name:tag for the result (repeatable)")
    p.add_argument("--target", help="build up to this stage")
    p.add_argument("--build-arg", action="append", metavar="KEY=VALUE")
    p.add_argument("--no-cache", action="store_true", help="do not use the build cache")
    p.add_argument(
        "--network",
        default="host",
        choices=["host", "none", "default"],
        help="RUN networking (default: host)",
    )
    p.add_argument("--runtime", default=None, help="OCI runtime: runc (default) or crun, or a path")
    p.add_argument("--secret", action="append", metavar="id=NAME,src=FILE|env=VAR")
    p.add_argument(
        "-o",
        "--output",
        action="append",
        metavar="type=oci,dest=DIR|FILE.tar|type=docker,dest=FILE",
    )
    p.add_argument("--load", action="store_true", help="also load the image into the Docker engine")
    p.add_argument(
        "--push",
        action="store_true",
        help="push the result to every -t REGISTRY/REPO:TAG (like --output type=registry)",
    )
    p.add_argument(
        "--cache-from",
        action="append",
        metavar="type=registry,ref=R|type=local,src=DIR",
        help="import build cache (repeatable); never fatal: an unusable one is a warning",
    )
    p.add_argument(
        "--cache-to",
        action="append",
        metavar="type=registry,ref=R[,mode=min|max]|type=local,dest=DIR",
        help="export the build cache (mode=min: the image's layers; max: every stage's)",
    )
    p.add_argument("--compression", choices=["gzip", "zstd"], default=None)
    p.add_argument("-q", "--quiet", action="store_true", help="print only the image ID")
    p.add_argument("--label", action="append", metavar="KEY=VALUE", help="label the result")
    p.add_argument("--iidfile", help="write the image ID to this file")
    p.add_argument(
        "--progress",
        choices=["auto", "plain", "tty", "quiet"],
        default="auto",
        help="progress output (BuildKit's plain style; quiet prints nothing)",
    )
    p.add_argument("--json", action="store_true", help="print the build result as JSON")
    p.set_defaults(func=cmd_build)
