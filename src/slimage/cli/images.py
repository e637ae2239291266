"""`load`, `import`, `save`, `images`, `history`, `inspect`, `tag`, `rmi`, `gc`, `fsck`.

Thin: arguments in, one call into `slimage.transports`, Docker-shaped output out (same
columns, truncation and units as the Docker CLI), or `--json` for machines.
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
from collections.abc import Callable
from typing import Any

from slimage.cli.output import add_json_flag, print_json, print_table
from slimage.cli.session import store_root, tell
from slimage.errors import SlimageError, UsageError
from slimage.oci.digest import short_id
from slimage.store.store import Store
from slimage.units import go_time_string, human_size, rfc3339_local, since

HISTORY_SIZE_RULE = (
    "SIZE is Docker's: the bytes of the layer's regular files plus the UTF-8 length of "
    "each symlink target; hardlinks, directories and whiteouts count 0 (what Docker's "
    "directory.Size gives for layers it commits or imports). Docker 20.10 counts layers "
    "exported by BuildKit without the symlink bytes, so there slimage may be a few bytes "
    "higher. Units are SI with three significant digits (5.84MB), as in docker history."
)


SOURCE_HELP = (
    "a store name or ID, a docker save archive, an OCI layout dir, or "
    "docker-archive:PATH[:REF], oci:DIR[:REF], docker-daemon:REF"
)


def _bool(text: str) -> bool:
    t = text.strip().lower()
    if t in ("1", "t", "true", "yes", "on"):
        return True
    if t in ("0", "f", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean value {text!r}")


def go_json(obj: Any) -> str:
    """JSON as Go's encoding/json writes it for `{{json .}}`: sorted keys, compact, and
    <, >, & escaped."""
    text = json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


_FIELD = re.compile(r"\{\{\s*(json\s+)?\.(\w*)\s*\}\}")


def render_template(fmt: str, row: dict[str, str]) -> str:
    """The subset of Go templates people use with docker: `{{.Field}}`, `{{json .}}`."""

    def sub(m: re.Match[str]) -> str:
        is_json, key = m.group(1), m.group(2)
        if not key:
            return go_json(row)
        if key not in row:
            raise UsageError(f"template: can't evaluate field {key}")
        return go_json(row[key]) if is_json else str(row[key])

    return _FIELD.sub(sub, fmt.replace("\\t", "\t").replace("\\n", "\n"))


def _print_formatted(fmt: str, rows: list[dict[str, str]]) -> None:
    if fmt.strip() in ("json", "{{json .}}"):
        for row in rows:
            sys.stdout.write(go_json(row) + "\n")
        return
    table = fmt.startswith("table ")
    if table:
        fmt = fmt[len("table ") :]
    for row in rows:
        sys.stdout.write(render_template(fmt, row) + "\n")


def _ellipsis(text: str, width: int) -> str:
    """docker's formatter.Ellipsis for the common (narrow-character) case."""
    if len(text) <= width:
        return text
    return text[: width - 1] + "…"


def _os_errors(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """A file the user named that cannot be read or written is their error to fix, not a
    traceback: say which file and why, in one line."""

    @functools.wraps(func)
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return int(func(args) or 0)
        except BrokenPipeError:
            raise
        except OSError as exc:
            where = exc.filename or "I/O"
            raise SlimageError(f"{args.command}: {where}: {exc.strerror or exc}") from None

    return wrapper


def _store() -> Store:
    return Store(store_root(), notify=tell)


# ---------------------------------------------------------------------------- load


@_os_errors
def cmd_load(args: argparse.Namespace) -> int:
    from slimage.imageops import load_archive

    store = _store()
    if args.input and args.input != "-":
        loaded = load_archive(store, args.input)
    else:
        if sys.stdin.isatty():
            raise UsageError("load: requested load from stdin, but stdin is empty (use -i FILE)")
        loaded = load_archive(store, stream=sys.stdin.buffer)
    if args.json:
        print_json(loaded)
        return 0
    for img in loaded:
        if img.tags:
            for t in img.tags:
                print(f"Loaded image: {t}")
        else:
            print(f"Loaded image ID: {img.id}")
    return 0


# ---------------------------------------------------------------------------- import


@_os_errors
def cmd_import(args: argparse.Namespace) -> int:
    from slimage.oci.model import Platform
    from slimage.transports.rootfs_import import import_rootfs

    store = _store()
    tags = [args.reference] if args.reference else []
    platform = Platform.parse(args.platform) if args.platform else None
    if args.file == "-":
        result = import_rootfs(
            store,
            sys.stdin.buffer,
            tags=tags,
            source_name="-",
            changes=args.change,
            message=args.message or "",
            platform=platform,
        )
    else:
        try:
            fh = open(args.file, "rb")  # noqa: SIM115
        except OSError as exc:
            raise UsageError(f"import: {args.file}: {exc.strerror}") from None
        with fh:
            result = import_rootfs(
                store,
                fh,
                tags=tags,
                source_name=args.file,
                changes=args.change,
                message=args.message or "",
                platform=platform,
            )
    if args.json:
        print_json({"id": result.image_id, "manifest_digest": result.manifest_digest, "tags": tags})
    else:
        print(result.image_id)
    return 0


# ---------------------------------------------------------------------------- save


@_os_errors
def cmd_save(args: argparse.Namespace) -> int:
    from slimage.imageops import save

    store = _store()
    if args.output:
        pairs = save(store, args.names, output=args.output, fmt=args.format)
    else:
        if args.format == "oci":
            raise UsageError("save --format oci needs -o DIR")
        if sys.stdout.isatty():
            raise UsageError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
        pairs = save(store, args.names, stream=sys.stdout.buffer, fmt=args.format)
    if args.json and args.output:
        print_json(
            [
                {"id": img.id, "tags": tags, "output": args.output, "format": args.format}
                for img, tags in pairs
            ]
        )
    return 0


# ---------------------------------------------------------------------------- images


@_os_errors
def cmd_images(args: argparse.Namespace) -> int:
    """List the store. Exit code 0 whenever the store itself can be read, even when some
    images cannot (a config with a field of the wrong type, a missing blob, a layer that
    fails its check): those are listed with IMAGE ID `<broken>` and each is reported on
    one stderr line, so one bad image never hides the others. `slimage fsck` is the
    command whose exit code says whether the store is healthy (1 if not)."""
    from slimage.imageops import list_images

    rows = list_images(_store(), args.reference)
    for digest, why in sorted({(r.manifest_digest, r.broken) for r in rows if r.broken}):
        print(
            f"slimage: warning: image {digest} is broken: {why} (see slimage fsck)", file=sys.stderr
        )
    if args.json:
        print_json(
            [
                {
                    "repository": r.repository,
                    "tag": r.tag,
                    "id": r.id,
                    "digest": r.manifest_digest,
                    "created": r.created,
                    "size": r.size,
                    **({"broken": r.broken} if r.broken else {}),
                }
                for r in rows
            ]
        )
        return 0
    if args.quiet:
        for r in rows:
            print(r.id if args.no_trunc else short_id(r.id))
        return 0
    docker_rows = [
        {
            "Containers": "N/A",
            "CreatedAt": go_time_string(r.created_ts),
            "CreatedSince": "N/A" if r.broken else since(r.created_ts),
            "Digest": r.manifest_digest if args.digests else "<none>",
            "ID": r.id if args.no_trunc else short_id(r.id),
            "Repository": r.repository,
            "SharedSize": "N/A",
            "Size": human_size(r.size),
            "Tag": r.tag,
            "UniqueSize": "N/A",
            "VirtualSize": human_size(r.size, 4),
        }
        for r in rows
    ]
    if args.format:
        _print_formatted(args.format, docker_rows)
        return 0
    headers = ["REPOSITORY", "TAG"]
    if args.digests:
        headers.append("DIGEST")
    headers += ["IMAGE ID", "CREATED", "SIZE"]
    table = []
    for d in docker_rows:
        cells = [d["Repository"], d["Tag"]]
        if args.digests:
            cells.append(d["Digest"])
        cells += [d["ID"], d["CreatedSince"], d["Size"]]
        table.append(cells)
    print_table(headers, table)
    return 0


# ---------------------------------------------------------------------------- history


def _open(spec: str):
    from slimage.transports.sources import open_source

    return open_source(spec, _store())


@_os_errors
def cmd_history(args: argparse.Namespace) -> int:
    from slimage.imageops import image_history
    from slimage.transports.sources import open_source

    store = _store()
    image = open_source(args.image, store)
    rows = image_history(image, store)
    if args.json:
        print_json(
            [
                {
                    "id": r.id,
                    "created": r.created,
                    "created_by": r.created_by,
                    "size": r.size,
                    "comment": r.comment,
                    "empty_layer": r.empty_layer,
                }
                for r in rows
            ]
        )
        return 0
    trunc = not args.no_trunc
    human = args.human
    docker_rows = []
    for r in rows:
        created_by = r.created_by.replace("\t", " ")
        ident = r.id
        if trunc and ident != "<missing>":
            ident = short_id(ident)
        created_at = rfc3339_local(r.created_ts)
        docker_rows.append(
            {
                "Comment": r.comment,
                "CreatedAt": created_at,
                "CreatedBy": _ellipsis(created_by, 45) if trunc else created_by,
                "CreatedSince": since(r.created_ts) if human else created_at,
                "ID": ident,
                "Size": human_size(r.size) if human else str(r.size),
            }
        )
    if args.quiet:
        for d in docker_rows:
            print(d["ID"])
        return 0
    if args.format:
        _print_formatted(args.format, docker_rows)
        return 0
    headers = ["IMAGE", "CREATED" if human else "CREATED AT", "CREATED BY", "SIZE", "COMMENT"]
    print_table(
        headers,
        [
            [d["ID"], d["CreatedSince"], d["CreatedBy"], d["Size"], d["Comment"]]
            for d in docker_rows
        ],
    )
    return 0


# ---------------------------------------------------------------------------- inspect


@_os_errors
def cmd_inspect(args: argparse.Namespace) -> int:
    from slimage.imageops import inspect_image

    store = _store()
    out = []
    for name in args.images:
        image = _open(name)
        digest = None
        if image.source.startswith("store "):
            digest = store.resolve(name)
        out.append(inspect_image(image, manifest_digest=digest, store=store))
    if args.format:
        for item in out:
            sys.stdout.write(render_template(args.format, item) + "\n")
        return 0
    print_json(out)
    return 0


# ---------------------------------------------------------------------------- tag / rmi


@_os_errors
def cmd_tag(args: argparse.Namespace) -> int:
    from slimage.imageops import tag_image

    name = tag_image(_store(), args.source, args.target)
    if args.json:
        print_json({"source": args.source, "target": name})
    return 0


@_os_errors
def cmd_rmi(args: argparse.Namespace) -> int:
    from slimage.imageops import remove_image

    store = _store()
    results = []
    rc = 0
    for name in args.images:
        try:
            res = remove_image(store, name, force=args.force)
        except Exception as err:
            from slimage.errors import SlimageError

            if not isinstance(err, SlimageError):
                raise
            print(f"slimage: error: {err}", file=sys.stderr)
            rc = 1
            continue
        results.append({"name": name, "untagged": res.untagged, "deleted": res.deleted})
        if not args.json:
            for t in res.untagged:
                print(f"Untagged: {t}")
            for d in res.deleted:
                print(f"Deleted: {d}")
    if args.json:
        print_json(results)
    return rc


# ---------------------------------------------------------------------------- gc / fsck


@_os_errors
def cmd_gc(args: argparse.Namespace) -> int:
    store = _store()
    from slimage.runtime.containers import Containers

    Containers(store)  # reaps what dead `run`s left, so gc can free their images too
    report = store.gc()
    if args.json:
        print_json(report)
        return 0
    for digest in report.removed_blobs:
        print(f"Deleted: {digest}")
    if report.removed_tmp:
        print(
            f"Deleted {report.removed_tmp} abandoned temp files "
            f"({human_size(report.removed_tmp_bytes)})"
        )
    for line in report.broken_images:
        print(f"slimage: warning: broken image kept: {line} (see slimage fsck)", file=sys.stderr)
    print(f"Total reclaimed space: {human_size(report.removed_bytes)}")
    return 0


@_os_errors
def cmd_fsck(args: argparse.Namespace) -> int:
    report = _store().fsck()
    if args.json:
        print_json({**report.__dict__, "ok": report.ok})
    else:
        for d in report.bad:
            print(f"corrupt blob: {d}")
        for d in report.missing:
            print(f"missing blob: {d}")
        for line in report.broken_images:
            print(f"broken image: {line}")
        for line in report.bad_records:
            print(f"corrupt record: {line}")
        for line in report.warnings:
            print(f"slimage: warning: {line}", file=sys.stderr)
        print(f"checked {report.checked} blobs: {'ok' if report.ok else 'PROBLEMS FOUND'}")
    return 0 if report.ok else 1


# ---------------------------------------------------------------------------- register


def register(sub: Any) -> None:
    p = sub.add_parser("load", help="load images from a docker save archive (file or stdin)")
    p.add_argument("-i", "--input", help="read from an archive file instead of stdin")
    p.add_argument("-q", "--quiet", action="store_true", help="accepted for docker compatibility")
    add_json_flag(p)
    p.set_defaults(func=cmd_load)

    p = sub.add_parser(
        "import", help="create an image from a root filesystem tar, like docker import"
    )
    p.add_argument("file", metavar="FILE|-")
    p.add_argument("reference", nargs="?", metavar="REPOSITORY[:TAG]")
    p.add_argument(
        "-c",
        "--change",
        action="append",
        default=[],
        help="apply a Dockerfile instruction (CMD, ENV, ...)",
    )
    p.add_argument("-m", "--message", help="commit message (the history comment)")
    p.add_argument("--platform", help="os/arch[/variant] for the image config")
    add_json_flag(p)
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("save", help="save images to a docker-archive tar or an OCI layout")
    p.add_argument("names", nargs="+", metavar="IMAGE")
    p.add_argument("-o", "--output", help="write to a file (a directory for --format oci)")
    p.add_argument(
        "--format",
        default="docker-archive",
        choices=("docker-archive", "oci", "oci-archive"),
        help="docker-archive (default; docker load accepts it), oci (layout dir), oci-archive",
    )
    add_json_flag(p)
    p.set_defaults(func=cmd_save)

    p = sub.add_parser("images", help="list images in the store")
    p.add_argument("reference", nargs="?", metavar="REPOSITORY[:TAG]")
    p.add_argument("-a", "--all", action="store_true", help="accepted for docker compatibility")
    p.add_argument("-q", "--quiet", action="store_true", help="only show image IDs")
    p.add_argument("--no-trunc", action="store_true", help="don't truncate output")
    p.add_argument("--digests", action="store_true", help="show digests")
    p.add_argument("--format", help="'json' or a Go-template subset ({{.Repository}}, {{json .}})")
    add_json_flag(p)
    p.set_defaults(func=cmd_images)

    p = sub.add_parser(
        "history",
        help="show the history of an image (store ref, archive or OCI layout)",
        description="Show the history of an image. " + HISTORY_SIZE_RULE,
    )
    p.add_argument("image", metavar="IMAGE", help=SOURCE_HELP)
    p.add_argument(
        "-H",
        "--human",
        type=_bool,
        nargs="?",
        const=True,
        default=True,
        help="sizes and dates in human-readable form (default true; --human=false gives bytes and RFC 3339)",
    )
    p.add_argument("--no-trunc", action="store_true", help="don't truncate output")
    p.add_argument("-q", "--quiet", action="store_true", help="only show image IDs")
    p.add_argument(
        "--format", help="'json' (one object per line, docker's keys) or a Go-template subset"
    )
    add_json_flag(p)
    p.set_defaults(func=cmd_history)

    p = sub.add_parser("inspect", help="config and manifest of images, as JSON")
    p.add_argument("images", nargs="+", metavar="IMAGE", help=SOURCE_HELP)
    p.add_argument("-f", "--format", help="Go-template subset ({{.Id}}, {{json .Config}})")
    add_json_flag(p)
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("tag", help="create a tag TARGET that refers to SOURCE")
    p.add_argument("source", metavar="SOURCE_IMAGE[:TAG]")
    p.add_argument("target", metavar="TARGET_IMAGE[:TAG]")
    add_json_flag(p)
    p.set_defaults(func=cmd_tag)

    p = sub.add_parser("rmi", help="remove images (untag; blobs go at the next gc)")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument(
        "-f", "--force", action="store_true", help="remove an image with several tags by ID"
    )
    add_json_flag(p)
    p.set_defaults(func=cmd_rmi)

    p = sub.add_parser("gc", help="delete blobs no image refers to")
    add_json_flag(p)
    p.set_defaults(func=cmd_gc)

    p = sub.add_parser("fsck", help="re-verify every blob's digest; exit 1 on problems")
    add_json_flag(p)
    p.set_defaults(func=cmd_fsck)
