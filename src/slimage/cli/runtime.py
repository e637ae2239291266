"""`slimage run / exec / ps / logs / stop / rm`: docker's verbs and flags over runc."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any


def _containers(args: argparse.Namespace) -> Any:
    from slimage.cli.session import open_store
    from slimage.runtime.containers import Containers

    return Containers(open_store())


def _ago(ts: float) -> str:
    d = max(0, time.time() - ts)
    for unit, secs in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if d >= secs:
            n = int(d // secs)
            return f"{n} {unit if n > 1 else unit[:-1]} ago"
    return f"{int(d)} seconds ago" if d >= 1 else "Less than a second ago"


def add_process_flags(p: argparse.ArgumentParser) -> None:
    """The `docker run` flags `slimage run` and `slimage minify` both take: what runs,
    as whom, where, with which environment and mounts. `process_flags` parses them."""
    p.add_argument("-e", "--env", action="append", metavar="KEY=VALUE")
    p.add_argument("--entrypoint")
    p.add_argument("-u", "--user")
    p.add_argument("-w", "--workdir")
    p.add_argument(
        "-v", "--volume", action="append", metavar="HOST:CONTAINER[:ro]", help="bind mount"
    )
    p.add_argument(
        "--mount",
        action="append",
        metavar="type=bind|tmpfs,...",
        help="Docker's --mount: type=bind,source=,target=[,readonly] or type=tmpfs,target=",
    )
    p.add_argument("--tmpfs", action="append", metavar="PATH[:size=,mode=]", help="a tmpfs")


def process_flags(args: argparse.Namespace) -> Any:
    """`add_process_flags`'s values as the runtime's `ProcessFlags` (one parse for both
    commands; every bad value is a one-line UsageError)."""
    from slimage.runtime.process import ProcessFlags, parse_mount, parse_tmpfs, parse_volume

    mounts = [parse_volume(v) for v in args.volume or []]
    mounts += [parse_mount(m) for m in args.mount or []]
    mounts += [parse_tmpfs(t) for t in args.tmpfs or []]
    return ProcessFlags(
        env=args.env or [],
        entrypoint=args.entrypoint,
        user=args.user,
        workdir=args.workdir,
        mounts=mounts,
    )


def cmd_run(args: argparse.Namespace) -> int:
    from slimage.runtime.containers import RunOptions

    flags = process_flags(args)
    opts = RunOptions(
        image=args.image,
        args=args.args,
        name=args.name,
        detach=args.detach,
        rm=args.rm,
        env=flags.env,
        workdir=flags.workdir,
        user=flags.user,
        entrypoint=flags.entrypoint,
        mounts=flags.mounts,
        network=args.network,
        tty=args.tty,
        interactive=args.interactive,
        runtime=args.runtime,
        stdout=sys.stdout.buffer,
        stderr=sys.stderr.buffer,
    )
    sys.stdout.flush()
    rec, rc = _containers(args).run(opts)
    if args.json:
        from slimage.cli.output import print_json

        print_json({"id": rec.id, "name": rec.name, "exit_code": None if args.detach else rc})
    elif args.detach:
        sys.stdout.write(rec.id + "\n")
    return rc


def cmd_exec(args: argparse.Namespace) -> int:
    return int(
        _containers(args).exec(
            args.container,
            args.command,
            env=args.env,
            user=args.user,
            workdir=args.workdir,
            tty=args.tty,
            detach=args.detach,
        )
    )


def cmd_ps(args: argparse.Namespace) -> int:
    rows = _containers(args).ps(all_=args.all)
    if args.json:
        from slimage.cli.output import print_json

        print_json([{**r["record"].__dict__, "status": r["status"]} for r in rows])
        return 0
    if args.quiet:
        for r in rows:
            sys.stdout.write(r["record"].id[:12] + "\n")
        return 0
    from slimage.cli.output import print_table

    table = []
    for r in rows:
        rec = r["record"]
        cmd = " ".join(rec.command)
        cmd = '"' + (cmd if len(cmd) <= 20 else cmd[:19] + "…") + '"'
        if r["status"] == "running":
            status = "Up " + _ago(rec.created).removesuffix(" ago")
        else:
            status = "Exited" + (f" ({rec.exit_code})" if rec.exit_code is not None else "")
        table.append([rec.id[:12], rec.image, cmd, _ago(rec.created), status, "", rec.name])
    print_table(["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"], table)
    return 0


def cmd_logs(args: argparse.Namespace) -> int:
    path = _containers(args).log_path(args.container)
    data = path.read_bytes() if path.exists() else b""
    if args.tail is not None and args.tail != "all":
        lines = data.splitlines(keepends=True)
        data = b"".join(lines[-int(args.tail) :]) if int(args.tail) else b""
    if args.json:
        from slimage.cli.output import print_json

        print_json({"container": args.container, "log": data.decode(errors="replace")})
        return 0
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
    if args.follow:
        with open(path, "rb") as fh:
            fh.seek(len(path.read_bytes()))
            c = _containers(args)
            rec = c.get(args.container)
            while True:
                chunk = fh.read()
                if chunk:
                    sys.stdout.buffer.write(chunk)
                    sys.stdout.flush()
                elif c.status(rec) != "running":
                    break
                else:
                    time.sleep(0.2)
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    c = _containers(args)
    done = []
    for ref in args.containers:
        c.stop(ref, timeout=args.time)
        done.append(ref)
    _print_names(args, done)
    return 0


def cmd_rm(args: argparse.Namespace) -> int:
    c = _containers(args)
    done = []
    for ref in args.containers:
        c.remove(ref, force=args.force)
        done.append(ref)
    _print_names(args, done)
    return 0


def _print_names(args: argparse.Namespace, names: list[str]) -> None:
    if args.json:
        from slimage.cli.output import print_json

        print_json(names)
    else:
        for n in names:
            sys.stdout.write(n + "\n")


def register(sub: Any) -> None:
    p = sub.add_parser("run", help="run a command in a new container (runc, host network)")
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("--rm", action="store_true", help="remove the container when it exits")
    p.add_argument("--name")
    add_process_flags(p)
    p.add_argument("--network", default="host", choices=["host", "none"])
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("--runtime", default=None, help="runc (default) or crun")
    p.add_argument("--json", action="store_true")
    p.add_argument("image")
    p.add_argument("args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("exec", help="run a command in a running container")
    p.add_argument("-d", "--detach", action="store_true")
    p.add_argument("-e", "--env", action="append", metavar="KEY=VALUE")
    p.add_argument("-w", "--workdir")
    p.add_argument("-u", "--user")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("--json", action="store_true")
    p.add_argument("container")
    p.add_argument("command", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_exec)

    p = sub.add_parser("ps", help="list containers")
    p.add_argument("-a", "--all", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_ps)

    p = sub.add_parser("logs", help="output of a detached container")
    p.add_argument("-f", "--follow", action="store_true")
    p.add_argument("-n", "--tail", default=None)
    p.add_argument("--json", action="store_true")
    p.add_argument("container")
    p.set_defaults(func=cmd_logs)

    p = sub.add_parser("stop", help="stop running containers (StopSignal, then SIGKILL)")
    p.add_argument("-t", "--time", type=float, default=10.0)
    p.add_argument("--json", action="store_true")
    p.add_argument("containers", nargs="+")
    p.set_defaults(func=cmd_stop)

    p = sub.add_parser("rm", help="remove containers")
    p.add_argument("-f", "--force", action="store_true")
    p.add_argument("--json", action="store_true")
    p.add_argument("containers", nargs="+")
    p.set_defaults(func=cmd_rm)
