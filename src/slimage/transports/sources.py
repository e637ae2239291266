"""One function to turn whatever the user typed into an `Image`.

    open_source("node-vanilla")                 store ref, tag or image ID
    open_source("./node-vanilla.tar")           docker save archive (either layout)
    open_source("./layout-dir")                 OCI layout directory
    open_source("docker-archive:PATH[:REF]")    explicit archive (REF picks one image)
    open_source("oci:DIR[:REF]")                explicit OCI layout (REF = ref.name)
    open_source("docker-daemon:REF")            the local Docker engine, via `docker save`
    open_source("docker://REGISTRY/REPO:TAG")   a registry: missing blobs are pulled first

The writing side mirrors this: `slimage.transports.sinks.open_sink(spec)`.

Paths win over store names only when they exist on disk and look like paths (contain a
`/` or end in .tar), so `debian` is always a store ref even if a file `debian` exists.
"""

from __future__ import annotations

import os
from pathlib import Path

from slimage.errors import ImageNotFoundError, InvalidImageError, NotFoundError, UsageError
from slimage.image import Image
from slimage.oci.model import Platform
from slimage.store.paths import default_root
from slimage.store.store import Store

PREFIXES = ("docker-archive:", "oci:", "docker-daemon:", "oci-archive:", "store:", "docker://")


def _split_path_ref(rest: str) -> tuple[str, str | None]:
    """`PATH[:REF]`: the longest prefix that exists on disk is the path."""
    if os.path.exists(rest):
        return rest, None
    idx = rest.rfind(":")
    while idx > 0:
        path, ref = rest[:idx], rest[idx + 1 :]
        if os.path.exists(path):
            return path, ref or None
        idx = rest.rfind(":", 0, idx)
    return rest, None


def _looks_like_path(spec: str) -> bool:
    return (
        spec.startswith((".", "/", "~"))
        or "/" in spec
        and os.path.exists(spec)
        or spec.endswith((".tar", ".tar.gz", ".tgz", ".tar.zst"))
    )


def _pick(images: list[Image], label: str) -> Image:
    if len(images) > 1:
        names = ", ".join(t for i in images for t in i.repo_tags) or f"{len(images)} untagged"
        raise UsageError(
            f"{label} holds {len(images)} images ({names}); name one as docker-archive:PATH:REF"
        )
    return images[0]


def open_path(path: str, ref: str | None = None, platform: Platform | None = None) -> Image:
    """An archive file or an OCI layout directory."""
    from slimage.transports.docker_archive import open_archive
    from slimage.transports.oci_layout import open_layout

    p = Path(path).expanduser()
    if p.is_dir():
        return _pick(open_layout(p, ref, platform), str(p))
    if not p.exists():
        raise NotFoundError(f"{path}: no such file or directory")
    return _pick(open_archive(p, platform=platform, ref=ref), str(p))


def _open_oci_archive(path: str, ref: str, platform: Platform | None) -> list[Image]:
    """`oci-archive:FILE:REF`: REF is the entry's ref.name (as in `oci:DIR:REF`), not a
    tag from a docker manifest.json."""
    from slimage.transports.oci_layout import ArchiveBlobs, images_from_index
    from slimage.transports.tarindex import TarIndex

    index = TarIndex.open(os.path.expanduser(path))
    if not index.has("index.json"):
        raise InvalidImageError(f"{path}: not an OCI archive (no index.json)")
    raw = index.read_member("index.json")
    return images_from_index(ArchiveBlobs(index), raw, label=path, platform=platform, ref=ref)


def open_source(
    spec: str, store: Store | None = None, *, platform: Platform | None = None
) -> Image:
    """Resolve SPEC (see the module docstring) to a lazily-read, verified `Image`."""
    from slimage.store.images import open_image

    if spec.startswith("docker-archive:") or spec.startswith("oci-archive:"):
        path, ref = _split_path_ref(spec.split(":", 1)[1])
        if Path(path).is_dir():
            raise InvalidImageError(f"{path}: is a directory; use oci:{path}")
        if ref and spec.startswith("oci-archive:"):
            return _pick(_open_oci_archive(path, ref, platform), path)
        return open_path(path, ref, platform)
    if spec.startswith("oci:"):
        path, ref = _split_path_ref(spec[4:])
        if not Path(path).is_dir():
            raise NotFoundError(f"{path}: no such OCI layout directory")
        return open_path(path, ref, platform)
    if spec.startswith("docker-daemon:"):
        from slimage.transports.docker_engine import open_daemon_image

        return open_daemon_image(spec.split(":", 1)[1], platform=platform)
    if spec.startswith("docker://"):
        from slimage.transports.registry import open_docker_ref

        return open_docker_ref(spec[len("docker://") :], store, platform=platform)
    if spec.startswith("store:"):
        return open_image(store or Store(default_root()), spec[6:], platform=platform)
    if _looks_like_path(spec) and os.path.exists(os.path.expanduser(spec)):
        return open_path(spec, None, platform)
    if spec.startswith(("/", "./", "../", "~")):
        raise NotFoundError(f"{spec}: no such file or directory")
    try:
        return open_image(store or Store(default_root()), spec, platform=platform)
    except (ImageNotFoundError, UsageError):
        if os.path.exists(spec):
            return open_path(spec, None, platform)
        raise ImageNotFoundError(f"No such image: {spec}") from None
