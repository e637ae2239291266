"""A stage under construction, and the settings every step of a build shares.

`StageState` is an image being built (config data, layer descriptors, diff_ids) plus the
build-time scope BuildKit keeps beside it (ARGs in scope, the chain cache key). It is kept
apart from `slimage.mutate.ImageAssembler`, which does the same bookkeeping for `base
build`, because the no-op rebuild path must not import the layer machinery (see
`rfc3339`); the two share no code yet.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from slimage.builder.cache import BuildCache
from slimage.builder.context import BuildContext
from slimage.builder.progress import Progress
from slimage.oci import mediatypes as mt
from slimage.oci.model import Descriptor, ImageConfig, Manifest
from slimage.store.store import Store

if TYPE_CHECKING:
    from slimage.builder.session import BuildSession
    from slimage.image import Layer
    from slimage.runtime.layerdirs import LayerDirs
    from slimage.runtime.ocirun import OciRuntime


DEFAULT_SHELL = ["/bin/sh", "-c"]


def rfc3339(ts: float) -> str:
    """Docker's config timestamp format (same as slimage.mutate.rfc3339, without importing
    the layer machinery on the no-op rebuild path)."""
    import datetime as _dt

    when = _dt.datetime.fromtimestamp(ts, _dt.UTC)
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    if when.microsecond:
        text += f".{when.microsecond:06d}".rstrip("0")
    return text + "Z"


@dataclass
class BuildSettings:
    store: Store
    context: BuildContext
    cache: BuildCache
    progress: Progress
    runtime_name: str | None = None
    network: str = "host"
    build_args: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, Path] = field(default_factory=dict)
    source_date_epoch: int | None = None
    compression: str = "gzip"
    # This build's mounts and containers (see builder.session); made in __post_init__ when
    # not given, closed by whoever runs the build.
    session: BuildSession | None = None

    def __post_init__(self) -> None:
        if self.session is None:
            from slimage.builder.session import BuildSession

            self.session = BuildSession(self.store, self.runtime_name)

    @property
    def layerdirs(self) -> LayerDirs:
        """Unpacked layers and overlay workspaces: only needed once a step really runs."""
        assert self.session is not None
        return self.session.layerdirs

    @property
    def runtime(self) -> OciRuntime:
        assert self.session is not None
        return self.session.runtime

    def layers_of(self, state: StageState) -> list[Layer]:
        """STATE's layers, opened from the store; layers taken from a `--cache-from`
        hit are fetched first, now that something reads them."""
        if self.cache.remote is not None:
            self.cache.remote.ensure_local(state.layers, state.diff_ids)
        return state.layer_objects(self.store)

    def now(self) -> str:
        if self.source_date_epoch is not None:
            return rfc3339(self.source_date_epoch)
        return rfc3339(time.time())


@dataclass
class StageState:
    data: dict[str, Any]
    layers: list[Descriptor]
    diff_ids: list[str]
    docker_types: bool
    key: str
    args: dict[str, str | None] = field(default_factory=dict)
    arg_order: list[str] = field(default_factory=list)
    cmd_set: bool = False
    name: str = ""

    @property
    def config(self) -> dict[str, Any]:
        return self.data.setdefault("config", {})

    def env_map(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for item in self.config.get("Env") or []:
            k, _, v = item.partition("=")
            out[k] = v
        return out

    def expand_env(self) -> dict[str, str]:
        """What `$VAR` sees: ARGs in scope, overridden by ENV."""
        out = {k: v for k, v in self.args.items() if v is not None}
        out.update(self.env_map())
        return out

    def set_env(self, key: str, value: str) -> None:
        env = list(self.config.get("Env") or [])
        for i, item in enumerate(env):
            if item.partition("=")[0] == key:
                env[i] = f"{key}={value}"
                break
        else:
            env.append(f"{key}={value}")
        self.config["Env"] = env

    def last_created(self) -> str | None:
        for h in reversed(self.data.get("history") or []):
            if h.get("created"):
                return h["created"]
        return self.data.get("created")

    def layer_objects(self, store: Store) -> list[Layer]:
        from slimage.image import Layer

        return [
            Layer(d, diff_id, open_blob=_blob_opener(store, d.digest))
            for d, diff_id in zip(self.layers, self.diff_ids, strict=True)
        ]

    def build(self, created: str | None) -> tuple[Manifest, ImageConfig]:
        data = self.data
        if created:
            data["created"] = created
        data["rootfs"] = {"type": "layers", "diff_ids": list(self.diff_ids)}
        config = ImageConfig.from_data(data)
        ctype = mt.DOCKER_CONFIG if self.docker_types else mt.OCI_CONFIG
        manifest = Manifest.build(
            Descriptor(ctype, config.digest, len(config.raw)), self.layers, docker=self.docker_types
        )
        return manifest, config


def _blob_opener(store: Store, digest: str) -> Callable[[], BinaryIO]:
    return lambda: store.open_blob(digest)
