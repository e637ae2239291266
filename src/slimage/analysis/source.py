"""Open what `analyze` and `diff` are pointed at, and learn where each layer's bytes lie.

The image comes from the transports (`open_source`: store refs, `docker save` archives of
either layout, OCI layouts, docker-daemon:). On top of that, when the image lives in a
local file, we find the byte range of each layer blob, so that an uncompressed layer can
be scanned in place, seeking over file data (see `slimage.fs.scan`). A source we cannot
locate (the store's compressed blobs, a gzipped archive) is simply streamed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slimage.fs.scan import FileSlice
from slimage.image import Image
from slimage.layers.tarscan import TarEntry, TarScanner, normalize_name
from slimage.oci.digest import hex_of
from slimage.transports.sources import _split_path_ref, open_source


@dataclass
class ScanTarget:
    image: Image
    slices: list[FileSlice | None] = field(default_factory=list)
    kind: str = "store"  # store, archive, oci-layout


def index_archive(path: str) -> dict[str, FileSlice]:
    """Member name -> byte range of every regular file (and symlink, resolved) of an
    uncompressed tar archive. Only headers are read."""
    members: dict[str, FileSlice] = {}
    links: dict[str, str] = {}  # name -> target, relative to the archive root
    fd = os.open(path, os.O_RDONLY)
    scanner: TarScanner

    def on_entry(entry: TarEntry) -> None:
        if entry.kind == "file":
            members[entry.name] = FileSlice(path, scanner.offset, entry.size)
        elif entry.kind == "hardlink":
            links[entry.name] = normalize_name(entry.linkname)
        elif entry.kind == "symlink":
            # Docker 25+ archives: <id>/layer.tar -> ../blobs/sha256/<hex>
            base = entry.name.rpartition("/")[0] if not entry.linkname.startswith("/") else ""
            links[entry.name] = os.path.normpath(os.path.join(base, entry.linkname)).lstrip("/")

    scanner = TarScanner(on_entry, name=path)
    try:
        scanner.scan_file(fd)
        scanner.close()
    finally:
        os.close(fd)
    for name, target in links.items():
        if target in members:
            members[name] = members[target]
    return members


def _read(where: FileSlice, limit: int = 8 << 20) -> bytes:
    if where.length > limit:
        return b""
    with open(where.path, "rb") as fh:
        fh.seek(where.offset)
        return fh.read(where.length)


def _archive_slices(image: Image, path: str) -> list[FileSlice | None]:
    with open(path, "rb") as fh:
        from slimage.layers.compression import sniff

        if sniff(fh.read(8)) != "none":
            return [None] * len(image.layers)  # a gzipped archive: streamed
    members = index_archive(path)
    out: list[FileSlice | None] = []
    by_blob = {name: m for name, m in members.items() if name.startswith("blobs/sha256/")}
    legacy: list[str] = []
    if "manifest.json" in members:
        try:
            entries = json.loads(_read(members["manifest.json"]))
            for e in entries:
                stem = str(e.get("Config", "")).rsplit("/", 1)[-1].removesuffix(".json")
                if f"sha256:{stem}" == image.id:
                    legacy = [normalize_name(n) for n in e.get("Layers") or []]
        except (ValueError, AttributeError, TypeError):
            legacy = []
    for i, layer in enumerate(image.layers):
        where = None
        if layer.digest.startswith("sha256:"):
            where = by_blob.get("blobs/sha256/" + hex_of(layer.digest))
        if where is None and len(legacy) == len(image.layers):
            where = members.get(legacy[i])
        out.append(where)
    return out


def _layout_slices(image: Image, root: Path) -> list[FileSlice | None]:
    out: list[FileSlice | None] = []
    for layer in image.layers:
        p = root / "blobs" / "sha256" / hex_of(layer.digest)
        try:
            out.append(FileSlice(str(p), 0, p.stat().st_size))
        except OSError:
            out.append(None)
    return out


def open_target(spec: str, *, store: Any = None) -> ScanTarget:
    """Anything `open_source` accepts; local files also get their layer byte ranges."""
    image = open_source(spec, store)
    path = spec
    for prefix in ("docker-archive:", "oci-archive:", "oci:"):
        if spec.startswith(prefix):
            path, _ = _split_path_ref(spec[len(prefix) :])
    path = os.path.expanduser(path)
    slices: list[FileSlice | None] = [None] * len(image.layers)
    kind = "store"
    if image.source and not image.source.startswith("store") and os.path.exists(path):
        if os.path.isdir(path):
            slices, kind = _layout_slices(image, Path(path)), "oci-layout"
        elif os.path.isfile(path):
            slices, kind = _archive_slices(image, path), "archive"
    return ScanTarget(image, slices, kind)
