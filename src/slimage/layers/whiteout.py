"""Whiteout names, as the OCI image spec (layer.md, "Whiteouts") defines them.

A layer deletes a path of the layers below it by carrying an empty file `.wh.NAME` next to
where NAME was, and hides everything a lower layer had inside directory D by carrying
`D/.wh..wh..opq`. Other `.wh..wh.` names are AUFS bookkeeping and mean nothing to a reader.

`whiteout_victim` is THE rule for what a whiteout may name. Every place that gives a
whiteout meaning goes through it: the layer check at ingest (`load`, `import`, `pull`, the
builder), the extractor (`run`, `build FROM`, `ADD` of a tar) and the merged tree
(`analyze`, `history`, `diff`). One rule means a layer the store accepted is one every
consumer can apply, and a layer any consumer would misread never gets stored.
"""

from __future__ import annotations

from slimage.errors import UnsafeArchiveError

PREFIX = ".wh."
META_PREFIX = ".wh..wh."
OPAQUE = ".wh..wh..opq"


def is_whiteout(base: str) -> bool:
    return base.startswith(PREFIX)


def whiteout_target(base: str) -> str | None:
    """NAME for `.wh.NAME`; None for the opaque marker and other AUFS metadata names.

    Does not validate NAME: callers that act on it use `whiteout_victim`."""
    if base.startswith(META_PREFIX):
        return None
    return base[len(PREFIX) :]


def victim_problem(victim: str) -> str | None:
    """Why VICTIM (the NAME of `.wh.NAME`) cannot be a sibling of the whiteout, or None.

    A victim is one directory entry of the whiteout's own directory. Empty, `.` and `..`
    name the directory itself or its parent: `rmtree(dir/..)` deleted every image's
    unpacked layers (issue 9, C2), and an empty name turned the layer's directory into an
    overlay whiteout device. A `/` or NUL cannot be in one component."""
    if victim in ("", ".", ".."):
        return f"whiteout names {victim!r}, not an entry of its directory"
    if "/" in victim or "\0" in victim:
        return f"whiteout target {victim!r} is not a single path component"
    return None


def whiteout_victim(name: str, *, where: str) -> str | None:
    """For the layer entry NAME (root-relative) whose last component starts with `.wh.`:
    the base name it deletes, or None for the opaque marker and AUFS metadata names.

    Raises `UnsafeArchiveError` ("WHERE: 'NAME': problem", one line) for any victim that
    `victim_problem` refuses, whatever directory the whiteout sits in."""
    base = name.rpartition("/")[2]
    if not base.startswith(PREFIX):
        raise ValueError(f"{name!r} is not a whiteout")
    if base.startswith(META_PREFIX):
        return None  # .wh..wh..opq (opaque) or AUFS metadata: never deletes a sibling
    victim = base[len(PREFIX) :]
    problem = victim_problem(victim)
    if problem is not None:
        raise UnsafeArchiveError(f"{where}: {name!r}: {problem}")
    return victim


def whiteout_name(path: str) -> str:
    """The changeset entry that deletes PATH."""
    parent, _, base = path.rpartition("/")
    return f"{parent}/{PREFIX}{base}" if parent else PREFIX + base
