"""slimage: build, move, inspect and slim container images without a daemon.

`import slimage` is the documented API (see `slimage.api` for an example). Names are
loaded on first use, so importing the package, which every CLI command does, costs
nothing.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# name -> module that defines it
_EXPORTS = {
    # images: open from any source, write to any sink, the store
    "Image": "slimage.image",
    "Layer": "slimage.image",
    "Store": "slimage.store.store",
    "open_image": "slimage.api",
    "write_image": "slimage.api",
    # build
    "BuildOptions": "slimage.builder.api",
    "BuildResult": "slimage.builder.api",
    "build": "slimage.builder.api",
    # look inside, and Dockerfiles
    "analyze": "slimage.api",
    "diff": "slimage.api",
    "lint": "slimage.api",
    "fix": "slimage.api",
    # bases and what would break on them
    "build_base": "slimage.api",
    "check_compat": "slimage.api",
    # errors a caller can cause
    "SlimageError": "slimage.errors",
    "UsageError": "slimage.errors",
    "NotFoundError": "slimage.errors",
    "InvalidImageError": "slimage.errors",
    "UnsafeArchiveError": "slimage.errors",
    "DockerfileError": "slimage.errors",
    "BuildError": "slimage.errors",
    "RegistryError": "slimage.errors",
}

__all__ = [
    "__version__",
    "Image",
    "Layer",
    "Store",
    "open_image",
    "write_image",
    "BuildOptions",
    "BuildResult",
    "build",
    "analyze",
    "diff",
    "lint",
    "fix",
    "build_base",
    "check_compat",
    "SlimageError",
    "UsageError",
    "NotFoundError",
    "InvalidImageError",
    "UnsafeArchiveError",
    "DockerfileError",
    "BuildError",
    "RegistryError",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'slimage' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:
    from slimage.api import (
        analyze,
        build_base,
        check_compat,
        diff,
        fix,
        lint,
        open_image,
        write_image,
    )
    from slimage.builder.api import BuildOptions, BuildResult, build
    from slimage.errors import (
        BuildError,
        DockerfileError,
        InvalidImageError,
        NotFoundError,
        RegistryError,
        SlimageError,
        UnsafeArchiveError,
        UsageError,
    )
    from slimage.image import Image, Layer
    from slimage.store.store import Store
