"""The shared core of every step: expansion, history entries and the cached layer step.

A metadata step edits the config and adds an `empty_layer` history entry; a layer step
(COPY, ADD, WORKDIR, RUN) is looked up in the build cache by its key first, and only on a
miss runs in an overlay workspace whose upper dir becomes the layer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from slimage.builder import history as hist
from slimage.builder.cache import CacheEntry
from slimage.builder.planner import PlannedStage
from slimage.builder.state import DEFAULT_SHELL, BuildSettings, StageState
from slimage.dockerfile.expand import expand_word
from slimage.dockerfile.stages import platform_args
from slimage.oci.model import Descriptor, HistoryEntry
from slimage.store.store import Store

if TYPE_CHECKING:
    from slimage.runtime.layerdirs import Workspace
    from slimage.store.store import LayerInfo


class StageSteps:
    """What every step needs: the build's settings, the stage's state, variable
    expansion, history entries and the cached layer step. The step families
    (metadata, COPY/ADD, RUN) are mixins over this; `StageExecutor` combines them."""

    def __init__(
        self,
        settings: BuildSettings,
        stage: PlannedStage,
        resolve_stage: Callable[[str], StageState | None],
        meta_args: dict[str, str | None],
        escape: str,
        path: str,
        platform: Mapping[str, str] | None = None,
    ):
        self.s = settings
        # BuildKit's automatic platform args, which an `ARG TARGETARCH` picks up.
        self.platform_args = dict(platform) if platform is not None else platform_args()
        self.stage = stage
        self.resolve_stage = resolve_stage
        self.meta_args = meta_args
        self.escape = escape
        self.path = path
        self.total = 0
        self.state: StageState

    def _x(self, word: str) -> str:
        return expand_word(word, self.state.expand_env(), self.escape)

    def _meta(self, created_by: str) -> None:
        created = (
            self.s.now() if self.s.source_date_epoch is not None else self.state.last_created()
        )
        self.state.add_history(
            HistoryEntry(created=created, created_by=created_by, comment=hist.COMMENT)
        )

    def _add_layer(self, entry: CacheEntry, created_by: str) -> None:
        self.state.add_layer_blob(
            Descriptor.from_dict(entry.layer),
            entry.diff_id,
            HistoryEntry(created=entry.created, created_by=created_by, comment=hist.COMMENT),
        )

    def _layer_step(self, key: str, created_by: str, action: Callable[[Workspace], None]) -> None:
        self.state.key = key
        hit = self.s.cache.lookup(key)
        if hit is not None:
            self.s.progress.cached()
            self._add_layer(hit, created_by)
            return
        lowers = self.s.layerdirs.ensure_all(self.s.layers_of(self.state))
        with self.s.layerdirs.workspace(lowers) as ws:
            action(ws)
            ws.unmount()
            info = _store_upper(
                self.s.store,
                ws.upper,
                self.s.source_date_epoch,
                self.s.compression,
                self.state.docker_types,
            )
            self.s.layerdirs.adopt(info.diff_id, ws.upper)
        entry = CacheEntry(
            info.diff_id,
            Descriptor(info.media_type, info.blob, info.blob_size).to_dict(),
            self.s.now(),
        )
        self.s.cache.record(key, entry)
        self._add_layer(entry, created_by)
        self.s.progress.done()

    def _user_ids(self, rootfs: Path, spec: str | None) -> tuple[int, int]:
        from slimage.runtime.users import resolve_user

        u = resolve_user(rootfs, spec)
        return u.uid, u.gid

    def _shell(self) -> list[str]:
        return list(self.state.config.get("Shell") or DEFAULT_SHELL)


def _store_upper(
    store: Store, upper: Path, epoch: int | None, compression: str, docker_types: bool
) -> LayerInfo:
    """Stream the upper dir as a layer tar straight into the store (hash + compress in
    one pass): overlay whiteouts become `.wh.` entries, opaque dirs `.wh..wh..opq`."""
    from slimage.layers.writer import stream_tree
    from slimage.store.images import store_layer_tar

    stream = stream_tree(upper, overlay_upper=True, epoch=epoch)
    try:
        return store_layer_tar(store, stream, compression=compression, docker_types=docker_types)
    finally:
        stream.close()
