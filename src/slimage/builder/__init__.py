"""The daemonless builder: Dockerfile stages planned, executed under runc on overlayfs,
cached, and committed as an image (see `slimage.builder.api.build`).

The names below load on first use, so `slimage.builder.noop` (the no-op rebuild check,
stdlib only) can be imported without the builder."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from slimage.builder.api import BuildOptions, BuildResult, build

__all__ = ["BuildOptions", "BuildResult", "build"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from slimage.builder import api

        return getattr(api, name)
    raise AttributeError(f"module 'slimage.builder' has no attribute {name!r}")
