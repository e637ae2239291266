"""`slimage copy SRC DST` between registries, OCI layouts, docker archives and the store.

The store sits in the middle as a cache: a `docker://` source is pulled into it (only
the blobs it lacks), any other source is read through `open_source`, and a `docker://`
destination is pushed from it (so layers are sent as stored, already compressed, and
cross-repo mounts work). File destinations are written to a temporary name and renamed,
so a failed copy leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from slimage.errors import SlimageError, UsageError
from slimage.image import Image
from slimage.oci.model import Platform
from slimage.store.images import ingest, open_image
from slimage.store.refs import parse_reference
from slimage.store.store import Store
from slimage.transports.registry.names import DEFAULT_JOBS, RemoteRef
from slimage.transports.registry.pull import pull
from slimage.transports.registry.push import push
from slimage.transports.registry.report import ProgressSink, TransferReport

DOCKER = "docker://"


@dataclass
class CopyReport:
    source: str
    destination: str
    digest: str = ""
    image_id: str = ""
    steps: list[TransferReport] = field(default_factory=list)


def _split_ref(rest: str) -> tuple[str, str | None]:
    """`PATH[:REF]` as skopeo reads it: the path ends at the first `:` (a destination
    need not exist yet, so we cannot ask the file system)."""
    path, sep, ref = rest.partition(":")
    return path, (ref or None) if sep else None


def _open_source(spec: str, store: Store, platform: Platform | None) -> Image:
    from slimage.transports.sources import open_source

    return open_source(spec, store, platform=platform)


def copy(
    source: str,
    destination: str,
    *,
    store: Store | None = None,
    platform: Platform | None = None,
    insecure: Iterable[str] = (),
    jobs: int = DEFAULT_JOBS,
    progress: ProgressSink | None = None,
) -> CopyReport:
    if not destination.startswith((DOCKER, "oci:", "docker-archive:")):
        raise UsageError(
            f"unknown destination {destination!r} (use docker://REF, oci:DIR[:REF] or "
            "docker-archive:FILE[:REF])"
        )
    store = store or Store()
    report = CopyReport(source, destination)
    # 1. Get the image into reach (the store for docker://).
    if source.startswith(DOCKER):
        pulled = pull(
            store,
            source,
            platform=platform,
            insecure=insecure,
            jobs=jobs,
            progress=progress,
            tag=False,
        )
        report.steps.append(pulled)
        digest = pulled.digest
        image = open_image(store, digest, platform=platform)
        repository = RemoteRef.parse(source).ref.repository
    else:
        image = _open_source(source, store, platform)
        digest = ""
        repository = ""
        if image.repo_tags:
            with contextlib.suppress(SlimageError):
                repository = parse_reference(image.repo_tags[0]).repository
    report.image_id = image.id

    # 2. Write it out.
    if destination.startswith(DOCKER):
        if not digest:
            digest = ingest(store, image).manifest_digest
        pushed = push(store, digest, destination, insecure=insecure, jobs=jobs, progress=progress)
        report.steps.append(pushed)
        report.digest = pushed.digest
    elif destination.startswith("oci:"):
        from slimage.transports.oci_layout import write_layout

        path, ref = _split_ref(destination[4:])
        if not path:
            raise UsageError(f"{destination}: missing directory")
        if ref and ":" not in ref and "/" not in ref and repository:
            # skopeo's `oci:DIR:v1` names the entry `v1`; keep the full name alongside.
            ref = f"{repository}:{ref}"
        entries = write_layout(path, [(image, ref)])
        report.digest = entries[-1].digest if entries else ""
    elif destination.startswith("docker-archive:"):
        from slimage.transports.docker_archive import write_archive

        path, ref = _split_ref(destination[len("docker-archive:") :])
        if not path:
            raise UsageError(f"{destination}: missing file name")
        tags = [ref] if ref else list(image.repo_tags)
        target = Path(path)
        fd, tmp = tempfile.mkstemp(
            dir=target.parent if str(target.parent) else ".", prefix=f".{target.name}."
        )
        try:
            with os.fdopen(fd, "wb") as fh:
                write_archive(fh, [(image, tags)])
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        report.digest = image.manifest.digest
    else:
        raise UsageError(
            f"unknown destination {destination!r} (use docker://REF, oci:DIR[:REF] or "
            "docker-archive:FILE[:REF])"
        )
    return report
