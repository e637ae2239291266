"""The blob worker pool shared by pull and push.

The first failure cancels the other transfers (each checks the event between chunks) and
is the error reported; Ctrl-C does the same, so an interrupted pull stops in a moment
instead of finishing every download first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any


class Cancelled(Exception):
    """Raised inside a worker that saw the cancel event; never the error reported."""


def run_all(
    fn: Callable[..., None],
    items: Sequence[tuple[Any, ...]],
    jobs: int,
    cancel: threading.Event,
    abort: Callable[[], None] | None = None,
) -> None:
    """Run FN(*item) for every item on JOBS threads; on the first error (or Ctrl-C) set
    CANCEL, call ABORT (to unblock workers stuck in I/O) and re-raise."""
    if not items:
        return
    pool = ThreadPoolExecutor(max_workers=max(1, min(jobs, len(items))))
    try:
        futures = [pool.submit(fn, *item) for item in items]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        failed = [f for f in done if f.exception() is not None]
        if failed:
            cancel.set()
            if abort:
                abort()
            for f in pending:
                f.cancel()
            wait(pending)
            errors = [f.exception() for f in failed]
            real = [e for e in errors if not isinstance(e, Cancelled)]
            raise (real or errors)[0]  # type: ignore[misc]
    except BaseException:
        cancel.set()
        if abort:
            abort()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
