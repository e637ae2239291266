"""Pure-ish image transformations: start from a base (or scratch), append layers and
history, change the runtime config, and commit the result to the store.

`base build`, `import` and `minify` produce their images this way, so the rules that keep
an image valid (one diff_id per layer, one history entry per step with empty_layer for
metadata-only steps, a fresh config digest) live in one place for them. The Dockerfile
builder keeps the same bookkeeping in `builder.state.StageState` instead, beside the
build-time scope BuildKit keeps (see that module for why).
"""

from __future__ import annotations

import copy
import datetime as _dt
from typing import Any, BinaryIO

from slimage.image import Image
from slimage.oci import mediatypes as mt
from slimage.oci.model import Descriptor, HistoryEntry, ImageConfig, Manifest, Platform
from slimage.store.images import DEFAULT_COMPRESSION, IngestResult, store_layer_tar
from slimage.store.store import LayerInfo, Store


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
        self, store: Store, base: Image | None = None, *, platform: Platform | None = None
    ):
        self.store = store
        if base is not None:
            self.data = copy.deepcopy(base.config.data)
            self.layers: list[Descriptor] = list(base.manifest.layers)
            self.docker_types = mt.is_docker(base.manifest.media_type)
        else:
            self.data = empty_config(platform)
            self.layers = []
            self.docker_types = False
        self.data.setdefault("config", {})
        self.data.setdefault("history", [])
        self.data.setdefault("rootfs", {"type": "layers", "diff_ids": []})

    @property
    def runtime(self) -> dict[str, Any]:
        """The mutable runtime config (Env, Cmd, Entrypoint, WorkingDir, User, ...)."""
        return self.data["config"]

    def add_layer(
        self,
        tar: BinaryIO,
        history: HistoryEntry,
        *,
        compression: str = DEFAULT_COMPRESSION,
    ) -> LayerInfo:
        info = store_layer_tar(self.store, tar, compression=compression)
        self.add_stored_layer(info, history)
        return info

    def add_stored_layer(self, info: LayerInfo, history: HistoryEntry) -> None:
        media_type = info.media_type
        if self.docker_types:
            media_type = mt.layer_media_type(mt.LAYER_COMPRESSION[media_type], docker=True)
        self.layers.append(Descriptor(media_type, info.blob, info.blob_size))
        self.data["rootfs"]["diff_ids"].append(info.diff_id)
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

    def commit(self, *, tags: list[str] | None = None, created: str | None = None) -> IngestResult:
        manifest, config = self.build(created=created)
        self.store.put_bytes(config.raw, config.digest)
        manifest_digest = self.store.put_bytes(manifest.raw)
        self.store.add_image(manifest_digest, tags=tags, added=rfc3339())
        return IngestResult(manifest_digest, config.digest, 0, 0)
