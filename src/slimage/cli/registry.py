"""`slimage login | logout | pull | push | copy`: Docker's verbs over the registry API.

Output follows Docker (`latest: Pulling from team/app`, `abc123: Pull complete`,
`Digest: ...`, `Layer already exists`, `Mounted from ...`); `--json` prints the transfer
report instead (every blob with its action and the bytes that crossed the wire) and `-q`
prints only the reference. Progress bars (rich) are drawn on stderr when it is a terminal.
Heavy imports are deferred so a no-op re-push stays quick.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from typing import Any

from slimage.cli.output import add_json_flag, print_json
from slimage.errors import UsageError


def _short(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


def _parse_size(text: str) -> int:
    t = text.strip().upper().removesuffix("B")
    mult = 1
    for suffix, m in (("K", 1000), ("M", 1000**2), ("G", 1000**3), ("KI", 1024), ("MI", 1024**2)):
        if t.endswith(suffix):
            mult, t = m, t[: -len(suffix)]
    try:
        value = int(float(t) * mult)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}")
    return value


def _add_transfer_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("-q", "--quiet", action="store_true", help="suppress verbose output")
    p.add_argument(
        "--insecure",
        action="append",
        default=[],
        metavar="HOST",
        help="allow plain HTTP / unverified TLS for this registry host (repeatable)",
    )
    p.add_argument("--jobs", type=int, default=4, help="concurrent blob transfers (default 4)")
    add_json_flag(p)


class _LineProgress:
    """Docker's non-terminal output: one line per blob when it finishes."""

    def __init__(self, pulling: bool):
        self.pulling = pulling
        self._lock = threading.Lock()

    def begin(self, blob: Any) -> None:
        pass

    def advance(self, blob: Any, nbytes: int) -> None:
        pass

    def end(self, blob: Any) -> None:
        if blob.kind == "config" and self.pulling:
            return
        words = {
            "downloaded": "Pull complete",
            "skipped": "Already exists" if self.pulling else "Layer already exists",
            "uploaded": "Pushed",
            "mounted": f"Mounted from {blob.mounted_from}",
        }
        with self._lock:
            sys.stdout.write(f"{_short(blob.digest)}: {words.get(blob.action, blob.action)}\n")
            sys.stdout.flush()


class _RichProgress(_LineProgress):
    """A bar per blob on stderr, for terminals."""

    def __init__(self, pulling: bool, console: Any = None):
        super().__init__(pulling)
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TransferSpeedColumn,
        )

        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=False),
            TransferSpeedColumn(),
            console=console or Console(stderr=True),
            transient=False,
        )
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> _RichProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def _task(self, blob: Any) -> Any:
        with self._lock:
            if blob.digest not in self.tasks:
                verb = "Downloading" if self.pulling else "Pushing"
                self.tasks[blob.digest] = self.progress.add_task(
                    f"{_short(blob.digest)}: {verb}", total=blob.size
                )
            return self.tasks[blob.digest]

    def begin(self, blob: Any) -> None:
        self._task(blob)

    def advance(self, blob: Any, nbytes: int) -> None:
        self.progress.advance(self._task(blob), nbytes)

    def end(self, blob: Any) -> None:
        words = {
            "downloaded": "Pull complete",
            "skipped": "Already exists" if self.pulling else "Layer already exists",
            "uploaded": "Pushed",
            "mounted": f"Mounted from {blob.mounted_from}",
        }
        task = self._task(blob)
        self.progress.update(
            task,
            description=f"{_short(blob.digest)}: {words.get(blob.action, blob.action)}",
            completed=blob.size,
        )


class _NoProgress:
    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def begin(self, blob: Any) -> None:
        pass

    def advance(self, blob: Any, nbytes: int) -> None:
        pass

    def end(self, blob: Any) -> None:
        pass


def _progress_for(args: argparse.Namespace, pulling: bool) -> Any:
    if args.quiet or args.json:
        return _NoProgress()
    if sys.stderr.isatty() and os.environ.get("TERM") != "dumb":
        return _RichProgress(pulling)
    prog = _LineProgress(pulling)
    return _Ctx(prog)


class _Ctx:
    def __init__(self, inner: Any):
        self.inner = inner

    def __enter__(self) -> Any:
        return self.inner

    def __exit__(self, *exc: object) -> None:
        pass


def _store() -> Any:
    from slimage.cli.session import store_root
    from slimage.store.store import Store

    return Store(store_root())


def cmd_pull(args: argparse.Namespace) -> int:
    from slimage.oci.model import Platform
    from slimage.transports.registry.names import RemoteRef
    from slimage.transports.registry.pull import pull

    platform = Platform.parse(args.platform) if args.platform else None
    rref = RemoteRef.parse(args.name)
    if not (args.quiet or args.json):
        print(f"{rref.reference}: Pulling from {rref.repository}", flush=True)
    with _progress_for(args, pulling=True) as progress:
        report = pull(
            _store(),
            args.name,
            platform=platform,
            insecure=args.insecure,
            jobs=args.jobs,
            progress=progress,
        )
    if args.json:
        print_json(report)
    elif args.quiet:
        print(rref.display)
    else:
        print(f"Digest: {report.index_digest or report.digest}")
        print(f"Status: {report.status}")
        print(rref.display)
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from slimage.store.images import open_image
    from slimage.transports.registry.names import RemoteRef
    from slimage.transports.sinks import open_sink

    rref = RemoteRef.parse(args.name)
    store = _store()
    image = open_image(store, args.name)
    if not (args.quiet or args.json):
        print(f"The push refers to repository [{rref.ref.repository}]", flush=True)
    with _progress_for(args, pulling=False) as progress:
        sink = open_sink(
            f"docker://{args.name}",
            store,
            insecure=args.insecure,
            jobs=args.jobs,
            chunk_size=args.chunk_size,
            progress=progress,
        )
        report = sink.write(image).steps[0]
    if args.json:
        print_json(report)
    elif not args.quiet:
        print(report.status)
    else:
        print(rref.display)
    return 0


def cmd_copy(args: argparse.Namespace) -> int:
    from slimage.oci.model import Platform
    from slimage.transports.registry.copy import copy

    platform = Platform.parse(args.platform) if args.platform else None
    with _progress_for(args, pulling=args.source.startswith("docker://")) as progress:
        report = copy(
            args.source,
            args.destination,
            store=_store(),
            platform=platform,
            insecure=args.insecure,
            jobs=args.jobs,
            progress=progress,
        )
    if args.json:
        print_json(report)
    elif not args.quiet:
        print(f"Copied {args.source} to {args.destination} ({report.digest or report.image_id})")
    return 0


def _read_secret(args: argparse.Namespace) -> str:
    from slimage.transports.registry.auth import read_password_stdin, remember_secret

    if args.password_stdin:
        if args.password:
            raise UsageError("--password and --password-stdin are mutually exclusive")
        return read_password_stdin(sys.stdin)
    if args.password is not None:
        remember_secret(args.password)
        print(
            "WARNING! Using --password via the CLI is insecure. Use --password-stdin.",
            file=sys.stderr,
        )
        return str(args.password)
    if not sys.stdin.isatty():
        raise UsageError("cannot prompt for a password without a terminal; use --password-stdin")
    import getpass

    secret = getpass.getpass("Password: ")
    if not secret:
        raise UsageError("password required")
    return secret


def cmd_login(args: argparse.Namespace) -> int:
    from slimage.transports.registry.login import login

    server = args.server or "docker.io"
    username = args.username
    if not username:
        if not sys.stdin.isatty() or args.password_stdin:
            raise UsageError("--username is required when not on a terminal")
        username = input("Username: ").strip()
    secret = _read_secret(args)
    where = login(server, username, secret, insecure=args.insecure)
    if args.json:
        print_json({"server": server, "username": username, "stored_in": where, "status": "ok"})
    else:
        print("Login Succeeded")
    return 0


def cmd_logout(args: argparse.Namespace) -> int:
    from slimage.transports.registry.login import logout

    server = args.server or "docker.io"
    found = logout(server)
    if args.json:
        print_json({"server": server, "removed": found})
    elif found:
        print(f"Removing login credentials for {server}")
    else:
        print(f"Not logged in to {server}")
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("pull", help="download an image from a registry into the store")
    p.add_argument("name", metavar="NAME[:TAG|@DIGEST]")
    p.add_argument("--platform", help="os/arch[/variant] to pick from a multi-platform image")
    p.add_argument(
        "--verify-layers",
        action="store_true",
        help="kept for compatibility: every pulled layer is now always checked (safe "
        "entries, diff_id) before the image is tagged, as load does",
    )
    _add_transfer_flags(p)
    p.set_defaults(func=cmd_pull)

    p = subparsers.add_parser("push", help="upload an image from the store to a registry")
    p.add_argument("name", metavar="NAME[:TAG]")
    p.add_argument(
        "--chunk-size",
        type=_parse_size,
        default=None,
        metavar="SIZE",
        help="upload blobs larger than SIZE in PATCH chunks of SIZE (default: one PUT)",
    )
    _add_transfer_flags(p)
    p.set_defaults(func=cmd_push)

    p = subparsers.add_parser(
        "copy", help="copy an image between docker://, oci:, docker-archive: and the store"
    )
    p.add_argument("source", metavar="SRC")
    p.add_argument("destination", metavar="DST")
    p.add_argument("--platform", help="os/arch[/variant] to pick from a multi-platform image")
    _add_transfer_flags(p)
    p.set_defaults(func=cmd_copy)

    p = subparsers.add_parser("login", help="log in to a registry (Docker's config.json)")
    p.add_argument("server", nargs="?", metavar="SERVER")
    p.add_argument("-u", "--username")
    p.add_argument("-p", "--password")
    p.add_argument("--password-stdin", action="store_true", help="take the password from stdin")
    p.add_argument("--insecure", action="append", default=[], metavar="HOST")
    add_json_flag(p)
    p.set_defaults(func=cmd_login)

    p = subparsers.add_parser("logout", help="log out from a registry")
    p.add_argument("server", nargs="?", metavar="SERVER")
    add_json_flag(p)
    p.set_defaults(func=cmd_logout)
