"""Pull: bring an image from a registry into the store, moving only the missing blobs.

Order matters for crash safety. The config comes first (it is small and says how many
layers to expect), then the layers, concurrently, each streamed into the store's
BlobWriter with its expected digest and size, so a wrong or truncated blob never becomes
visible; then the manifest's exact bytes, and only then the ref. A pull killed at any
point leaves finished blobs in place (the next pull skips them) and no partial blob and
no dangling tag.

Layers are stored as the registry serves them (that is what keeps the manifest digest
identical to the registry's); each is still decompressed once, before anything is
tagged, for the same checks `load` makes (safe entries, diff_id) and its Docker SIZE:
while it downloads, from the bytes on their way to the disk (`layercheck`), so a layer is
read once and a refused one is never committed. Layers the store already has are checked
from the store (instantly when they were indexed before).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from slimage.errors import (
    BlobNotFoundError,
    DigestMismatchError,
    ImageNotFoundError,
    InvalidImageError,
    RegistryError,
    UsageError,
)
from slimage.oci import mediatypes as mt
from slimage.oci.model import Descriptor, ImageConfig, Index, Manifest, Platform
from slimage.store.paths import default_root
from slimage.store.refs import parse_reference
from slimage.store.store import Store
from slimage.transports.registry import seen
from slimage.transports.registry.client import (
    TRANSIENT_ERRORS,
    RegistryClient,
    TransientError,
    error_from_response,
)
from slimage.transports.registry.layercheck import StreamingLayerCheck, record_checked_layer
from slimage.transports.registry.manifests import fetch_manifest
from slimage.transports.registry.names import DEFAULT_JOBS, RemoteRef
from slimage.transports.registry.report import (
    DOWNLOADED,
    SKIPPED,
    BlobReport,
    NullProgress,
    ProgressSink,
    TransferReport,
)
from slimage.transports.registry.workers import Cancelled, run_all

if TYPE_CHECKING:
    from slimage.image import Image

CHUNK = 1 << 20
MAX_CONFIG_BYTES = 16 << 20


def _download(
    client: RegistryClient,
    store: Store,
    repository: str,
    desc: Descriptor,
    blob: BlobReport,
    progress: ProgressSink,
    cancel: threading.Event,
    where: str,
    diff_id: str | None = None,
) -> tuple[int, int, int] | None:
    """Stream one blob into the store, verified; resume with Range after a dropped
    connection, start over if the server ignores the Range.

    With DIFF_ID (a layer) the same bytes also go through `StreamingLayerCheck` as they
    arrive, and the blob is committed only if it is the blob the manifest names and then
    passes the check; returns the check's (uncompressed size, Docker SIZE, entries)."""
    path = f"/v2/{repository}/blobs/{desc.digest}"
    failures = 0
    writer = store.writer(desc.digest, desc.size)
    check = StreamingLayerCheck(desc, diff_id, where) if diff_id is not None else None

    def start_over() -> None:
        nonlocal writer, check
        writer.abort()
        writer = store.writer(desc.digest, desc.size)
        if check is not None:
            check.cancel()
            check = StreamingLayerCheck(desc, check.diff_id, where)

    try:
        while True:
            if cancel.is_set():
                raise Cancelled()
            have = writer.size
            headers = {"Range": f"bytes={have}-"} if have else {}
            resp = client.request("GET", path, headers=headers, expect=desc.size - have)
            if resp.status == 206 and have:
                start = resp.header("Content-Range").removeprefix("bytes ").split("-", 1)[0]
                if start.strip() != str(have):
                    resp.close()
                    start_over()
                    continue
            elif resp.status == 200:
                if have:  # the server ignored Range: start again from byte 0
                    start_over()
            elif resp.status == 416 and have:
                resp.close()
                start_over()
                continue
            elif resp.status == 404:
                resp.close()
                raise BlobNotFoundError(f"{where}: blob {desc.digest} is not in the registry")
            else:
                raise error_from_response(resp, f"{where}: blob {desc.digest}")
            try:
                while True:
                    if cancel.is_set():
                        resp.close()
                        raise Cancelled()
                    # read1: at most one recv, so a reset loses nothing already read
                    # (a buffered readinto can fill part of the buffer, then raise).
                    data = resp.read1(CHUNK)  # DeadlineError once the request's time is up
                    if not data:
                        break
                    writer.write(data)
                    if check is not None:
                        check.feed(data)
                    n = len(data)
                    blob.bytes_received += n
                    progress.advance(blob, n)
            except TRANSIENT_ERRORS as exc:
                resp.close()
                failures += 1
                blob.retries += 1
                if failures > client.retries:
                    raise TransientError(
                        f"{where}: blob {desc.digest}: connection kept failing "
                        f"({type(exc).__name__}) after {failures} attempts"
                    ) from None
                client._sleep_before_retry(failures - 1, None)
                continue
            except DigestMismatchError:
                resp.close()
                raise
            resp.release()
            if writer.size < desc.size:
                # A clean EOF short of the size (no Content-Length): resume like a drop.
                failures += 1
                blob.retries += 1
                if failures > client.retries:
                    raise DigestMismatchError(
                        f"{where}: blob {desc.digest} truncated at {writer.size} of {desc.size} bytes"
                    )
                continue
            break
        try:
            # A blob that is not the one named is reported as such, before its content.
            writer.verify()
        except DigestMismatchError as exc:
            raise _refused(where, desc, exc) from None
        sizes = check.finish() if check is not None else None  # refused: never committed
        try:
            writer.commit()
        except DigestMismatchError as exc:
            raise _refused(where, desc, exc) from None
        return sizes
    finally:
        if check is not None:
            check.cancel()
        if writer.digest is None:
            writer.abort()


def _refused(where: str, desc: Descriptor, exc: DigestMismatchError) -> DigestMismatchError:
    return DigestMismatchError(f"{where}: refused blob {desc.digest}: {exc}; nothing was stored")


def _fetch_small_blob(
    client: RegistryClient,
    store: Store,
    repository: str,
    desc: Descriptor,
    blob: BlobReport,
    where: str,
) -> bytes:
    if desc.size > MAX_CONFIG_BYTES:
        raise InvalidImageError(f"{where}: config blob is {desc.size} bytes; refusing")
    if store.claim(desc.digest):  # held against gc and rollbacks until add_image
        blob.action = SKIPPED
        return store.read_blob(desc.digest)
    _download(client, store, repository, desc, blob, NullProgress(), threading.Event(), where)
    blob.action = DOWNLOADED
    return store.read_blob(desc.digest)


def _select(
    client: RegistryClient,
    rref: RemoteRef,
    platform: Platform | None,
    report: TransferReport,
) -> tuple[bytes, Manifest]:
    fetched = fetch_manifest(client, rref.repository, rref.reference, where=rref.display)
    doc = fetched.doc
    depth = 0
    while isinstance(doc, Index):
        depth += 1
        if depth > 4:
            raise InvalidImageError(f"{rref.display}: index nesting too deep")
        report.index_digest = report.index_digest or fetched.digest
        try:
            desc = doc.select(platform)
        except InvalidImageError as exc:
            raise ImageNotFoundError(f"{rref.display}: {exc}") from None
        if desc.size > 4 * 1024 * 1024:
            raise InvalidImageError(f"{rref.display}: child manifest {desc.digest} is over 4 MiB")
        report.platform = str(desc.platform) if desc.platform else None
        fetched = fetch_manifest(
            client, rref.repository, desc.digest, where=f"{rref.display}@{desc.digest}"
        )
        doc = fetched.doc
    report.digest = fetched.digest
    report.media_type = doc.media_type
    report.manifest_size = len(fetched.raw)
    return fetched.raw, doc


def pull(
    store: Store,
    reference: str,
    *,
    platform: Platform | None = None,
    insecure: Iterable[str] = (),
    jobs: int = DEFAULT_JOBS,
    progress: ProgressSink | None = None,
    tag: bool = True,
    client: RegistryClient | None = None,
) -> TransferReport:
    """Pull REFERENCE (`[docker://]host/repo[:tag|@digest]`) into STORE.

    Every layer passes the same check `load` applies (`slimage.layers.safety` while the
    tar is scanned, and its diff_id against the config) before the manifest is stored
    and the tag written: a registry is just another untrusted source, and a layer that
    `load` would refuse must not become an image that `images` or `run` trip over later.
    On any failure the blobs this pull wrote are removed again (`Store.rollback`: never
    one another process claimed or an image uses), so a refused pull leaves no ref, no
    image and no orphan blob."""
    written: list[str] = []
    try:
        return _pull(
            store,
            reference,
            platform=platform,
            insecure=insecure,
            jobs=jobs,
            progress=progress,
            tag=tag,
            client=client,
            written=written,
        )
    except BaseException:
        store.rollback(written)
        raise


def _pull(
    store: Store,
    reference: str,
    *,
    platform: Platform | None,
    insecure: Iterable[str],
    jobs: int,
    progress: ProgressSink | None,
    tag: bool,
    client: RegistryClient | None,
    written: list[str],
) -> TransferReport:
    started = time.monotonic()
    rref = RemoteRef.parse(reference)
    progress = progress or NullProgress()
    report = TransferReport("pull", rref.display, rref.registry, rref.repository)
    report.tag = rref.ref.tag or (None if rref.ref.digest else "latest")
    client = client or RegistryClient(
        rref.registry, scopes=[f"repository:{rref.repository}:pull"], insecure=insecure
    )
    raw, manifest = _select(client, rref, platform, report)
    where = rref.display

    config_report = BlobReport(
        manifest.config.digest, manifest.config.size, manifest.config.media_type, "config"
    )
    report.blobs.append(config_report)
    config_raw = _fetch_small_blob(
        client, store, rref.repository, manifest.config, config_report, where
    )
    if config_report.action == DOWNLOADED:
        written.append(manifest.config.digest)
    config = ImageConfig.parse(config_raw, what=f"{where}: config {manifest.config.digest}")
    if len(config.diff_ids) != len(manifest.layers):
        raise InvalidImageError(
            f"{where}: manifest has {len(manifest.layers)} layers but the config lists "
            f"{len(config.diff_ids)} diff_ids"
        )
    if platform is not None and report.index_digest is None and config.platform.architecture:
        if not platform.matches(config.platform):
            raise ImageNotFoundError(
                f"{where}: image is {config.platform}, not the requested {platform}"
            )
    report.image_id = config.digest
    if report.platform is None and config.platform.architecture:
        report.platform = str(config.platform)

    todo: list[tuple[Descriptor, BlobReport]] = []
    seen_digests: set[str] = set()
    for desc in manifest.layers:
        if desc.media_type not in mt.LAYERS:
            raise InvalidImageError(
                f"{where}: layer {desc.digest} has media type {desc.media_type!r}"
            )
        blob = BlobReport(desc.digest, desc.size, desc.media_type, "layer")
        report.blobs.append(blob)
        if desc.digest in seen_digests or store.claim(desc.digest):
            blob.action = SKIPPED
            progress.begin(blob)
            progress.end(blob)
            continue
        seen_digests.add(desc.digest)
        todo.append((desc, blob))

    cancel = threading.Event()

    diff_of = dict(zip((d.digest for d in manifest.layers), config.diff_ids, strict=True))

    checked: set[tuple[str, str]] = set()

    def work(desc: Descriptor, blob: BlobReport) -> None:
        progress.begin(blob)
        diff_id = diff_of[desc.digest]
        # Checked while it streams in (one pass): committed only once it passed.
        sizes = _download(
            client, store, rref.repository, desc, blob, progress, cancel, where, diff_id
        )
        written.append(desc.digest)
        blob.action = DOWNLOADED
        assert sizes is not None
        record_checked_layer(store, desc, diff_id, sizes)
        checked.add((desc.digest, diff_id))
        progress.end(blob)

    todo.sort(key=lambda t: -t[0].size)  # big first: the longest transfer sets the pace
    run_all(work, todo, jobs, cancel, client.transport.abort)

    for desc, diff_id in zip(manifest.layers, config.diff_ids, strict=True):
        if (desc.digest, diff_id) not in checked:
            # Already in the store: instant if indexed, else the stored blob is read once.
            _check_layer(store, desc, diff_id, where)
    store.put_bytes(raw, report.digest)
    tags = [rref.ref.name] if tag and not (rref.ref.digest and not rref.ref.tag) else []
    store.add_image(report.digest, tags=tags, added=_now())
    seen.record(
        store,
        rref.registry,
        rref.repository,
        [manifest.config.digest, *(d.digest for d in manifest.layers)],
    )
    report.total()
    report.seconds = round(time.monotonic() - started, 3)
    fresh = any(b.action == DOWNLOADED for b in report.blobs)
    report.status = (
        f"Downloaded newer image for {rref.display}"
        if fresh
        else f"Image is up to date for {rref.display}"
    )
    return report


def _check_layer(store: Store, desc: Descriptor, diff_id: str, where: str) -> None:
    """The ingest-time layer check `load` uses, on a blob already in the store: unsafe
    entries, a diff_id that is not the config's, a corrupt stream. Its message gains the
    reference, so it names the image, the layer and the entry."""
    from slimage.store.images import index_stored_layer

    try:
        index_stored_layer(store, desc, diff_id)
    except InvalidImageError as exc:
        raise type(exc)(f"{where}: {exc}") from None


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def index_image_layers(store: Store, manifest: Manifest, config: ImageConfig) -> int:
    """Decompress each stored layer once to check its diff_id against the config and
    record its LayerInfo (Docker SIZE, entries). Returns how many were newly indexed."""
    from slimage.store.images import index_stored_layer

    done = 0
    for desc, diff_id in zip(manifest.layers, config.diff_ids, strict=True):
        done += index_stored_layer(store, desc, diff_id)[1]
    return done


def pull_if_missing(
    store: Store,
    ref: str,
    *,
    platform: Platform | None = None,
    insecure: Iterable[str] = (),
    progress: ProgressSink | None = None,
) -> str:
    """The manifest digest of REF in the store, pulling it first if the store lacks it.
    For the builder's FROM and any command that takes an image name."""
    text = ref.removeprefix("docker://")
    with contextlib.suppress(ImageNotFoundError, UsageError):
        return store.resolve(text)
    try:
        parse_reference(text)
    except UsageError:
        raise ImageNotFoundError(f"No such image: {ref}") from None
    if os.environ.get("SLIMAGE_NO_PULL"):
        # Hermetic runs (tests, air-gapped builds) say so, and nothing is fetched.
        raise ImageNotFoundError(f"No such image: {ref} (not pulled: SLIMAGE_NO_PULL is set)")
    try:
        report = pull(store, text, platform=platform, insecure=insecure, progress=progress)
    except ImageNotFoundError:
        raise
    except RegistryError as exc:
        raise ImageNotFoundError(f"No such image: {ref} (and pulling it failed: {exc})") from None
    return report.digest


def open_docker_ref(
    ref: str,
    store: Store | None = None,
    *,
    platform: Platform | None = None,
    insecure: Iterable[str] = (),
    progress: ProgressSink | None = None,
) -> Image:
    """`docker://REF` as an `Image` for `open_source`: pulled (missing blobs only) into the
    store, then read from there, so every command gets verified, cached layers."""
    from slimage.store.images import open_image

    store = store or Store(default_root())
    report = pull(store, ref, platform=platform, insecure=insecure, progress=progress)
    return open_image(store, report.digest, platform=platform)
