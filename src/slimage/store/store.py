"""The content-addressed store: blobs once per digest (like git objects), plus refs.

Layout under the root:

    blobs/sha256/<hex>        manifests, configs and layer blobs, verified on every read
    layers/<diff_id hex>.json what we know of an uncompressed layer: its stored blob, size
    refs.json                 {"refs": {"repo:tag": manifest digest}, "images": [...]}
    pins/<key>                a manifest digest kept through gc (a container's image)
    layers-unpacked/<hex>     layers extracted for overlay mounts; gc prunes them too
    tmp/                      in-flight writes; renamed into place only once verified
    lock                      flock'd by writers, so two processes can share one store

Every write goes temp file -> fsync -> rename, so a crash or a refused digest leaves no
partial blob and no dangling ref.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from slimage.errors import (
    BlobNotFoundError,
    DigestMismatchError,
    ImageNotFoundError,
    InvalidImageError,
)
from slimage.oci import mediatypes as mt
from slimage.oci.digest import VerifyingReader, hex_of, validate
from slimage.oci.model import Index, Manifest, Platform, parse_manifest_or_index
from slimage.store.paths import default_root
from slimage.store.refs import parse_reference
from slimage.streams import atomic_write

CHUNK = 1 << 20


# Per process, per store root: the fd holding the shared "writer" lock (see
# Store.hold_for_writing). Process-wide because flock conflicts between two fds even
# within one process, and tests open several Store objects on one root.
_WRITER_LOCKS: dict[str, int] = {}


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobWriter:
    """Streams a blob into tmp/, hashing as it goes; `commit` verifies and renames it in.

    Used as a context manager: leaving the block without `commit` (an exception, a
    refused digest) deletes the temp file, so nothing half-written is ever visible.
    """

    def __init__(self, store: Store, expected: str | None = None, expected_size: int | None = None):
        self._store = store
        store.hold_for_writing()
        self.expected = validate(expected) if expected else None
        self.expected_size = expected_size
        fd, name = tempfile.mkstemp(dir=store.tmp_dir, prefix="blob-")
        self._fh = os.fdopen(fd, "wb")
        self._tmp = Path(name)
        self._hash = hashlib.sha256()
        self.size = 0
        self.digest: str | None = None

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self.size += len(data)
        if self.expected_size is not None and self.size > self.expected_size:
            raise DigestMismatchError(
                f"blob {self.expected or ''}: more than the expected {self.expected_size} bytes"
            )
        return self._fh.write(data)

    def commit(self) -> str:
        digest = "sha256:" + self._hash.hexdigest()
        if self.expected_size is not None and self.size != self.expected_size:
            raise DigestMismatchError(
                f"blob {self.expected or digest}: got {self.size} bytes, expected {self.expected_size}"
            )
        if self.expected and digest != self.expected:
            raise DigestMismatchError(f"blob content is {digest}, expected {self.expected}")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        final = self._store.blob_path(digest)
        if final.exists():
            self._tmp.unlink(missing_ok=True)
        else:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self._tmp, final)
            _fsync_dir(final.parent)
        self.digest = digest
        return digest

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._fh.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if self.digest is None:
            self.abort()


@dataclass
class LayerInfo:
    """What the store knows about one uncompressed layer (keyed by diff_id)."""

    diff_id: str
    blob: str  # digest of the stored (maybe compressed) blob
    media_type: str
    blob_size: int
    size: int  # Docker's SIZE: regular-file bytes + symlink target lengths
    uncompressed_size: int = 0
    entries: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class GcReport:
    removed_blobs: list[str] = field(default_factory=list)
    removed_bytes: int = 0
    kept_blobs: int = 0
    removed_unpacked: int = 0


@dataclass
class FsckReport:
    checked: int = 0
    bad: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.bad and not self.missing


class Store:
    def __init__(self, root: str | os.PathLike[str] | None = None):
        self.root = Path(root) if root is not None else default_root()
        self.blobs_dir = self.root / "blobs" / "sha256"
        self.layers_dir = self.root / "layers"
        self.tmp_dir = self.root / "tmp"
        for d in (self.blobs_dir, self.layers_dir, self.tmp_dir):
            d.mkdir(parents=True, exist_ok=True)
        self._refs_path = self.root / "refs.json"
        self.pins_dir = self.root / "pins"

    # ------------------------------------------------------------------ locking
    @contextlib.contextmanager
    def lock(self, shared: bool = False) -> Iterator[None]:
        """Serialise ref updates and gc between processes sharing this store."""
        fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def hold_for_writing(self) -> None:
        """Take (once per process) a shared lock that gc needs exclusively.

        A blob is unreferenced between the moment it is written and the moment a ref
        points at it (a build step, a pull, a base assembly), so gc must not run while any
        process that writes blobs is alive. Writers hold this lock until they exit; gc
        waits for them. Cheap: one flock per process, not per blob."""
        key = str(self.root.resolve())
        if key in _WRITER_LOCKS:
            return
        fd = os.open(self.root / "gc.lock", os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_SH)
        _WRITER_LOCKS[key] = fd

    @contextlib.contextmanager
    def _exclusive_gc(self) -> Iterator[None]:
        key = str(self.root.resolve())
        own = _WRITER_LOCKS.pop(key, None)
        if own is not None:  # our own writes are finished when gc is called
            fcntl.flock(own, fcntl.LOCK_UN)
            os.close(own)
        fd = os.open(self.root / "gc.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print("slimage: waiting for other processes writing to the store", file=sys.stderr)
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    # ------------------------------------------------------------------ blobs
    def blob_path(self, digest: str) -> Path:
        return self.blobs_dir / hex_of(digest)

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def blob_size(self, digest: str) -> int:
        try:
            return self.blob_path(digest).stat().st_size
        except FileNotFoundError:
            raise BlobNotFoundError(f"blob {digest} is not in the store") from None

    def open_blob(self, digest: str) -> BinaryIO:
        """The blob's bytes, verified against its digest as they are read."""
        path = self.blob_path(digest)
        try:
            fh = open(path, "rb")  # noqa: SIM115 - handed to the caller
        except FileNotFoundError:
            raise BlobNotFoundError(f"blob {digest} is not in the store") from None
        size = os.fstat(fh.fileno()).st_size
        return VerifyingReader(fh, digest, size=size, name=f"blob {digest}")  # type: ignore[return-value]

    def read_blob(self, digest: str) -> bytes:
        with self.open_blob(digest) as fh:
            data = fh.read()
            fh.read()  # reach EOF so the digest is checked
        return data

    def writer(self, expected: str | None = None, expected_size: int | None = None) -> BlobWriter:
        return BlobWriter(self, expected, expected_size)

    def put_bytes(self, data: bytes, expected: str | None = None) -> str:
        if expected and self.has_blob(expected):
            return expected
        with self.writer(expected, len(data)) as w:
            w.write(data)
            return w.commit()

    def put_stream(
        self, stream: BinaryIO, expected: str | None = None, size: int | None = None
    ) -> str:
        with self.writer(expected, size) as w:
            while chunk := stream.read(CHUNK):
                w.write(chunk)
            return w.commit()

    def iter_blobs(self) -> Iterator[str]:
        for path in self.blobs_dir.iterdir():
            if len(path.name) == 64:
                yield "sha256:" + path.name

    # ------------------------------------------------------------------ layer info
    def layer_info(self, diff_id: str) -> LayerInfo | None:
        path = self.layers_dir / f"{hex_of(diff_id)}.json"
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError):
            return None
        info = LayerInfo(**data)
        return info if self.has_blob(info.blob) else None

    def put_layer_info(self, info: LayerInfo) -> None:
        self._atomic_write(
            self.layers_dir / f"{hex_of(info.diff_id)}.json", json.dumps(info.to_dict()).encode()
        )

    # ------------------------------------------------------------------ refs
    def _atomic_write(self, path: Path, data: bytes) -> None:
        atomic_write(path, data)

    def _load_refs(self) -> dict[str, Any]:
        try:
            data = json.loads(self._refs_path.read_text())
        except FileNotFoundError:
            return {"refs": {}, "images": {}}
        except (OSError, json.JSONDecodeError) as exc:
            raise InvalidImageError(f"{self._refs_path}: corrupt refs file ({exc})") from exc
        data.setdefault("refs", {})
        data.setdefault("images", {})
        return data

    def _save_refs(self, data: dict[str, Any]) -> None:
        self._atomic_write(self._refs_path, json.dumps(data, indent=1, sort_keys=True).encode())

    def refs(self) -> dict[str, str]:
        """name -> manifest digest."""
        return dict(self._load_refs()["refs"])

    def images(self) -> dict[str, dict[str, Any]]:
        """manifest digest -> record (`added` time); includes untagged images."""
        return dict(self._load_refs()["images"])

    def add_image(
        self, manifest_digest: str, *, tags: list[str] | None = None, added: str = ""
    ) -> None:
        """Record an image (its blobs must already be stored) and point TAGS at it."""
        if not self.has_blob(manifest_digest):
            raise BlobNotFoundError(f"manifest {manifest_digest} is not in the store")
        names = [parse_reference(t).name for t in tags or []]
        with self.lock():
            data = self._load_refs()
            data["images"].setdefault(manifest_digest, {"added": added})
            for name in names:
                data["refs"][name] = manifest_digest
            self._save_refs(data)

    def tag(self, source: str, target: str) -> str:
        digest = self.resolve(source)
        self.add_image(digest, tags=[target])
        return parse_reference(target).name

    def untag(self, name: str) -> str:
        ref = parse_reference(name).name
        with self.lock():
            data = self._load_refs()
            if ref not in data["refs"]:
                raise ImageNotFoundError(f"No such image: {name}")
            digest = data["refs"].pop(ref)
            self._save_refs(data)
        return digest

    def remove_image(self, manifest_digest: str) -> list[str]:
        """Forget an image and every tag pointing at it; blobs go at the next gc."""
        with self.lock():
            data = self._load_refs()
            removed = [n for n, d in data["refs"].items() if d == manifest_digest]
            for n in removed:
                del data["refs"][n]
            data["images"].pop(manifest_digest, None)
            self._save_refs(data)
        return removed

    def resolve(self, name: str) -> str:
        """A tag, `repo@digest`, a manifest digest, or an image ID (prefix) -> manifest digest."""
        data = self._load_refs()
        text = name.strip()
        if text.startswith("sha256:") and len(text) == 71 and text in data["images"]:
            return text
        bare = text.removeprefix("sha256:")
        if 4 <= len(bare) <= 64 and all(c in "0123456789abcdef" for c in bare):
            hits = set()
            for digest in data["images"]:
                if digest.removeprefix("sha256:").startswith(bare):
                    hits.add(digest)
                else:
                    config = self._config_digest(digest)
                    if config and config.removeprefix("sha256:").startswith(bare):
                        hits.add(digest)
            if len(hits) == 1:
                return hits.pop()
            if len(hits) > 1:
                raise ImageNotFoundError(f"image ID prefix {bare!r} is ambiguous")
        try:
            ref = parse_reference(text)
        except Exception:
            raise ImageNotFoundError(f"No such image: {name}") from None
        if ref.digest:
            if ref.digest in data["images"]:
                return ref.digest
            raise ImageNotFoundError(f"No such image: {name}")
        digest = data["refs"].get(ref.name)
        if digest is None:
            raise ImageNotFoundError(f"No such image: {name}")
        return digest

    def _config_digest(self, manifest_digest: str) -> str | None:
        try:
            doc = parse_manifest_or_index(self.read_blob(manifest_digest))
        except Exception:
            return None
        if isinstance(doc, Manifest):
            return doc.config.digest
        return None

    def manifest_for(self, manifest_digest: str, platform: Platform | None = None) -> Manifest:
        """Load the manifest, descending through an index to the wanted platform."""
        doc = parse_manifest_or_index(self.read_blob(manifest_digest))
        seen = 0
        while isinstance(doc, Index):
            seen += 1
            if seen > 4:
                raise InvalidImageError(f"{manifest_digest}: index nesting too deep")
            desc = doc.select(platform)
            doc = parse_manifest_or_index(self.read_blob(desc.digest), desc.media_type)
        return doc

    # ------------------------------------------------------------------ gc / fsck
    # ------------------------------------------------------------------ pins
    def pin(self, key: str, manifest_digest: str) -> None:
        """Keep an image's blobs (and unpacked layers) through gc while KEY holds it, as a
        container does for the image it runs, even after the image's tags are removed."""
        self.pins_dir.mkdir(exist_ok=True)
        self._atomic_write(self.pins_dir / key, validate(manifest_digest).encode())

    def unpin(self, key: str) -> None:
        (self.pins_dir / key).unlink(missing_ok=True)

    def _pinned(self) -> list[str]:
        if not self.pins_dir.is_dir():
            return []
        out = []
        for path in self.pins_dir.iterdir():
            with contextlib.suppress(OSError, InvalidImageError):
                out.append(validate(path.read_text().strip()))
        return out

    def referenced_blobs(self) -> set[str]:
        """Every blob reachable from a recorded or pinned image: manifests, configs, layers."""
        return self._reachable()[0]

    def _reachable(self) -> tuple[set[str], set[str]]:
        """(blob digests, layer diff_ids) reachable from refs, images and pins."""
        keep: set[str] = set()
        diff_ids: set[str] = set()
        data = self._load_refs()
        todo = list(data["images"]) + list(data["refs"].values()) + self._pinned()
        while todo:
            digest = todo.pop()
            if digest in keep:
                continue
            keep.add(digest)
            if not self.has_blob(digest):
                continue
            try:
                doc = parse_manifest_or_index(self.read_blob(digest))
            except (InvalidImageError, OSError):
                continue
            if isinstance(doc, Index):
                todo.extend(d.digest for d in doc.manifests)
                continue
            keep.add(doc.config.digest)
            keep.update(d.digest for d in doc.layers)
            with contextlib.suppress(InvalidImageError, OSError, KeyError, TypeError):
                diff_ids.update(json.loads(self.read_blob(doc.config.digest))["rootfs"]["diff_ids"])
        return keep, diff_ids

    def gc(self) -> GcReport:
        report = GcReport()
        with self._exclusive_gc(), self.lock():
            keep, diff_ids = self._reachable()
            for digest in list(self.iter_blobs()):
                if digest in keep:
                    report.kept_blobs += 1
                    continue
                path = self.blob_path(digest)
                report.removed_bytes += path.stat().st_size
                path.unlink()
                report.removed_blobs.append(digest)
            for info_path in self.layers_dir.glob("*.json"):
                try:
                    blob = json.loads(info_path.read_text())["blob"]
                except (OSError, ValueError, KeyError):
                    info_path.unlink(missing_ok=True)
                    continue
                if blob not in keep:
                    info_path.unlink(missing_ok=True)
            for tmp in self.tmp_dir.iterdir():
                with contextlib.suppress(OSError):
                    tmp.unlink()
            report.removed_unpacked = self._prune_unpacked(diff_ids)
        return report

    def _prune_unpacked(self, diff_ids: set[str]) -> int:
        """Unpacked layer dirs (the builder's and runtime's overlay lowers) go with their
        layers; only `empty` and the dirs of reachable diff_ids stay."""
        base = self.root / "layers-unpacked"
        if not base.is_dir():
            return 0
        keep = {d.split(":", 1)[-1] for d in diff_ids} | {"empty"}
        removed = 0
        for path in base.iterdir():
            if path.name in keep:
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
        return removed

    def fsck(self) -> FsckReport:
        """Re-hash every blob, and check every recorded image's blobs are present."""
        report = FsckReport()
        for digest in self.iter_blobs():
            report.checked += 1
            h = hashlib.sha256()
            with open(self.blob_path(digest), "rb") as fh:
                while chunk := fh.read(CHUNK):
                    h.update(chunk)
            if "sha256:" + h.hexdigest() != digest:
                report.bad.append(digest)
        for digest in sorted(self.referenced_blobs()):
            if not self.has_blob(digest):
                report.missing.append(digest)
        return report


def media_type_is_layer(media_type: str) -> bool:
    return media_type in mt.LAYERS
