"""Runtime fixtures: the builder's session store (bases from Docker) and the port-3000 lock."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator

from tests.builder.conftest import build_store, builder_ready  # noqa: F401  (fixtures)

# Several helpers' tests serve the seed app on localhost:3000; whoever binds it holds this.
PORT_LOCK = "/tmp/slimage-port-3000.lock"


@contextlib.contextmanager
def port_3000() -> Iterator[None]:
    with open(PORT_LOCK, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
