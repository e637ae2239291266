"""OCI image layouts: a directory (`oci:DIR[:ref]`) or the same layout inside a tar
(Docker 25+ `docker save`, oci-archive). Reading and writing.

Both places hold `oci-layout`, `index.json` and `blobs/sha256/<hex>`; only where a blob's
bytes live differs, so the readers take a `BlobSource` and everything else is shared.
Every blob is verified against its descriptor (digest and size) as it is read.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from slimage.errors import (
    BlobNotFoundError,
    InvalidImageError,
    NotFoundError,
    UsageError,
)
from slimage.image import BlobLocation, Image, Layer
from slimage.layers.compression import open_decompressed
from slimage.oci import mediatypes as mt
from slimage.oci.digest import VerifyingReader, hex_of, validate
from slimage.oci.model import (
    Descriptor,
    ImageConfig,
    Index,
    Manifest,
    Platform,
    parse_manifest_or_index,
)
from slimage.oci.safejson import load_json
from slimage.store.refs import parse_reference
from slimage.streams import atomic_output
from slimage.transports.tarindex import TarIndex

REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"
LAYOUT_FILE = b'{"imageLayoutVersion":"1.0.0"}'
CHUNK = 1 << 20


class BlobSource(Protocol):
    label: str

    def blob_size(self, digest: str) -> int: ...

    def open_raw(self, digest: str) -> BinaryIO: ...

    def location(self, digest: str) -> BlobLocation | None: ...


class DirBlobs:
    """Blobs of an OCI layout directory."""

    def __init__(self, root: Path):
        self.root = root
        self.label = str(root)

    def _path(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / hex_of(digest)

    def blob_size(self, digest: str) -> int:
        try:
            return self._path(digest).stat().st_size
        except FileNotFoundError:
            raise BlobNotFoundError(f"{self.label}: blob {digest} is missing") from None

    def open_raw(self, digest: str) -> BinaryIO:
        try:
            return open(self._path(digest), "rb")  # noqa: SIM115
        except FileNotFoundError:
            raise BlobNotFoundError(f"{self.label}: blob {digest} is missing") from None

    def location(self, digest: str) -> BlobLocation | None:
        path = self._path(digest)
        try:
            return BlobLocation(str(path.absolute()), 0, path.stat().st_size)
        except OSError:
            return None


class ArchiveBlobs:
    """Blobs of a layout stored inside a tar (read in place, by offset)."""

    def __init__(self, index: TarIndex, prefix: str = ""):
        self.index = index
        self.prefix = prefix
        self.label = index.label

    def _name(self, digest: str) -> str:
        return f"{self.prefix}blobs/sha256/{hex_of(digest)}"

    def blob_size(self, digest: str) -> int:
        name = self._name(digest)
        if not self.index.has(name):
            raise BlobNotFoundError(f"{self.label}: blob {digest} is missing")
        return self.index.resolve(name).size

    def open_raw(self, digest: str) -> BinaryIO:
        if not self.index.has(self._name(digest)):
            raise BlobNotFoundError(f"{self.label}: blob {digest} is missing")
        return self.index.open_member(self._name(digest))  # type: ignore[return-value]

    def location(self, digest: str) -> BlobLocation | None:
        if not self.index.has(self._name(digest)):
            return None
        where = self.index.location(self._name(digest))
        return BlobLocation(*where) if where else None


def open_verified(blobs: BlobSource, desc: Descriptor) -> BinaryIO:
    size = blobs.blob_size(desc.digest)
    if size != desc.size:
        raise InvalidImageError(
            f"{blobs.label}: blob {desc.digest} is {size} bytes, its descriptor says {desc.size}"
        )
    return VerifyingReader(  # type: ignore[return-value]
        blobs.open_raw(desc.digest),
        desc.digest,
        size=desc.size,
        name=f"{blobs.label}: blob {desc.digest}",
    )


def read_verified(blobs: BlobSource, desc: Descriptor, limit: int = 16 << 20) -> bytes:
    if desc.size > limit:
        raise InvalidImageError(f"{blobs.label}: blob {desc.digest} is too large ({desc.size})")
    with open_verified(blobs, desc) as fh:
        data = fh.read()
        fh.read()
    return data


class SourceLayer(Layer):
    """A layer read from an archive or layout. When the blob *is* the uncompressed tar
    (digest == diff_id, as in legacy `docker save`), it is hashed once, not twice."""

    open_unverified: Callable[[], BinaryIO] | None = None
    locate: Callable[[], BlobLocation | None] | None = None

    def blob_location(self) -> BlobLocation | None:
        """Where the stored blob lies in a local file (see `slimage.image.LocatedLayer`)."""
        return self.locate() if self.locate is not None else None

    def open_blob_unverified(self) -> BinaryIO:
        """The raw blob without the digest check, for callers that hash it themselves
        (the store's ingest, which checks the diff_id before committing)."""
        if self.open_unverified is None:
            return self.open_blob()
        return self.open_unverified()

    def open_tar(self) -> BinaryIO:
        if self.descriptor.digest == self.diff_id:
            stream, kind = open_decompressed(self.open_blob(), name=f"layer {self.diff_id}")
            if kind == "none":
                return stream
            stream.close()
        return super().open_tar()


def _blob_opener(blobs: BlobSource, desc: Descriptor) -> Callable[[], BinaryIO]:
    return lambda: open_verified(blobs, desc)


def image_from_manifest(
    blobs: BlobSource, manifest: Manifest, *, label: str, repo_tags: list[str] | None = None
) -> Image:
    config = ImageConfig.parse(
        read_verified(blobs, manifest.config), what=f"{label}: config {manifest.config.digest}"
    )
    if len(config.diff_ids) != len(manifest.layers):
        raise InvalidImageError(
            f"{label}: manifest has {len(manifest.layers)} layers but the config lists "
            f"{len(config.diff_ids)} diff_ids"
        )
    layers: list[Layer] = []
    for desc, diff_id in zip(manifest.layers, config.diff_ids, strict=True):
        blobs.blob_size(desc.digest)  # a missing blob is an error now, not mid-load
        layer = SourceLayer(desc, diff_id, _blob_opener(blobs, desc))
        layer.locate = functools.partial(blobs.location, desc.digest)
        layers.append(layer)
    return Image(manifest, config, layers, source=label, repo_tags=list(repo_tags or []))


def _tags_from_annotations(annotations: dict[str, str] | None) -> list[str]:
    """containerd/Docker 25 put the full name in io.containerd.image.name; plain OCI
    layouts usually carry only a tag in ref.name, which alone names no repository."""
    if not annotations:
        return []
    for key in (CONTAINERD_NAME, REF_NAME):
        value = annotations.get(key)
        if not value:
            continue
        try:
            ref = parse_reference(value)
        except Exception:
            continue
        if key == REF_NAME and ":" not in value and "/" not in value:
            continue  # a bare tag such as "latest"
        return [ref.name]
    return []


def _resolve_manifest(
    blobs: BlobSource, desc: Descriptor, platform: Platform | None, label: str
) -> Manifest:
    for _ in range(4):
        raw = read_verified(blobs, desc)
        what = f"{label}: manifest {desc.digest}"
        try:
            doc = parse_manifest_or_index(raw, desc.media_type or None, what)
        except InvalidImageError as err:
            if str(err).startswith(what):
                raise
            raise type(err)(f"{what}: {err}") from None
        if isinstance(doc, Manifest):
            return doc
        desc = doc.select(platform)
    raise InvalidImageError(f"{label}: index nesting too deep")


@dataclass
class LayoutEntry:
    descriptor: Descriptor
    names: list[str]  # ref.name / containerd name annotations


def read_index(blobs: BlobSource, raw: bytes, label: str) -> list[LayoutEntry]:
    what = f"{label}: index.json"
    try:
        index = Index.parse(raw, what=what)
    except InvalidImageError as err:
        if str(err).startswith(what):
            raise
        raise type(err)(f"{what}: {err}") from None
    out = []
    for desc in index.manifests:
        names = [v for k, v in (desc.annotations or {}).items() if k in (REF_NAME, CONTAINERD_NAME)]
        out.append(LayoutEntry(desc, names))
    return out


def images_from_index(
    blobs: BlobSource,
    raw: bytes,
    *,
    label: str,
    platform: Platform | None = None,
    ref: str | None = None,
) -> list[Image]:
    entries = read_index(blobs, raw, label)
    if ref:
        wanted = [e for e in entries if ref in e.names or _matches_name(ref, e.names)]
        if not wanted:
            have = ", ".join(n for e in entries for n in e.names) or "none"
            raise NotFoundError(f"{label}: no image named {ref!r} (have: {have})")
        entries = wanted
    images = []
    for e in entries:
        manifest = _resolve_manifest(blobs, e.descriptor, platform, label)
        images.append(
            image_from_manifest(
                blobs,
                manifest,
                label=label,
                repo_tags=_tags_from_annotations(e.descriptor.annotations),
            )
        )
    if not images:
        raise InvalidImageError(f"{label}: index.json lists no images")
    return images


def _matches_name(ref: str, names: list[str]) -> bool:
    try:
        want = parse_reference(ref).name
    except Exception:
        return False
    for n in names:
        with contextlib.suppress(Exception):
            if parse_reference(n).name == want:
                return True
    return False


def open_layout(
    path: str | os.PathLike[str], ref: str | None = None, platform: Platform | None = None
) -> list[Image]:
    """Images of an OCI layout directory (just the one named REF, if given)."""
    root = Path(path)
    label = str(root)
    try:
        layout_raw = (root / "oci-layout").read_bytes()
    except FileNotFoundError:
        raise InvalidImageError(f"{label}: not an OCI layout (no oci-layout file)") from None
    except OSError as exc:
        raise InvalidImageError(f"{label}: oci-layout is unreadable ({exc})") from None
    layout = load_json(layout_raw, f"{label}: oci-layout", max_bytes=1 << 16)
    if not isinstance(layout, dict) or "imageLayoutVersion" not in layout:
        raise InvalidImageError(f"{label}: oci-layout lacks imageLayoutVersion")
    try:
        raw = (root / "index.json").read_bytes()
    except FileNotFoundError:
        raise InvalidImageError(f"{label}: not an OCI layout (no index.json)") from None
    return images_from_index(DirBlobs(root), raw, label=label, platform=platform, ref=ref)


# ---------------------------------------------------------------------------- writing


def oci_manifest_for(image: Image) -> Manifest:
    """The image's manifest in OCI media types (Docker schema2 -> OCI keeps every blob;
    only the descriptors' media types change, so the manifest digest changes)."""
    m = image.manifest
    if m.media_type == mt.OCI_MANIFEST:
        return m
    config = Descriptor(mt.OCI_CONFIG, m.config.digest, m.config.size)
    layers = []
    for d in m.layers:
        comp = mt.LAYER_COMPRESSION.get(d.media_type)
        if comp is None:
            raise InvalidImageError(f"layer {d.digest}: unknown media type {d.media_type!r}")
        layers.append(Descriptor(mt.layer_media_type(comp), d.digest, d.size, d.annotations))
    return Manifest.build(config, layers, annotations=m.annotations or None)


def docker_manifest_for(image: Image) -> Manifest:
    m = image.manifest
    if m.media_type == mt.DOCKER_MANIFEST:
        return m
    config = Descriptor(mt.DOCKER_CONFIG, m.config.digest, m.config.size)
    layers = [
        Descriptor(
            mt.layer_media_type(mt.LAYER_COMPRESSION[d.media_type], docker=True), d.digest, d.size
        )
        for d in m.layers
    ]
    return Manifest.build(config, layers, docker=True)


class LayoutSink(Protocol):
    """Where a layout's files go: a directory or entries of a tar being written."""

    def has(self, name: str) -> bool: ...

    def put_bytes(self, name: str, data: bytes) -> None: ...

    def put_stream(self, name: str, size: int, stream: BinaryIO) -> None: ...


class DirSink:
    """Files in a directory, each written to a temp file and renamed into place."""

    def __init__(self, root: Path):
        self.root = root

    def has(self, name: str) -> bool:
        return (self.root / name).exists()

    def _write(self, name: str, fill: Callable[[BinaryIO], None]) -> None:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_output(path, mode=0o644) as fh:
            fill(fh)

    def put_bytes(self, name: str, data: bytes) -> None:
        def fill(fh: BinaryIO) -> None:
            fh.write(data)

        self._write(name, fill)

    def put_stream(self, name: str, size: int, stream: BinaryIO) -> None:
        def fill(fh: BinaryIO) -> None:
            n = 0
            while chunk := stream.read(CHUNK):
                fh.write(chunk)
                n += len(chunk)
            if n != size:
                raise InvalidImageError(f"{name}: wrote {n} bytes, expected {size}")

        self._write(name, fill)


def write_blobs(sink: LayoutSink, image: Image, manifest: Manifest) -> None:
    """Config, layers and manifest of IMAGE as blobs/sha256/* (skipping ones present)."""
    cfg = f"blobs/sha256/{hex_of(image.config.digest)}"
    if not sink.has(cfg):
        sink.put_bytes(cfg, image.config.raw)
    for layer, desc in zip(image.layers, manifest.layers, strict=True):
        name = f"blobs/sha256/{hex_of(desc.digest)}"
        if sink.has(name):
            continue
        with contextlib.closing(layer.open_blob()) as stream:
            sink.put_stream(name, desc.size, stream)
            stream.read()  # reach EOF: the digest check fires here
    name = f"blobs/sha256/{hex_of(manifest.digest)}"
    if not sink.has(name):
        sink.put_bytes(name, manifest.raw)


def index_entry(
    manifest: Manifest, name: str | None, *, containerd_name: str | None = None
) -> Descriptor:
    annotations: dict[str, str] = {}
    if containerd_name:
        annotations[CONTAINERD_NAME] = containerd_name
    if name:
        annotations[REF_NAME] = name
    return Descriptor(
        mt.OCI_MANIFEST if manifest.media_type == mt.OCI_MANIFEST else manifest.media_type,
        manifest.digest,
        len(manifest.raw),
        annotations or None,
    )


def ref_name_for(tag: str | None) -> str | None:
    """The ref.name annotation for a store tag: its tag part, as skopeo and umoci expect
    (`oci:DIR:latest`, `umoci stat --image DIR:latest`)."""
    if not tag:
        return None
    return parse_reference(tag).tag or "latest"


def write_layout(
    dest: str | os.PathLike[str],
    images: Iterable[tuple[Image, str | None]],
) -> list[Descriptor]:
    """Write (or add to) an OCI layout directory, each image under its tag (a full name:
    ref.name gets its tag part, io.containerd.image.name the whole)."""
    return write_layout_entries(
        dest, [(image, ref_name_for(tag), _full_name(tag)) for image, tag in images]
    )


def write_layout_entries(
    dest: str | os.PathLike[str],
    images: Iterable[tuple[Image, str | None, str | None]],
) -> list[Descriptor]:
    """Write (or add to) an OCI layout directory: (image, ref.name, full name) each. An
    existing entry with the same ref.name is replaced. Returns the new index entries.
    Blobs go first and index.json last, each file atomically, so a failed write leaves
    an existing layout as it was (plus unreferenced blobs), and a new one not at all."""
    root = Path(dest)
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root}: exists and is not a directory")
    created = None  # the topmost directory this call creates, removed again on failure
    for d in (root, *root.parents):
        if d.exists():
            break
        created = d
    fresh = created is not None or not any(root.iterdir())
    root.mkdir(parents=True, exist_ok=True)
    try:
        return _write_layout(root, images)
    except BaseException:
        if created is not None:
            shutil.rmtree(created, ignore_errors=True)
        elif fresh:  # a retry must find the empty directory it would have found now
            for child in root.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        raise


def _write_layout(
    root: Path, images: Iterable[tuple[Image, str | None, str | None]]
) -> list[Descriptor]:
    sink = DirSink(root)
    existing: list[Descriptor] = []
    index_path = root / "index.json"
    if index_path.exists():
        if not (root / "oci-layout").exists():
            raise InvalidImageError(f"{root}: has index.json but no oci-layout file")
        existing = Index.parse(index_path.read_bytes()).manifests
    elif any(root.iterdir()):
        raise UsageError(f"{root}: directory is not empty and is not an OCI layout")
    added = []
    for image, name, full_name in images:
        manifest = oci_manifest_for(image)
        write_blobs(sink, image, manifest)
        entry = index_entry(manifest, name, containerd_name=full_name)
        if name:
            existing = [d for d in existing if (d.annotations or {}).get(REF_NAME) != name]
        existing.append(entry)
        added.append(entry)
    if not (root / "oci-layout").exists():
        sink.put_bytes("oci-layout", LAYOUT_FILE)
    sink.put_bytes("index.json", Index.build(existing).raw)
    return added


def _full_name(tag: str | None) -> str | None:
    if not tag:
        return None
    ref = parse_reference(tag)
    repo = ref.repository
    if ref.registry == "docker.io":
        repo = "docker.io/" + ref.path
    return f"{repo}:{ref.tag or 'latest'}"


def validate_digest(text: str) -> str:
    return validate(text)
