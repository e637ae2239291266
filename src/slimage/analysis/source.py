"""Open what `analyze` and `diff` are pointed at, and learn where each layer's bytes lie.

The argument is a store reference, a `docker save` archive (legacy `layer.tar` dirs or the
Docker 25+ OCI layout inside) or an OCI layout directory. The image itself comes from the
transports (`slimage.transports.sources.open_source`) when they are installed, else from
a minimal reader here. On top of that we index the archive's members, so that an
uncompressed layer can be scanned in place, seeking over file data (see fs.scan).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from slimage.errors import ImageNotFoundError, InvalidImageError
from slimage.fs.scan import FileSlice
from slimage.image import Image, Layer
from slimage.layers.tarscan import TarEntry, TarScanner, normalize_name
from slimage.oci import mediatypes as mt
from slimage.oci.digest import VerifyingReader, hex_of
from slimage.oci.model import Descriptor, ImageConfig, Manifest, parse_manifest_or_index


@dataclass
class ScanTarget:
    image: Image
    slices: list[FileSlice | None] = field(default_factory=list)
    kind: str = "store"  # store, archive, oci-layout


class _SliceReader:
    """A read-only stream over a byte range of a file."""

    def __init__(self, where: FileSlice):
        self._fh = open(where.path, "rb")  # noqa: SIM115 - closed by close()
        self._fh.seek(where.offset)
        self._left = where.length

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0 or n > self._left:
            n = self._left
        data = self._fh.read(n)
        self._left -= len(data)
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._fh.close()


def index_archive(path: str) -> dict[str, FileSlice]:
    """Member name -> byte range, for every regular file of an (uncompressed) tar archive.
    Only headers are read."""
    members: dict[str, FileSlice] = {}
    fd = os.open(path, os.O_RDONLY)
    scanner: TarScanner

    def on_entry(entry: TarEntry) -> None:
        if entry.kind == "file":
            members[entry.name] = FileSlice(path, scanner.offset, entry.size)

    scanner = TarScanner(on_entry, name=path)
    try:
        scanner.scan_file(fd)
        scanner.close()
    finally:
        os.close(fd)
    return members


def _read_slice(where: FileSlice, limit: int = 8 << 20) -> bytes:
    if where.length > limit:
        raise InvalidImageError(f"{where.path}: metadata file over {limit} bytes")
    with open(where.path, "rb") as fh:
        fh.seek(where.offset)
        return fh.read(where.length)


def _layer(desc: Descriptor, diff_id: str, where: FileSlice, origin: str) -> Layer:
    def opener(where: FileSlice = where, digest: str = desc.digest) -> BinaryIO:
        raw = _SliceReader(where)
        if digest:
            return VerifyingReader(raw, digest, size=where.length, name=origin)  # type: ignore[arg-type,return-value]
        return raw  # type: ignore[return-value]

    return Layer(descriptor=desc, diff_id=diff_id, open_blob=opener)


def _oci_image(
    get: Any, label: str, index_raw: bytes, want: str | None
) -> tuple[Manifest, ImageConfig, list[str]]:
    doc = parse_manifest_or_index(index_raw, mt.OCI_INDEX)
    tags: list[str] = []
    while not isinstance(doc, Manifest):
        chosen = None
        if want:
            for d in doc.manifests:
                ref = (d.annotations or {}).get("io.containerd.image.name") or (
                    d.annotations or {}
                ).get("org.opencontainers.image.ref.name")
                if ref and (ref == want or ref.endswith("/" + want) or ref.split(":")[-1] == want):
                    chosen = d
        if chosen is None:
            if len(doc.manifests) == 1 or not want:
                chosen = doc.select() if len(doc.manifests) > 1 else doc.manifests[0]
            else:
                raise ImageNotFoundError(f"{label}: no image {want!r} in the index")
        name = (chosen.annotations or {}).get("io.containerd.image.name")
        if name:
            tags.append(name)
        doc = parse_manifest_or_index(get(chosen.digest), chosen.media_type)
    config = ImageConfig.parse(get(doc.config.digest))
    return doc, config, tags


def open_archive(path: str, want: str | None = None) -> ScanTarget:
    members = index_archive(path)
    label = f"archive {path}"
    if "manifest.json" in members:
        entries = json.loads(_read_slice(members["manifest.json"]))
        if not isinstance(entries, list) or not entries:
            raise InvalidImageError(f"{path}: manifest.json lists no image")
        entry = entries[0]
        if want:
            for e in entries:
                if want in (e.get("RepoTags") or []) or any(
                    t.split(":")[0] == want for t in e.get("RepoTags") or []
                ):
                    entry = e
                    break
        try:
            config_raw = _read_slice(members[entry["Config"]])
            layer_names = list(entry["Layers"])
        except (KeyError, TypeError) as exc:
            raise InvalidImageError(
                f"{path}: manifest.json names a missing member ({exc})"
            ) from exc
        config = ImageConfig.parse(config_raw)
        diff_ids = config.diff_ids
        if len(diff_ids) != len(layer_names):
            raise InvalidImageError(f"{path}: manifest.json and config disagree on layers")
        descs: list[Descriptor] = []
        layers: list[Layer] = []
        slices: list[FileSlice | None] = []
        for name, diff_id in zip(layer_names, diff_ids, strict=True):
            where = members.get(normalize_name(name))
            if where is None:
                raise InvalidImageError(f"{path}: layer {name} is missing from the archive")
            digest = ""
            if name.startswith("blobs/sha256/"):
                digest = "sha256:" + name.rsplit("/", 1)[1]
            desc = Descriptor(mt.DOCKER_LAYER, digest or diff_id, where.length)
            descs.append(desc)
            layers.append(
                _layer(Descriptor(desc.media_type, digest, where.length), diff_id, where, label)
            )
            slices.append(where)
        cdesc = Descriptor(mt.DOCKER_CONFIG, "sha256:" + hex_of(_sha(config_raw)), len(config_raw))
        manifest = Manifest.build(cdesc, descs, docker=True)
        image = Image(
            manifest, config, layers, source=label, repo_tags=list(entry.get("RepoTags") or [])
        )
        return ScanTarget(image, slices, "archive")
    if "index.json" in members:

        def get(digest: str) -> bytes:
            where = members.get("blobs/sha256/" + hex_of(digest))
            if where is None:
                raise InvalidImageError(f"{path}: blob {digest} is missing")
            return _read_slice(where)

        manifest, config, tags = _oci_image(get, label, _read_slice(members["index.json"]), want)
        return _from_manifest(
            manifest,
            config,
            tags,
            label,
            lambda d: members.get("blobs/sha256/" + hex_of(d)),
            "archive",
        )
    raise InvalidImageError(
        f"{path}: not a docker-archive or OCI archive (no manifest.json or index.json)"
    )


def _sha(data: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(data).hexdigest()


def _from_manifest(
    manifest: Manifest, config: ImageConfig, tags: list[str], label: str, locate: Any, kind: str
) -> ScanTarget:
    diff_ids = config.diff_ids
    if len(diff_ids) != len(manifest.layers):
        raise InvalidImageError(f"{label}: manifest and config disagree on the layer count")
    layers: list[Layer] = []
    slices: list[FileSlice | None] = []
    for desc, diff_id in zip(manifest.layers, diff_ids, strict=True):
        where = locate(desc.digest)
        if where is None:
            raise InvalidImageError(f"{label}: layer blob {desc.digest} is missing")
        layers.append(_layer(desc, diff_id, where, label))
        slices.append(where)
    return ScanTarget(Image(manifest, config, layers, source=label, repo_tags=tags), slices, kind)


def open_layout(path: str, want: str | None = None) -> ScanTarget:
    root = Path(path)
    label = f"OCI layout {path}"

    def blob(digest: str) -> FileSlice | None:
        p = root / "blobs" / "sha256" / hex_of(digest)
        try:
            return FileSlice(str(p), 0, p.stat().st_size)
        except OSError:
            return None

    def get(digest: str) -> bytes:
        where = blob(digest)
        if where is None:
            raise InvalidImageError(f"{path}: blob {digest} is missing")
        data = _read_slice(where)
        if _sha(data) != digest:
            raise InvalidImageError(f"{path}: blob {digest} does not match its digest")
        return data

    try:
        index_raw = (root / "index.json").read_bytes()
    except OSError as exc:
        raise InvalidImageError(f"{path}: not an OCI layout (no index.json)") from exc
    manifest, config, tags = _oci_image(get, label, index_raw, want)
    return _from_manifest(manifest, config, tags, label, blob, "oci-layout")


def open_target(spec: str, *, store: Any = None) -> ScanTarget:
    """SPEC is a path to an archive or an OCI layout (optionally `PATH:NAME` to pick one
    image), or a store reference."""
    path, want = spec, None
    for prefix in ("docker-archive:", "oci-archive:", "oci:", "oci-layout:"):
        if path.startswith(prefix):
            path = path[len(prefix) :]
    if not os.path.exists(path) and ":" in path:
        head, _, tail = path.rpartition(":")
        if os.path.exists(head):
            path, want = head, tail
    if os.path.isdir(path):
        return open_layout(path, want)
    if os.path.isfile(path):
        return open_archive(path, want)
    if "/" in spec and (spec.startswith((".", "/")) or spec.endswith((".tar", ".tar.gz"))):
        raise ImageNotFoundError(f"{spec}: no such file or directory")
    from slimage.store.images import open_image
    from slimage.store.store import Store

    image = open_image(store if store is not None else Store(), spec)
    return ScanTarget(image, [None] * len(image.layers), "store")
