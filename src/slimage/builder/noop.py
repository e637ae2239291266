"""Answer a rebuild that has nothing to do before the builder is even imported.

A no-op rebuild through the builder costs little work but a lot of start-up: importing
the parser, the store and the executor takes longer than BuildKit's whole answer. So a
successful build leaves a record keyed by everything the build could have read, and the
next identical invocation that finds its record returns the same image at once.

The key is deliberately coarser than the build cache, never finer: the Dockerfile's and
the .dockerignore files' bytes, the invocation (tags, target, build args, labels, ...),
SOURCE_DATE_EPOCH, and the stat data (mode, size, mtime, ctime, inode) of every entry
under the context, ignored files included. ctime is set by the kernel on any write,
chmod or rename, so a changed input always misses. Every tag outside the build's own
must still point where it did (a base that was re-tagged or pulled anew misses too), and
the result's manifest must still be in the store. A miss costs one walk of the context
and then the real build, whose own cache decides what to redo.

An `ADD <url>` reads what no local stat can see, so the record keeps what the build
learnt of each URL, and a hit asks every one again as the build would (see
builder.fetch): only a server that says "not modified" lets the record answer. A URL
pinned by `--checksum` needs no request (the build does not ask either); one with no
validators (no ETag, no usable Last-Modified) leaves no record at all, since only a
download could tell.

Only stdlib is imported here: that is the point of the module (`builder.fetch`, stdlib
and the error classes, is imported only for a record that has URLs to ask).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

# 2: records carry the URLs to re-validate (a version-1 record of an ADD <url> build
# would answer without asking).
VERSION = 2


def _walk(h: Any, root: str) -> None:
    stack = [""]
    while stack:
        rel = stack.pop()
        try:
            with os.scandir(os.path.join(root, rel) if rel else root) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            h.update(f"!{rel}:{exc.errno}\0".encode())
            continue
        for e in entries:
            st = e.stat(follow_symlinks=False)
            path = f"{rel}/{e.name}" if rel else e.name
            h.update(
                f"{path}\0{st.st_mode}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}\0"
                f"{st.st_ino}\n".encode("utf-8", "surrogateescape")
            )
            if e.is_dir(follow_symlinks=False):
                stack.append(path)


def _file_bytes(h: Any, path: str) -> None:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        h.update(b"\0absent\0")
        return
    h.update(len(data).to_bytes(8, "big") + data)


def invocation_key(invocation: dict[str, Any], context: str, dockerfile: str) -> str:
    """Everything a build with these arguments could read, as one digest."""
    h = hashlib.sha256()
    h.update(json.dumps([VERSION, invocation], sort_keys=True).encode())
    h.update(os.environ.get("SOURCE_DATE_EPOCH", "").encode() + b"\0")
    h.update(os.path.abspath(context).encode("utf-8", "surrogateescape") + b"\0")
    for path in (dockerfile, dockerfile + ".dockerignore", os.path.join(context, ".dockerignore")):
        h.update(os.path.abspath(path).encode("utf-8", "surrogateescape") + b"\0")
        _file_bytes(h, path)
    _walk(h, context)
    return h.hexdigest()


def options_key(opts: Any) -> str | None:
    """The record key of a build with OPTS (a `BuildOptions`, or anything with its fields:
    the CLI passes a plain namespace so a hit never imports the builder), or None when
    the build may not be answered from a record: it has effects beyond the store (outputs,
    --load, an iidfile), reads secrets, or skips the cache."""
    if not opts.noop_cache or opts.no_cache or opts.outputs or opts.load or opts.iidfile:
        return None
    if getattr(opts, "cache_to", None) or getattr(opts, "push", False):
        return None  # effects beyond the store: the export/push must happen
    dockerfile = opts.dockerfile or os.path.join(opts.context, "Dockerfile")
    if opts.secrets or not (os.path.isdir(opts.context) and os.path.isfile(dockerfile)):
        return None  # (a missing file: the builder gives the proper error)
    invocation = {
        "dockerfile": os.path.abspath(dockerfile),
        "tags": sorted(opts.tags),
        "target": opts.target,
        "build_args": opts.build_args,
        "labels": opts.labels,
        "network": opts.network,
        "runtime": opts.runtime or os.environ.get("SLIMAGE_RUNTIME"),
        "compression": opts.compression or os.environ.get("SLIMAGE_COMPRESSION", "gzip"),
        "source_date_epoch": opts.source_date_epoch,
    }
    return invocation_key(invocation, opts.context, dockerfile)


def report_hit(out: Any, result: dict[str, Any]) -> None:
    """Tell OUT (a text stream) about an answered rebuild, as BuildKit reports an
    all-cached one."""
    out.write("#1 nothing changed since the last identical build: every step CACHED\n")
    out.write("#1 DONE 0.0s\n\n#2 exporting to image\n")
    out.write(f"#2 writing image {result['image_id']} done\n")
    for tag in result["tags"]:
        out.write(f"#2 naming to {tag} done\n")
    out.write("#2 DONE 0.0s\n")
    out.flush()


def _other_refs(root: Path, own: list[str]) -> str:
    """A digest of every tag in the store except the ones this build writes."""
    try:
        refs = json.loads((root / "refs.json").read_text()).get("refs", {})
    except (OSError, ValueError):
        refs = {}
    others = {k: v for k, v in refs.items() if k not in own}
    return hashlib.sha256(json.dumps(others, sort_keys=True).encode()).hexdigest()


def _tag_keys(tags: list[str]) -> list[str]:
    """`name` -> `name:latest`, as the store keys refs (only the tag part is needed)."""
    out = []
    for t in tags:
        last = t.rsplit("/", 1)[-1]
        out.append(t if ":" in last else f"{t}:latest")
    return out


def lookup(root: Path, key: str, tags: list[str]) -> dict[str, Any] | None:
    """The recorded result of an identical earlier build, if it still holds."""
    try:
        record = json.loads((root / "build-noop" / f"{key}.json").read_text())
    except (OSError, ValueError):
        return None
    own = _tag_keys(tags)
    if record.get("other_refs") != _other_refs(root, own):
        return None
    manifest = record.get("result", {}).get("manifest_digest", "")
    if (
        not manifest.startswith("sha256:")
        or not (root / "blobs" / "sha256" / manifest[7:]).is_file()
    ):
        return None
    try:
        refs = json.loads((root / "refs.json").read_text()).get("refs", {})
    except (OSError, ValueError):
        return None
    if any(refs.get(t) != manifest for t in own):
        return None
    urls = record.get("urls") or []
    if not isinstance(urls, list) or not _urls_unchanged(urls):
        return None
    return dict(record["result"])


def _verifiable(entry: Any) -> bool:
    """Whether a later request can tell ENTRY's URL still serves the same body."""
    return isinstance(entry, dict) and bool(
        entry.get("pinned")
        or entry.get("etag")
        or (entry.get("last_modified") and entry.get("stable"))
    )


def _urls_unchanged(urls: list[Any]) -> bool:
    """Every recorded URL asked again: True only if each says it has not changed."""
    ask = [u for u in urls if not (isinstance(u, dict) and u.get("pinned"))]
    if not all(_verifiable(u) for u in urls):
        return False
    if not ask:
        return True
    from slimage.builder.fetch import unchanged

    return all(unchanged(u) for u in ask)


def remember(
    root: Path,
    key: str,
    tags: list[str],
    result: dict[str, Any],
    urls: list[dict[str, Any]] | None = None,
) -> None:
    """Record a successful build (atomically; a failure to record only costs speed).
    URLS: what the build learnt of the URLs its ADD steps read (`BuildCache.url_inputs`);
    if one cannot be re-validated, no record is kept (and an older one is dropped)."""
    out = root / "build-noop"
    unique: dict[str, dict[str, Any]] = {}
    for u in urls or []:
        unique.setdefault(json.dumps(u, sort_keys=True), u)
    if not all(_verifiable(u) for u in unique.values()):
        try:
            (out / f"{key}.json").unlink()
        except OSError:
            pass
        return
    record: dict[str, Any] = {"result": result, "other_refs": _other_refs(root, _tag_keys(tags))}
    if unique:
        record["urls"] = list(unique.values())
    try:
        out.mkdir(parents=True, exist_ok=True)
        tmp = out / f".{key}.{os.getpid()}.{threading.get_ident()}.tmp"
        tmp.write_text(json.dumps(record))
        os.replace(tmp, out / f"{key}.json")
    except OSError:
        pass
