"""The source-agnostic image: a manifest, a config and lazily-opened layers.

Every source (store, docker-archive, OCI layout, registry) produces an `Image`; every sink
consumes one. This is go-containerregistry's v1.Image idea: a new format is one new module
and every command works with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol, runtime_checkable

from slimage.errors import InvalidImageError
from slimage.layers.compression import open_decompressed
from slimage.oci import mediatypes as mt
from slimage.oci.digest import VerifyingReader, chain_ids
from slimage.oci.model import Descriptor, ImageConfig, Manifest


@dataclass(frozen=True)
class BlobLocation:
    """Where a layer blob's bytes lie on the local disk: LENGTH bytes at OFFSET of PATH."""

    path: str
    offset: int
    length: int


@runtime_checkable
class LocatedLayer(Protocol):
    """The optional ability of a layer read from a local file (an archive member, a layout
    blob) to say where its stored bytes are, as go-containerregistry's `partial` declares
    optional abilities. Readers that can seek (analyze's in-place scan) or sendfile (push)
    use it; everything else streams `open_blob`. The bytes are NOT verified by this call:
    whoever reads them in place checks the digest (or lets the registry check it)."""

    def blob_location(self) -> BlobLocation | None: ...


def location_of(layer: Layer) -> BlobLocation | None:
    """LAYER's blob location when its type declares the ability and knows it."""
    if isinstance(layer, LocatedLayer):
        return layer.blob_location()
    return None


@dataclass
class Layer:
    """One changeset. `descriptor` names the blob as stored (maybe compressed); `diff_id`
    names the uncompressed tar. `open_blob` returns the stored bytes, already verified
    against `descriptor.digest` as they are read."""

    descriptor: Descriptor
    diff_id: str
    open_blob: Callable[[], BinaryIO] = field(repr=False)
    # Docker's SIZE for the layer, when the source already knows it (the store does).
    size: int | None = None

    @property
    def digest(self) -> str:
        return self.descriptor.digest

    def open_tar(self) -> BinaryIO:
        """The uncompressed tar stream, verified against diff_id at EOF."""
        stream, _ = open_decompressed(self.open_blob(), name=f"layer {self.descriptor.digest}")
        return VerifyingReader(stream, self.diff_id, name=f"layer {self.diff_id}")  # type: ignore[return-value]


@dataclass
class Image:
    manifest: Manifest
    config: ImageConfig
    layers: list[Layer]
    # Where it came from, for messages ("store", "archive foo.tar", ...).
    source: str = ""
    # Names it was known by at the source (tags from an archive's manifest.json, ...).
    repo_tags: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        """The image ID as Docker shows it: the config digest."""
        return self.config.digest

    @property
    def chain_ids(self) -> list[str]:
        return chain_ids(self.config.diff_ids)

    def check_consistent(self) -> None:
        """A manifest and a config that disagree on the layer count is a broken image."""
        if len(self.layers) != len(self.config.diff_ids):
            raise InvalidImageError(
                f"{self.source or 'image'}: manifest has {len(self.layers)} layers but the "
                f"config lists {len(self.config.diff_ids)} diff_ids"
            )
        for layer, diff_id in zip(self.layers, self.config.diff_ids, strict=True):
            if layer.diff_id != diff_id:
                raise InvalidImageError(f"{self.source}: layer diff_id mismatch for {layer.digest}")
            if layer.descriptor.media_type and layer.descriptor.media_type not in mt.LAYERS:
                raise InvalidImageError(
                    f"{self.source}: unknown layer media type {layer.descriptor.media_type!r}"
                )
