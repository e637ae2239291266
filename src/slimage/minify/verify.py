"""Verification: the minified image, run with the same probes, must answer the same.

A probe differs when its status differs, or its body digest does (unless the probe's path
was named with `--ignore-body`), or it failed outright. The second run is traced too: a
path the minified image looked for and did not find (ENOENT), but which the original has,
is almost always the cause, so the error names each one with the `--include-path` that
would keep it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from slimage.errors import SlimageError
from slimage.minify.probe import ProbeResult
from slimage.minify.trace import Trace


class VerificationError(SlimageError):
    """The minified image did not behave as the original did; nothing was tagged."""


@dataclass
class Verification:
    done: bool
    passed: bool = True
    differing: list[str] = field(default_factory=list)  # "GET :8080/x: status 200 -> 500"
    lacking: list[str] = field(default_factory=list)  # paths the minified image missed
    crashed: str = ""

    def message(self) -> str:
        parts = []
        if self.crashed:
            parts.append(self.crashed)
        if self.differing:
            parts.append("probes differ: " + "; ".join(self.differing))
        if self.lacking:
            shown = self.lacking[:8]
            more = f" (+{len(self.lacking) - 8} more)" if len(self.lacking) > 8 else ""
            fixes = [f"--include-path {p}" for p in shown if " (excluded by" not in p]
            parts.append(
                "the minified image looked for paths it lacks: "
                + ", ".join(shown)
                + more
                + ("; keep them with " + " ".join(fixes) if fixes else "")
            )
        return "verification failed: " + " | ".join(parts)


def compare(
    before: list[ProbeResult],
    after: list[ProbeResult],
    *,
    ignore_body: list[str],
) -> list[str]:
    out = []
    for a, b in zip(before, after, strict=False):
        path = a.name.split(" ", 1)[-1]
        path = "/" + path.split("/", 1)[1] if "/" in path else path
        b.differs = []
        if a.status != b.status and a.status is not None and b.status is not None:
            b.differs.append(f"status {a.status} -> {b.status}")
        elif not b.ok and a.ok:
            b.differs.append(f"failed ({b.error})")
        elif a.status != b.status:
            b.differs.append(f"status {a.status} -> {b.status}")
        elif a.body_sha256 != b.body_sha256 and path not in ignore_body:
            b.differs.append(f"body {a.body_sha256[:19]} -> {b.body_sha256[:19]}")
        if b.differs:
            out.append(f"{b.name}: {', '.join(b.differs)}")
    if len(after) < len(before):
        for a in before[len(after) :]:
            out.append(f"{a.name}: not run")
    return out


def lacking_paths(
    second: Trace,
    first: Trace,
    exists_in_original: Callable[[str], bool],
    kept: set[str],
) -> list[str]:
    """Paths the minified run missed that the original image has (and that the original
    run did not also miss: a program probing for optional files is not a failure)."""
    out = []
    for p in sorted(second.missing - first.missing):
        if p.startswith(("/proc/", "/sys/", "/dev/")) or p in kept:
            continue
        if exists_in_original(p):
            out.append(p)
    return out
