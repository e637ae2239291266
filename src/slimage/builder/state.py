"""A stage under construction, and the settings every step of a build shares.

`StageState` is an `ImageAssembler` (config data, layer descriptors, diff_ids, history,
the commit: the rules every image slimage makes follows) plus the build-time scope
BuildKit keeps beside it (ARGs in scope, the chain cache key, whether CMD was set).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from slimage.builder.cache import BuildCache
from slimage.builder.context import BuildContext
from slimage.builder.progress import Progress
from slimage.mutate import ImageAssembler, rfc3339
from slimage.oci.model import ImageConfig, Manifest
from slimage.store.store import Store

if TYPE_CHECKING:
    from slimage.builder.session import BuildSession
    from slimage.image import Layer
    from slimage.runtime.layerdirs import LayerDirs
    from slimage.runtime.ocirun import OciRuntime


DEFAULT_SHELL = ["/bin/sh", "-c"]


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
        return state.layer_objects()

    def now(self) -> str:
        if self.source_date_epoch is not None:
            return rfc3339(self.source_date_epoch)
        return rfc3339(time.time())


class StageState(ImageAssembler):
    """A stage's image, assembled as every image is, and BuildKit's scope beside it."""

    def __init__(self, store: Store, base: tuple[Manifest, ImageConfig] | None, key: str):
        super().__init__(store, base)
        self.key = key
        self.args: dict[str, str | None] = {}
        self.arg_order: list[str] = []
        self.cmd_set = False
        self.name = ""

    def derive(self) -> StageState:
        """A stage FROM this one: a copy of its image, with a fresh build-time scope."""
        new = copy.copy(self)
        new.data = copy.deepcopy(self.data)
        new.layers = list(self.layers)
        new.args, new.arg_order, new.cmd_set = {}, [], False
        return new

    @property
    def config(self) -> dict[str, Any]:
        """The runtime config (`runtime`), under the name the steps use."""
        return self.runtime

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

    def layer_objects(self) -> list[Layer]:
        from slimage.image import Layer

        return [
            Layer(d, diff_id, open_blob=_blob_opener(self.store, d.digest))
            for d, diff_id in zip(self.layers, self.diff_ids, strict=True)
        ]


def _blob_opener(store: Store, digest: str) -> Callable[[], BinaryIO]:
    return lambda: store.open_blob(digest)
