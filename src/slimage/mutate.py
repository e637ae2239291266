"""Pure-ish image transformations: start from a base (or scratch), append layers and
history, change the runtime config, and commit the result to the store.

Every image slimage makes is assembled here: `base build`, `import` and `minify` use
`ImageAssembler` directly, and the Dockerfile builder's stage (`builder.state.StageState`)
is one, with BuildKit's build-time scope beside it. So the rules that keep an image valid
(one diff_id per layer, layer media types in the manifest's own vocabulary, one history
entry per step with empty_layer for metadata-only steps, a fresh config digest) live in one
place. The layer machinery (compression, tar scanning) is imported only when a layer is
really written: a fully cached build assembles its image without loading it.
"""

from __future__ import annotations

import copy
import datetime as _dt
from typing import TYPE_CHECKING, Any, BinaryIO

from slimage.oci import mediatypes as mt
from slimage.oci.digest import sha256_digest
from slimage.oci.model import Descriptor, HistoryEntry, ImageConfig, Manifest, Platform
from slimage.store.refs import parse_reference
from slimage.store.store import LayerInfo, Store

if TYPE_CHECKING:
    from slimage.image import Image
    from slimage.store.images import IngestResult


def rfc3339(ts: float | None = None) -> str:
    """Timestamps as Docker writes them in configs (UTC, seconds precision when whole)."""
    when = _dt.datetime.fromtimestamp(ts, _dt.UTC) if ts is not None else _dt.datetime.now(_dt.UTC)
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    if when.microsecond:
        text += f".{when.microsecond:06d}".rstrip("0")
    return text + "Z"


def empty_config(platform: Platform | None = None) -> dict[str, Any]:
    plat = platform or Platform.host()
    data: dict[str, Any] = {
        "architecture": plat.architecture,
        "os": plat.os,
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [],
    }
    if plat.variant:
        data["variant"] = plat.variant
    return data


class ImageAssembler:
    """Accumulates layers and config on top of a base image, then commits once.

    Layers go into the store as they are added (they are content-addressed, so an
    abandoned assembly leaves only blobs that gc will collect, never a ref).
    """

    def __init__(
        self,
        store: Store,
        base: Image | tuple[Manifest, ImageConfig] | None = None,
        *,
        platform: Platform | None = None,
    ):
        """BASE is an opened image, or its manifest and config alone when its layers are
        never read here (the builder's FROM); None starts from scratch for PLATFORM."""
        self.store = store
        if base is not None:
            manifest, config = base if isinstance(base, tuple) else (base.manifest, base.config)
            self.data = copy.deepcopy(config.data)
            self.layers: list[Descriptor] = list(manifest.layers)
            self.docker_types = mt.is_docker(manifest.media_type)
            # rootfs as Docker and BuildKit write it, whatever else the base's held.
            self.data["rootfs"] = {"type": "layers", "diff_ids": config.diff_ids}
        else:
            self.data = empty_config(platform)
            self.layers = []
            self.docker_types = False
        # A base may say `"config": null` or `"history": null` (the parser accepts it, as
        # Docker does); both are then empty, not a crash at the first ENV or layer.
        if not isinstance(self.data.get("config"), dict):
            self.data["config"] = {}
        if not isinstance(self.data.get("history"), list):
            self.data["history"] = []

    @property
    def runtime(self) -> dict[str, Any]:
        """The mutable runtime config (Env, Cmd, Entrypoint, WorkingDir, User, ...)."""
        return self.data["config"]

    @property
    def diff_ids(self) -> list[str]:
        """The layers' diff_ids, in order: the config's rootfs, kept current."""
        return self.data["rootfs"]["diff_ids"]

    def add_layer(
        self,
        tar: BinaryIO,
        history: HistoryEntry,
        *,
        compression: str | None = None,
    ) -> LayerInfo:
        """Store an uncompressed layer tar (COMPRESSION: the store's default) and add it."""
        from slimage.store import images

        info = images.store_layer_tar(
            self.store, tar, compression=compression or images.DEFAULT_COMPRESSION
        )
        self.add_stored_layer(info, history)
        return info

    def add_stored_layer(self, info: LayerInfo, history: HistoryEntry) -> None:
        self.add_layer_blob(
            Descriptor(info.media_type, info.blob, info.blob_size), info.diff_id, history
        )

    def add_layer_blob(self, desc: Descriptor, diff_id: str, history: HistoryEntry) -> None:
        """Add a layer whose blob is in the store already. Its media type is restated in
        this image's vocabulary (Docker's or OCI's, same compression): the store records a
        diff_id under the type it first came with, so without this an image's manifest
        would depend on what the store held before, and could mix the two."""
        want = mt.layer_media_type(
            mt.LAYER_COMPRESSION.get(desc.media_type, "gzip"), docker=self.docker_types
        )
        if want != desc.media_type:
            desc = Descriptor(want, desc.digest, desc.size)
        self.layers.append(desc)
        self.diff_ids.append(diff_id)
        history.empty_layer = False
        self.data["history"].append(history.to_dict())

    def add_history(self, history: HistoryEntry) -> None:
        """A metadata-only step (ENV, CMD, ...): history entry with empty_layer."""
        history.empty_layer = True
        self.data["history"].append(history.to_dict())

    def build(self, *, created: str | None = None) -> tuple[Manifest, ImageConfig]:
        if created is not None:
            self.data["created"] = created
        config = ImageConfig.from_data(self.data)
        config_type = mt.DOCKER_CONFIG if self.docker_types else mt.OCI_CONFIG
        manifest = Manifest.build(
            Descriptor(config_type, config.digest, len(config.raw)),
            self.layers,
            docker=self.docker_types,
        )
        return manifest, config

    def write(
        self, *, tags: list[str] | None = None, created: str | None = None
    ) -> tuple[Manifest, ImageConfig, str]:
        """Store the config and manifest and record the image under TAGS; returns both
        and the manifest digest. The store's image record is rewritten only when it would
        change, so rebuilding an image that is already there takes no store lock."""
        manifest, config = self.build(created=created)
        self.store.put_bytes(config.raw, config.digest)
        digest = self.store.put_bytes(manifest.raw, sha256_digest(manifest.raw))
        refs = self.store.refs()
        if digest not in self.store.images() or any(
            refs.get(parse_reference(t).name) != digest for t in tags or []
        ):
            self.store.add_image(digest, tags=tags, added=rfc3339())
        return manifest, config, digest

    def commit(self, *, tags: list[str] | None = None, created: str | None = None) -> IngestResult:
        from slimage.store.images import IngestResult

        _, config, digest = self.write(tags=tags, created=created)
        return IngestResult(digest, config.digest, 0, 0)
