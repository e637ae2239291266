"""Resolving a FROM's base image: from the store, else pulled (unless SLIMAGE_NO_PULL).

Kept alone because the no-op rebuild path and `COPY --from=<image>` / `--mount=from=`
need only this, not the step machinery.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from slimage.errors import BuildError, ImageNotFoundError
from slimage.oci.model import ImageConfig, Manifest
from slimage.store.store import Store

if TYPE_CHECKING:
    from slimage.image import Image


def base_config(store: Store, name: str) -> tuple[Manifest, ImageConfig]:
    """A base image's manifest and config, without opening its layers (the no-op
    rebuild path needs only these). A base the store lacks is pulled, as `docker build`
    would; SLIMAGE_NO_PULL=1 keeps a build hermetic."""
    from slimage.errors import InvalidImageError

    digest = _resolve_or_pull(store, name)
    manifest = store.manifest_for(digest)
    config = ImageConfig.parse(store.read_blob(manifest.config.digest))
    if len(config.diff_ids) != len(manifest.layers):
        raise InvalidImageError(f"{name}: manifest and config disagree on the layer count")
    return manifest, config


def _resolve_or_pull(store: Store, name: str) -> str:
    try:
        return store.resolve(name)
    except ImageNotFoundError:
        pass
    from slimage.transports.registry import pull_if_missing

    try:
        return pull_if_missing(store, name)
    except ImageNotFoundError as exc:
        raise BuildError(
            f"base image {name!r} is not in the store and could not be pulled ({exc}); bring "
            f"it in with `slimage load` or `slimage pull`, or from Docker with "
            f"`docker save {name} | slimage load`"
        ) from None


def open_base(store: Store, name: str) -> Image:
    from slimage.store.images import open_image

    return open_image(store, _resolve_or_pull(store, name))
