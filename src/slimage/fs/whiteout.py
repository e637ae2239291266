"""Whiteout names, as the OCI image spec (layer.md, "Whiteouts") defines them.

A layer deletes a path of the layers below it by carrying an empty file `.wh.NAME` next to
where NAME was, and hides everything a lower layer had inside directory D by carrying
`D/.wh..wh..opq`. Other `.wh..wh.` names are AUFS bookkeeping and mean nothing to a reader.
"""

from __future__ import annotations

PREFIX = ".wh."
META_PREFIX = ".wh..wh."
OPAQUE = ".wh..wh..opq"


def is_whiteout(base: str) -> bool:
    return base.startswith(PREFIX)


def whiteout_target(base: str) -> str | None:
    """NAME for `.wh.NAME`; None for the opaque marker and other AUFS metadata names."""
    if base.startswith(META_PREFIX):
        return None
    return base[len(PREFIX) :]


def whiteout_name(path: str) -> str:
    """The changeset entry that deletes PATH."""
    parent, _, base = path.rpartition("/")
    return f"{parent}/{PREFIX}{base}" if parent else PREFIX + base
