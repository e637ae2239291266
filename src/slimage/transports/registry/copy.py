"""`slimage copy SRC DST`: one `open_source` and one `open_sink`, for every pair of kinds
(store, docker-archive, oci, oci-archive, docker-daemon, docker://).

A `docker://` source is pulled into the store first (only the blobs it lacks), so the
store works as a cache and remembers which repository each blob came from: a push of the
same image to another repository of that registry then mounts blobs instead of sending
them. Every other source is read where it lies and written straight to the sink, so an
uncompressed OCI layout reaches a registry with its layer digests unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from slimage.oci.model import Platform
from slimage.store.paths import default_root
from slimage.store.store import Store
from slimage.transports.registry.names import DEFAULT_JOBS, RemoteRef
from slimage.transports.registry.report import ProgressSink, TransferReport

DOCKER = "docker://"


@dataclass
class CopyReport:
    source: str
    destination: str
    digest: str = ""
    image_id: str = ""
    steps: list[TransferReport] = field(default_factory=list)


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
    from slimage.store.images import open_image
    from slimage.transports.registry.pull import pull
    from slimage.transports.sinks import open_sink
    from slimage.transports.sources import open_source

    store = store or Store(default_root())
    # The destination is checked before anything is pulled or read.
    sink = open_sink(destination, store, insecure=insecure, jobs=jobs, progress=progress)
    report = CopyReport(source, destination)
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
        image = open_image(store, pulled.digest, platform=platform)
        ref = RemoteRef.parse(source).ref
        # Known by its source name, as skopeo names what it copies.
        image.repo_tags = [ref.name] if ref.tag or not ref.digest else []
    else:
        image = open_source(source, store, platform=platform)
    report.image_id = image.id
    written = sink.write(image)
    report.steps.extend(written.steps)
    report.digest = written.digest
    return report
