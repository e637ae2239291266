"""Open what `analyze` and `diff` are pointed at, and learn where each layer's bytes lie.

The image comes from the transports (`open_source`: store refs, `docker save` archives of
either layout, OCI layouts, docker-daemon:). A layer read from a local file declares where
its blob lies (`slimage.image.LocatedLayer`), so an uncompressed layer can be scanned in
place, seeking over file data (see `slimage.fs.scan`); the source has already indexed the
archive, so nothing is parsed twice. A layer that cannot say (a spooled pipe, a remote
source) or whose blob is compressed is simply streamed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from slimage.fs.scan import FileSlice
from slimage.image import Image, location_of
from slimage.layers.tarscan import TarEntry, TarScanner, normalize_name
from slimage.transports.sources import open_source


@dataclass
class ScanTarget:
    image: Image
    slices: list[FileSlice | None] = field(default_factory=list)


def layer_slices(image: Image) -> list[FileSlice | None]:
    """Where each layer's blob lies on disk, for the layers that can say so."""
    out: list[FileSlice | None] = []
    for layer in image.layers:
        loc = location_of(layer)
        out.append(FileSlice(loc.path, loc.offset, loc.length) if loc is not None else None)
    return out


def open_target(spec: str, *, store: Any = None) -> ScanTarget:
    """Anything `open_source` accepts; layers from local files come with their byte ranges."""
    image = open_source(spec, store)
    return ScanTarget(image, layer_slices(image))


def index_archive(path: str) -> dict[str, FileSlice]:
    """Member name -> byte range of every regular file (and symlink, resolved) of an
    uncompressed tar archive. Only headers are read. (A diagnostic helper; `open_target`
    uses the locations the transports already know.)"""
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
