"""Push: send any `Image` (or a store entry) to a registry, uploading only what it lacks.

For each blob: HEAD first (present -> skipped); else, if the store remembers the blob in
another repository of the same registry, ask for a cross-repo mount (no bytes move);
else upload it, in one PUT or in PATCH chunks. Blobs go as they are, never recompressed,
so every digest is kept: a layer that lies in a local file (a store blob, a layout blob,
an archive member, see `slimage.image.LocatedLayer`) is a `sendfile` of that file region;
any other layer is first copied, verified, to a temp file. The manifest goes last, as its
exact bytes, so the registry never holds a manifest whose blobs are missing and the pushed
digest equals the local one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from slimage.errors import (
    AuthError,
    BlobNotFoundError,
    InvalidImageError,
    RegistryError,
)
from slimage.image import Image, location_of
from slimage.oci.digest import sha256_digest
from slimage.oci.model import Descriptor, Index, Manifest, parse_manifest_or_index
from slimage.store.store import Store
from slimage.transports.registry import seen
from slimage.transports.registry.client import (
    FileBody,
    RegistryClient,
    RegistryHTTPError,
    Response,
    TransientError,
    error_from_response,
)
from slimage.transports.registry.names import DEFAULT_JOBS, RemoteRef
from slimage.transports.registry.report import (
    MOUNTED,
    SKIPPED,
    UPLOADED,
    BlobReport,
    NullProgress,
    ProgressSink,
    TransferReport,
)
from slimage.transports.registry.workers import Cancelled, run_all

MAX_UPLOAD_ATTEMPTS = 3


def _location(client: RegistryClient, resp_location: str, where: str) -> str:
    if not resp_location:
        raise RegistryError(f"{where}: upload started without a Location")
    return urllib.parse.urljoin(client.url("/v2/"), resp_location)


def _with_digest(location: str, digest: str) -> str:
    sep = "&" if "?" in location else "?"
    return f"{location}{sep}digest={urllib.parse.quote(digest, safe=':')}"


@dataclass
class BlobBytes:
    """The bytes of one blob to upload: a region of a local file (sent with sendfile,
    resumable by offset) or, for a config, the bytes themselves."""

    size: int
    path: str = ""
    offset: int = 0
    data: bytes | None = None

    def part(self, offset: int, n: int) -> FileBody | bytes:
        if self.data is not None:
            return self.data[offset : offset + n]
        return FileBody(self.path, self.offset + offset, n)


# Where the bytes of a blob named by a descriptor are (called only when it must be sent).
BlobLocator = Callable[[Descriptor], BlobBytes]


def store_locator(store: Store, where: str) -> BlobLocator:
    def locate(desc: Descriptor) -> BlobBytes:
        if not store.has_blob(desc.digest):
            raise BlobNotFoundError(f"{where}: blob {desc.digest} is not in the store")
        return BlobBytes(desc.size, str(store.blob_path(desc.digest)))

    return locate


class _ImageBlobs:
    """Blob bytes of an `Image` from any source, without going through the store."""

    def __init__(self, image: Image, store: Store | None, where: str, tmp_dir: str):
        self.image = image
        self.store = store
        self.where = where
        self.tmp_dir = tmp_dir
        self.layers = {layer.digest: layer for layer in image.layers}

    def __call__(self, desc: Descriptor) -> BlobBytes:
        if desc.digest == self.image.manifest.config.digest:
            return BlobBytes(len(self.image.config.raw), data=self.image.config.raw)
        layer = self.layers.get(desc.digest)
        if layer is None:
            raise BlobNotFoundError(f"{self.where}: blob {desc.digest} is not in the image")
        loc = location_of(layer)
        if loc is not None and loc.length == desc.size:
            # Read in place, unverified here: the registry checks the digest on PUT.
            return BlobBytes(desc.size, loc.path, loc.offset)
        if self.store is not None and self.store.has_blob(desc.digest):
            return BlobBytes(desc.size, str(self.store.blob_path(desc.digest)))
        # A stream only (a spooled pipe, a remote source): copy it once, verified, to a
        # file, so that a retried or chunked upload can seek.
        fd, tmp = tempfile.mkstemp(dir=self.tmp_dir, prefix="blob-")
        with os.fdopen(fd, "wb") as out, contextlib.closing(layer.open_blob()) as src:
            shutil.copyfileobj(src, out, 1 << 20)
        return BlobBytes(desc.size, tmp)


class _Pusher:
    def __init__(
        self,
        client: RegistryClient,
        locate: BlobLocator,
        repository: str,
        progress: ProgressSink,
        chunk_size: int | None,
        cancel: threading.Event,
        where: str,
    ):
        self.client = client
        self.locate = locate
        self.repository = repository
        self.progress = progress
        self.chunk_size = chunk_size
        self.cancel = cancel
        self.where = where

    def exists(self, digest: str) -> bool:
        resp = self.client.request("HEAD", f"/v2/{self.repository}/blobs/{digest}")
        with resp:
            if resp.status == 200:
                return True
            if resp.status == 404:
                return False
        raise error_from_response(resp, f"{self.where}: HEAD blob {digest}")

    def push_blob(self, desc: Descriptor, blob: BlobReport, mount_from: list[str]) -> None:
        if self.cancel.is_set():
            raise Cancelled()
        if self.exists(desc.digest):
            blob.action = SKIPPED
            return
        location: str | None = None
        for source in mount_from:
            try:
                resp = self.client.request(
                    "POST",
                    f"/v2/{self.repository}/blobs/uploads/?mount={desc.digest}&from={source}",
                )
            except AuthError:
                continue  # no pull right on SOURCE after all: upload instead
            if resp.status in (401, 403):
                resp.close()
                continue
            if resp.status == 201:
                resp.release()
                blob.action = MOUNTED
                blob.mounted_from = source
                return
            if resp.status == 202:
                # The registry could not mount but opened an upload session: use it.
                location = _location(self.client, resp.header("Location"), self.where)
                resp.release()
                break
            resp.release()  # refused (e.g. no pull right on SOURCE): upload instead
        data = self.locate(desc)
        if data.size != desc.size:
            raise InvalidImageError(
                f"{self.where}: blob {desc.digest} is {data.size} bytes, "
                f"its descriptor says {desc.size}"
            )
        self.progress.begin(blob)
        for attempt in range(MAX_UPLOAD_ATTEMPTS):
            if location is None:
                location = self._start_upload()
            try:
                self._upload(location, desc, blob, data)
                break
            except (TransientError, RegistryHTTPError) as exc:
                retryable = (
                    isinstance(exc, TransientError)
                    or exc.status in (404, 416)
                    or (exc.status >= 500)
                )
                if not retryable or attempt + 1 == MAX_UPLOAD_ATTEMPTS:
                    raise
                blob.retries += 1
                location = None  # a new session from scratch
        blob.action = UPLOADED
        self.progress.end(blob)

    def _start_upload(self) -> str:
        resp = self.client.request("POST", f"/v2/{self.repository}/blobs/uploads/")
        if resp.status != 202:
            raise error_from_response(resp, f"{self.where}: starting upload")
        loc = _location(self.client, resp.header("Location"), self.where)
        resp.release()
        return loc

    def _sent(self, blob: BlobReport) -> Callable[[int], None]:
        def on_sent(n: int) -> None:
            if self.cancel.is_set():
                raise Cancelled()
            blob.bytes_sent += n
            self.progress.advance(blob, n)

        return on_sent

    def _upload(self, location: str, desc: Descriptor, blob: BlobReport, data: BlobBytes) -> None:
        size = desc.size
        headers = {"Content-Type": "application/octet-stream"}
        if not self.chunk_size or size <= self.chunk_size:
            resp = self.client.request(
                "PUT",
                _with_digest(location, desc.digest),
                headers=headers,
                body=data.part(0, size),
                progress=self._sent(blob),
                retry=False,
            )
            self._finish(resp, desc)
            return
        offset = 0
        while offset < size:
            if self.cancel.is_set():
                raise Cancelled()
            n = min(self.chunk_size, size - offset)
            hdrs = dict(headers, **{"Content-Range": f"{offset}-{offset + n - 1}"})
            try:
                resp = self.client.request(
                    "PATCH",
                    location,
                    headers=hdrs,
                    body=data.part(offset, n),
                    progress=self._sent(blob),
                    retry=False,
                )
            except TransientError:
                blob.retries += 1
                if blob.retries > self.client.retries:
                    raise
                offset, location = self._upload_status(location)
                continue
            if resp.status != 202:
                raise error_from_response(resp, f"{self.where}: uploading {desc.digest}")
            location = _location(self.client, resp.header("Location") or location, self.where)
            resp.release()
            offset += n
        resp = self.client.request(
            "PUT", _with_digest(location, desc.digest), headers=headers, body=b"", retry=False
        )
        self._finish(resp, desc)

    def _upload_status(self, location: str) -> tuple[int, str]:
        """After a dropped PATCH: ask the registry how much it kept, to resume there."""
        resp = self.client.request("GET", location)
        if resp.status != 204:
            raise error_from_response(resp, f"{self.where}: upload status")
        rng = resp.header("Range")
        loc = _location(self.client, resp.header("Location") or location, self.where)
        resp.release()
        try:
            end = int(rng.rsplit("-", 1)[1]) if rng else -1
        except ValueError:
            end = -1
        return end + 1, loc

    def _finish(self, resp: Response, desc: Descriptor) -> None:
        if resp.status != 201:
            raise error_from_response(resp, f"{self.where}: uploading {desc.digest}")
        got = resp.header("Docker-Content-Digest")
        resp.release()
        if got and got != desc.digest:
            raise RegistryError(
                f"{self.where}: registry stored {desc.digest} as {got}; refusing to go on"
            )


def _blobs_of(
    store: Store, digest: str, where: str
) -> tuple[list[tuple[str, bytes, str]], list[Descriptor]]:
    """(manifests to put, children first, as (digest, raw, media type); blobs they need)."""
    raw = store.read_blob(digest)
    doc = parse_manifest_or_index(raw)
    if isinstance(doc, Manifest):
        return [(digest, raw, doc.media_type)], [doc.config, *doc.layers]
    manifests: list[tuple[str, bytes, str]] = []
    blobs: list[Descriptor] = []
    assert isinstance(doc, Index)
    for child in doc.manifests:
        if not store.has_blob(child.digest):
            raise BlobNotFoundError(
                f"{where}: index entry {child.digest} ({child.platform}) is not in the store"
            )
        sub_manifests, sub_blobs = _blobs_of(store, child.digest, where)
        manifests.extend(sub_manifests)
        blobs.extend(sub_blobs)
    manifests.append((digest, raw, doc.media_type))
    return manifests, blobs


def push(
    store: Store,
    name: str,
    destination: str | None = None,
    *,
    insecure: Iterable[str] = (),
    jobs: int = DEFAULT_JOBS,
    chunk_size: int | None = None,
    progress: ProgressSink | None = None,
    client: RegistryClient | None = None,
) -> TransferReport:
    """Push the store image NAME to DESTINATION (default: NAME itself, like `docker push`).
    A manifest goes through `push_image`; a stored index (every platform present) is sent
    whole, children first."""
    digest = store.resolve(name)
    target = destination or name
    doc = parse_manifest_or_index(store.read_blob(digest))
    if isinstance(doc, Manifest):
        from slimage.store.images import open_image

        return push_image(
            open_image(store, digest),
            target,
            store=store,
            insecure=insecure,
            jobs=jobs,
            chunk_size=chunk_size,
            progress=progress,
            client=client,
        )
    rref = RemoteRef.parse(target)
    manifests, needed = _blobs_of(store, digest, rref.display)
    return _transfer(
        rref,
        digest,
        manifests,
        needed,
        store_locator(store, rref.display),
        store=store,
        insecure=insecure,
        jobs=jobs,
        chunk_size=chunk_size,
        progress=progress,
        client=client,
    )


def push_image(
    image: Image,
    destination: str,
    *,
    store: Store | None = None,
    insecure: Iterable[str] = (),
    jobs: int = DEFAULT_JOBS,
    chunk_size: int | None = None,
    progress: ProgressSink | None = None,
    client: RegistryClient | None = None,
) -> TransferReport:
    """Push IMAGE, from whatever source it was opened, to DESTINATION as it is: the same
    manifest bytes, the same blobs, so every digest is kept. STORE, when given, supplies
    cross-repo mount hints and remembers where the blobs now are."""
    rref = RemoteRef.parse(destination)
    manifest = image.manifest
    if not manifest.raw:
        raise InvalidImageError(f"{image.source or 'image'}: has no manifest bytes to push")
    digest = manifest.digest
    manifests = [(digest, manifest.raw, manifest.media_type)]
    tmp_root = str(store.tmp_dir) if store is not None and store.tmp_dir.is_dir() else None
    with tempfile.TemporaryDirectory(prefix="slimage-push-", dir=tmp_root) as tmp:
        locate = _ImageBlobs(image, store, rref.display, tmp)
        return _transfer(
            rref,
            digest,
            manifests,
            [manifest.config, *manifest.layers],
            locate,
            store=store,
            insecure=insecure,
            jobs=jobs,
            chunk_size=chunk_size,
            progress=progress,
            client=client,
        )


def _transfer(
    rref: RemoteRef,
    digest: str,
    manifests: list[tuple[str, bytes, str]],
    needed: list[Descriptor],
    locate: BlobLocator,
    *,
    store: Store | None,
    insecure: Iterable[str],
    jobs: int,
    chunk_size: int | None,
    progress: ProgressSink | None,
    client: RegistryClient | None,
) -> TransferReport:
    """Blobs first (in parallel, biggest first), then the manifests, children first."""
    started = time.monotonic()
    if rref.ref.digest and rref.ref.digest != digest:
        raise InvalidImageError(f"{rref.display}: the image to push is {digest}")
    where = rref.display
    progress = progress or NullProgress()
    report = TransferReport("push", where, rref.registry, rref.repository)
    report.tag = rref.ref.tag or (None if rref.ref.digest else "latest")
    report.digest = digest
    report.media_type = manifests[-1][2]
    report.manifest_size = len(manifests[-1][1])

    unique: dict[str, Descriptor] = {}
    for d in needed:
        unique.setdefault(d.digest, d)
    mount_sources: dict[str, list[str]] = {}
    if store is not None:
        for d in unique.values():
            repos = [
                r for r in seen.repos_with(store, rref.registry, d.digest) if r != rref.repository
            ]
            if repos:
                mount_sources[d.digest] = repos[:2]
    extra = sorted({r for rs in mount_sources.values() for r in rs})[:10]
    client = client or RegistryClient(
        rref.registry,
        scopes=[
            f"repository:{rref.repository}:pull,push",
            *(f"repository:{r}:pull" for r in extra),
        ],
        insecure=insecure,
    )
    client.ping()
    cancel = threading.Event()
    pusher = _Pusher(client, locate, rref.repository, progress, chunk_size, cancel, where)
    config_digests = {m.config.digest for m in _manifest_docs(manifests)}
    blob_reports: list[tuple[Descriptor, BlobReport]] = []
    for d in unique.values():
        kind = "config" if d.digest in config_digests else "layer"
        blob_reports.append((d, BlobReport(d.digest, d.size, d.media_type, kind)))
    report.blobs = [b for _, b in blob_reports]

    def work(desc: Descriptor, blob: BlobReport) -> None:
        pusher.push_blob(desc, blob, [r for r in mount_sources.get(desc.digest, []) if r in extra])
        if blob.action != UPLOADED:
            progress.begin(blob)
            progress.end(blob)

    order = sorted(blob_reports, key=lambda t: -t[0].size)
    run_all(work, order, jobs, cancel, client.transport.abort)

    for i, (mdigest, raw, media_type) in enumerate(manifests):
        last = i == len(manifests) - 1
        target = (
            (rref.ref.tag or ("latest" if not rref.ref.digest else mdigest)) if last else mdigest
        )
        resp = client.request(
            "PUT",
            f"/v2/{rref.repository}/manifests/{target}",
            headers={"Content-Type": media_type},
            body=raw,
        )
        if resp.status not in (200, 201):
            raise error_from_response(resp, f"{where}: putting manifest {mdigest}")
        got = resp.header("Docker-Content-Digest")
        resp.release()
        if got and got != mdigest:
            raise RegistryError(f"{where}: registry named the manifest {got}, expected {mdigest}")
        assert sha256_digest(raw) == mdigest

    if store is not None:
        seen.record(store, rref.registry, rref.repository, list(unique))
    report.total()
    report.seconds = round(time.monotonic() - started, 3)
    report.status = f"{report.tag or digest}: digest: {digest} size: {report.manifest_size}"
    return report


def _manifest_docs(manifests: list[tuple[str, bytes, str]]) -> list[Manifest]:
    out = []
    for _, raw, _mt in manifests:
        doc = parse_manifest_or_index(raw)
        if isinstance(doc, Manifest):
            out.append(doc)
    return out
