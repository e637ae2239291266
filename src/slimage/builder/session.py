"""`BuildSession`: everything one build has mounted or started, and the one place that
undoes it.

A build mounts overlay workspaces (one per RUN/COPY step, plus read-only views for
`--mount=from=`) and starts RUN containers. They used to sit in module-global registries
that a SIGTERM handler emptied, which made `build()` unusable twice at once in one process
(and a handler cannot be installed off the main thread). Now each build owns a session:
its workspaces are tracked by its own `LayerDirs`, its containers by its own `OciRuntime`,
and `close()` (run by `with`, also on KeyboardInterrupt) kills and unmounts only those.
Signals are the caller's business: the CLI turns SIGTERM/SIGHUP into KeyboardInterrupt,
which unwinds through here.
"""

from __future__ import annotations

import contextlib
import threading
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slimage.runtime.layerdirs import LayerDirs
    from slimage.runtime.ocirun import OciRuntime
    from slimage.store.store import Store


class BuildSession:
    def __init__(self, store: Store, runtime_name: str | None = None):
        self.store = store
        self.runtime_name = runtime_name
        self._layerdirs: LayerDirs | None = None
        self._runtime: OciRuntime | None = None
        self._lock = threading.Lock()
        self.closed = False

    @property
    def layerdirs(self) -> LayerDirs:
        """Unpacked layers and this build's overlay workspaces; made on first use, so a
        fully cached build never touches overlayfs."""
        with self._lock:
            if self._layerdirs is None:
                from slimage.runtime.layerdirs import LayerDirs

                self._layerdirs = LayerDirs(self.store)
            return self._layerdirs

    @property
    def runtime(self) -> OciRuntime:
        """The OCI runtime, which remembers the containers this build started."""
        with self._lock:
            if self._runtime is None:
                from slimage.runtime.ocirun import OciRuntime

                self._runtime = OciRuntime(self.runtime_name)
            return self._runtime

    def close(self) -> None:
        """Kill this build's containers, then unmount and delete its workspaces
        (containers first: a running one keeps its rootfs busy). Idempotent."""
        self.closed = True
        if self._runtime is not None:
            with contextlib.suppress(Exception):
                self._runtime.remove_started()
        if self._layerdirs is not None:
            self._layerdirs.close_workspaces()

    def __enter__(self) -> BuildSession:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
