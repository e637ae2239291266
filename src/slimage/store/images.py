"""Moving `Image`s into and out of the store.

`ingest` is the one sink every source goes through (archives, layouts, registries, the
builder): a layer whose diff_id the store already holds is skipped, an uncompressed layer
is hashed, scanned and compressed in a single pass, and the image is recorded only once
all its blobs are in. `open_image` is the matching source.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from slimage.errors import DigestMismatchError, InvalidImageError, SlimageError
from slimage.image import Image, Layer
from slimage.layers.compression import Compressor, open_decompressed, sniff
from slimage.layers.safety import LayerChecker
from slimage.layers.tarscan import DockerSize, TarEntry, TarScanner
from slimage.oci import mediatypes as mt
from slimage.oci.model import Descriptor, ImageConfig, Manifest, Platform
from slimage.store.refs import parse_reference
from slimage.store.store import _CREATED, CHUNK, LayerInfo, Store

DEFAULT_COMPRESSION = os.environ.get("SLIMAGE_COMPRESSION", "gzip")


@dataclass
class IngestResult:
    manifest_digest: str
    image_id: str
    layers_added: int
    layers_skipped: int


def _scan_uncompressed(
    stream: BinaryIO, name: str, sinks: list[Callable[[bytes], object]]
) -> tuple[str, int, int, int]:
    """Read a tar once: diff_id, uncompressed size, Docker SIZE, entry count; each chunk is
    also handed to SINKS (e.g. a compressor feeding a blob writer)."""
    h = hashlib.sha256()
    sizer = DockerSize()
    checker = LayerChecker(name)  # refuses unsafe entries before anything is committed

    def on_entry(entry: TarEntry) -> None:
        checker.check(entry)
        sizer(entry)

    scanner = TarScanner(on_entry, name=name)
    total = 0
    while chunk := stream.read(CHUNK):
        h.update(chunk)
        scanner.feed(chunk)
        total += len(chunk)
        for sink in sinks:
            sink(chunk)
    scanner.close()
    return "sha256:" + h.hexdigest(), total, sizer.total, scanner.entries


def ingest_layer(
    store: Store,
    layer: Layer,
    *,
    compression: str = DEFAULT_COMPRESSION,
    docker_types: bool = False,
    label: str | None = None,
) -> tuple[LayerInfo, bool]:
    """Put one layer in the store (or find it there). Returns (info, newly_added).

    The layer is checked by `slimage.layers.safety` while it is scanned; a refused layer
    leaves no blob behind. LABEL names it in error messages (archive and layer)."""
    known = store.layer_info(layer.diff_id)
    if known is not None and store.claim(known.blob):
        return known, False
    name = label or f"layer {layer.diff_id}"
    opener = getattr(layer, "open_blob_unverified", None)
    if opener is not None and layer.descriptor.digest == layer.diff_id:
        # The blob is the plain tar: the diff_id computed below checks these very bytes
        # before anything is committed, so hashing them twice would only cost time.
        raw = opener()
    else:
        raw = layer.open_blob()
    head = raw.read(8)
    kind = sniff(head)

    class _Rejoin:
        def __init__(self) -> None:
            self.head = head

        def read(self, n: int = -1) -> bytes:
            if self.head:
                out, self.head = self.head, b""
                return out
            return raw.read(n)

    source = _Rejoin()
    if kind in ("gzip", "zstd"):
        # Keep the blob as it came (its digest may be what a registry knows it by), then
        # read it back decompressed for the diff_id and the sizes.
        with store.writer() as w:
            while chunk := source.read(CHUNK):
                w.write(chunk)
            blob_digest = w.commit()
            blob_size = w.size
        try:
            stream, _ = open_decompressed(store.open_blob(blob_digest), name=name)
            diff_id, usize, dsize, entries = _scan_uncompressed(stream, name, [])
        except BaseException:
            if w.created and _CREATED.get() is None:  # outside `ingest`, which rolls back
                store.rollback([blob_digest])
            raise
        media_type = mt.layer_media_type(kind, docker=docker_types)
    else:
        if kind in ("xz", "bzip2"):
            stream, _ = open_decompressed(source, name=name)  # type: ignore[arg-type]
        else:
            stream = source  # type: ignore[assignment]
        comp = Compressor(compression)
        with store.writer() as w:
            diff_id, usize, dsize, entries = _scan_uncompressed(
                stream,
                name,
                [lambda c: w.write(comp.compress(c))],
            )
            w.write(comp.flush())
            if diff_id != layer.diff_id:
                raise DigestMismatchError(f"{name}: content is {diff_id}, expected {layer.diff_id}")
            blob_digest = w.commit()
            blob_size = w.size
        media_type = mt.layer_media_type(compression, docker=docker_types)
    if diff_id != layer.diff_id:
        raise DigestMismatchError(f"{name}: content is {diff_id}, expected {layer.diff_id}")
    info = LayerInfo(
        diff_id=diff_id,
        blob=blob_digest,
        media_type=media_type,
        blob_size=blob_size,
        size=dsize,
        uncompressed_size=usize,
        entries=entries,
    )
    store.put_layer_info(info)
    return info, True


def store_layer_tar(
    store: Store,
    stream: BinaryIO,
    *,
    compression: str = DEFAULT_COMPRESSION,
    docker_types: bool = False,
    label: str = "layer",
) -> LayerInfo:
    """Store an uncompressed layer tar whose diff_id is not known yet (builder, bases).

    The tar is hashed, scanned and compressed in one pass. If the store already holds a
    layer with the same diff_id, that one is kept, so identical layers share one blob.
    """
    comp = Compressor(compression)
    with store.writer() as w:
        diff_id, usize, dsize, entries = _scan_uncompressed(
            stream,
            label,
            [lambda c: w.write(comp.compress(c))],
        )
        known = store.layer_info(diff_id)
        if known is not None and store.claim(known.blob):
            return known  # the writer is aborted on exit; nothing new is stored
        w.write(comp.flush())
        blob_digest = w.commit()
        blob_size = w.size
    info = LayerInfo(
        diff_id=diff_id,
        blob=blob_digest,
        media_type=mt.layer_media_type(compression, docker=docker_types),
        blob_size=blob_size,
        size=dsize,
        uncompressed_size=usize,
        entries=entries,
    )
    store.put_layer_info(info)
    return info


def index_stored_layer(store: Store, desc: Descriptor, diff_id: str) -> tuple[LayerInfo, bool]:
    """Read a layer blob that is already in the store (a pull keeps blobs as served, so
    nothing was decompressed yet) once: check it decompresses to DIFF_ID, and record its
    LayerInfo so that listings never scan it again. Returns (info, newly_recorded)."""
    known = store.layer_info(diff_id)
    if known is not None and known.blob == desc.digest and store.claim(desc.digest):
        return known, False
    store.claim(desc.digest)
    name = f"layer {desc.digest}"
    stream, _ = open_decompressed(store.open_blob(desc.digest), name=name)
    got, usize, dsize, entries = _scan_uncompressed(stream, name, [])
    if got != diff_id:
        raise DigestMismatchError(f"{name} uncompresses to {got}, the config says {diff_id}")
    if known is not None:
        return known, False  # same tar, stored under another compression: keep the first
    return record_layer(store, desc, diff_id, (usize, dsize, entries)), True


def record_layer(
    store: Store, desc: Descriptor, diff_id: str, sizes: tuple[int, int, int]
) -> LayerInfo:
    """Record the stored blob DESC as DIFF_ID's layer, with what reading it found
    (uncompressed bytes, Docker SIZE, entries), so that listings never scan it again."""
    usize, dsize, entries = sizes
    info = LayerInfo(
        diff_id=diff_id,
        blob=desc.digest,
        media_type=desc.media_type,
        blob_size=desc.size,
        size=dsize,
        uncompressed_size=usize,
        entries=entries,
    )
    store.put_layer_info(info)
    return info


def ingest(
    store: Store,
    image: Image,
    *,
    tags: list[str] | None = None,
    compression: str = DEFAULT_COMPRESSION,
) -> IngestResult:
    """Store IMAGE's blobs (skipping layers already present) and record it under TAGS.

    All or nothing: the tags are checked before any byte is written, and a failure
    removes exactly the blobs this ingest created (never one another process wrote or
    relies on meanwhile; see `Store.rollback`)."""
    image.check_consistent()
    for tag in tags or []:
        try:
            parse_reference(tag)
        except SlimageError as exc:
            raise InvalidImageError(f"{image.source or 'image'}: tag {exc}") from None
    with all_or_nothing(store):
        return _ingest(store, image, tags, compression)


@contextlib.contextmanager
def all_or_nothing(store: Store) -> Iterator[list[str]]:
    """Run one ingest: take the writer lock before anything is looked up (gc waits from
    here on), log the blobs it creates, and on any failure remove exactly those that
    nobody else needs. Yields the log. Nested uses share the outermost log."""
    outer = _CREATED.get()
    if outer is not None:
        yield outer
        return
    created: list[str] = []
    token = _CREATED.set(created)
    try:
        with store.writing():
            try:
                yield created
            except BaseException:
                store.rollback(created)
                raise
    finally:
        _CREATED.reset(token)


def _ingest(store: Store, image: Image, tags: list[str] | None, compression: str) -> IngestResult:
    docker_types = mt.is_docker(image.manifest.media_type)
    added = skipped = 0
    descriptors: list[Descriptor] = []
    for n, layer in enumerate(image.layers, 1):
        label = f"{image.source or 'image'}: layer {n} ({layer.diff_id[:19]}…)"
        info, new = ingest_layer(
            store, layer, compression=compression, docker_types=docker_types, label=label
        )
        added += new
        skipped += not new
        media_type = info.media_type
        if docker_types and not mt.is_docker(media_type):
            media_type = mt.layer_media_type(mt.LAYER_COMPRESSION[media_type], docker=True)
        elif not docker_types and mt.is_docker(media_type):
            media_type = mt.layer_media_type(mt.LAYER_COMPRESSION[media_type])
        descriptors.append(Descriptor(media_type, info.blob, info.blob_size))
    config_digest = store.put_bytes(image.config.raw, image.manifest.config.digest or None)
    if config_digest != image.manifest.config.digest:
        raise DigestMismatchError(
            f"config is {config_digest}, manifest says {image.manifest.config.digest}"
        )
    same = [(d.digest, d.size) for d in descriptors] == [
        (d.digest, d.size) for d in image.manifest.layers
    ] and image.manifest.raw
    if same:
        manifest = image.manifest
    else:
        manifest = Manifest.build(image.manifest.config, descriptors, docker=docker_types)
    manifest_digest = store.put_bytes(manifest.raw)
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    store.add_image(manifest_digest, tags=tags, added=now)
    return IngestResult(manifest_digest, image.id, added, skipped)


def open_image(store: Store, name: str, *, platform: Platform | None = None) -> Image:
    """The store as a source: an `Image` whose layers read (verified) from blobs."""
    digest = store.resolve(name)
    manifest = store.manifest_for(digest, platform)
    config = ImageConfig.parse(
        store.read_blob(manifest.config.digest),
        what=f"{name}: config {manifest.config.digest}",
    )
    diff_ids = config.diff_ids
    if len(diff_ids) != len(manifest.layers):
        raise InvalidImageError(f"{name}: manifest and config disagree on the layer count")
    layers = []
    for desc, diff_id in zip(manifest.layers, diff_ids, strict=True):
        info = store.layer_info(diff_id)
        layers.append(
            Layer(
                descriptor=desc,
                diff_id=diff_id,
                open_blob=functools.partial(store.open_blob, desc.digest),
                size=info.size if info else None,
            )
        )
    tags = [n for n, d in store.refs().items() if d == digest]
    return Image(manifest, config, layers, source=f"store {name}", repo_tags=tags)
