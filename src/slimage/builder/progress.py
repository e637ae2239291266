"""Build progress in BuildKit's plain style: numbered steps, CACHED, timings, RUN output.

`#5 [build 3/4] RUN npm install` / `#5 CACHED` / `#5 DONE 2.1s`. Output of a RUN is
shown as it comes (prefixed with the step number and elapsed time), and a failing RUN's
last lines are repeated with the error, as `docker build` does.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class Progress:
    def __init__(self, stream: TextIO | None = None, *, quiet: bool = False):
        self.stream = stream if stream is not None else sys.stderr
        self.quiet = quiet
        self.n = 0
        self.t0 = 0.0
        self.start_all = time.monotonic()
        self._partial = b""
        self.cached_steps = 0

    def _w(self, text: str) -> None:
        if not self.quiet:
            self.stream.write(text)
            self.stream.flush()

    def step(self, name: str) -> int:
        self.n += 1
        self.t0 = time.monotonic()
        self._w(f"#{self.n} {name}\n")
        return self.n

    def cached(self) -> None:
        self.cached_steps += 1
        self._w(f"#{self.n} CACHED\n\n")

    def output(self, chunk: bytes) -> None:
        data = self._partial + chunk
        *lines, self._partial = data.split(b"\n")
        el = time.monotonic() - self.t0
        for line in lines:
            self._w(f"#{self.n} {el:.3f} {line.decode(errors='replace')}\n")

    def _flush_partial(self) -> None:
        if self._partial:
            self.output(b"\n")

    def done(self) -> None:
        self._flush_partial()
        self._w(f"#{self.n} DONE {time.monotonic() - self.t0:.1f}s\n\n")

    def error(self, message: str, tail: list[str] | None = None) -> None:
        """A failed step; with -q the output was not shown, so its tail is (as docker does)."""
        self._flush_partial()
        if tail and self.quiet:
            self.stream.write("".join(f"#{self.n} {line}\n" for line in tail))
        if self.quiet:
            self.stream.write(f"#{self.n} ERROR: {message}\n")
            self.stream.flush()
        else:
            self._w(f"#{self.n} ERROR: {message}\n")

    def info(self, text: str) -> None:
        self._w(text + "\n")
