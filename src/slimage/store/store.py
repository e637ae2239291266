"""The content-addressed store: blobs once per digest (like git objects), plus refs.

Layout under the root:

    blobs/sha256/<hex>        manifests, configs and layer blobs, verified on every read
    layers/<diff_id hex>.json what we know of an uncompressed layer: its stored blob, size
    refs.json                 {"refs": {"repo:tag": manifest digest}, "images": [...]}
    pins/<key>                a manifest digest kept through gc (a container's image)
    layers-unpacked/<hex>     layers extracted for overlay mounts; gc prunes them too
    tmp/blob-*                in-flight writes, flock'd by their writer; renamed into place
                              only once verified; gc reclaims those no live process holds
    claims/<pid>-*            the blobs a live process relies on (see `Store.claim`)
    lock                      flock'd for ref updates, gc and rollbacks
    gc.lock                   shared by every process that writes, exclusive for gc

Every write goes temp file -> fsync -> rename, so a crash or a refused digest leaves no
partial blob and no dangling ref.

One writer-lock discipline covers both writing a blob and finding it already there:
`claim(digest)` takes the process's shared writer lock (gc waits for it) and records the
digest in the process's claim file before it looks, so neither gc nor another process's
rollback can delete a blob between "it exists" and the `add_image` that references it.

The root and every directory holding extracted content are 0700: unpacked layers carry
setuid binaries and device nodes that nobody but root may reach (Docker keeps its root
at 0710). `fsck` warns when they are wider.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import fcntl
import hashlib
import json
import os
import shutil
import stat
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from slimage.errors import (
    BlobNotFoundError,
    DigestMismatchError,
    ImageNotFoundError,
    InvalidImageError,
    SlimageError,
    StoreSpaceError,
)
from slimage.oci import mediatypes as mt
from slimage.oci.digest import VerifyingReader, hex_of, validate
from slimage.oci.model import Index, Manifest, Platform, parse_manifest_or_index
from slimage.store.paths import default_root  # noqa: F401  (re-exported)
from slimage.store.refs import parse_reference
from slimage.streams import atomic_write

CHUNK = 1 << 20


# Per process, per store root: the fd holding the shared "writer" lock (see
# Store.hold_for_writing). Process-wide because flock conflicts between two fds even
# within one process, and tests open several Store objects on one root.
_WRITER_LOCKS: dict[str, int] = {}
# Per process, per store root: the open claim file (fd, path), flock'd exclusively.
_CLAIMS: dict[str, tuple[int, Path]] = {}
# The blobs the current ingest created (not found), so that its rollback removes those
# and nothing else. A ContextVar so that two ingests on two threads keep separate logs.
_CREATED: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "slimage_created_blobs", default=None
)
# Writer holds: a hold taken outside any `Store.writing()` scope lasts for the process
# (the builder, a pull: their blobs stay unreferenced until they finish); holds inside
# scopes are counted and the lock is released when the last scope ends, so a library
# process that ingested an image does not keep gc waiting forever.
_PERMANENT: set[str] = set()
_SCOPES: dict[str, int] = {}
_IN_SCOPE: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "slimage_in_writing", default=False
)
_MUTEX = threading.Lock()

# Directories under the root that hold extracted layer content (setuid files, devices).
PRIVATE_DIRS = ("layers-unpacked", "build-work", "containers")

_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


@contextlib.contextmanager
def disk_errors(what: str, where: str | os.PathLike[str]) -> Iterator[None]:
    """Turn a full disk (or quota) while writing WHAT under WHERE into one clear line.

    Every write into the store passes through here (blob writer, records, unpacked
    layers), so `load`, `import`, `pull`, `build` and `save` all say the same thing."""
    try:
        yield
    except OSError as exc:
        if exc.errno in _SPACE_ERRNOS:
            raise StoreSpaceError(
                f"{where}: no space left on device while writing {what}; "
                "free some space (slimage gc) and try again"
            ) from None
        raise


def private_dir(path: Path) -> Path:
    """Create PATH (and missing parents) as 0700, and tighten it if it is wider.

    For directories slimage owns whose content must stay root-only."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = path.stat()
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(path, stat.S_IMODE(st.st_mode) & 0o700)
    return path


def _held_by_someone(path: Path) -> bool:
    """Whether a live process holds a flock on PATH (a writer's temp file or claim file).

    Only meaningful for files whose owner is another open file description: flock
    conflicts between two opens even within one process, so our own live files count."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


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
        with disk_errors("a blob", store.root):
            fd, name = tempfile.mkstemp(dir=store.tmp_dir, prefix="blob-")
        # Held until the file is renamed or removed: gc reclaims only temp files that no
        # live writer holds (a writer killed with -9 loses its lock with its life).
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._fh = os.fdopen(fd, "wb")
        self._tmp = Path(name)
        self._hash = hashlib.sha256()
        self.size = 0
        self.digest: str | None = None
        self.created = False

    def write(self, data: bytes) -> int:
        self._hash.update(data)
        self.size += len(data)
        if self.expected_size is not None and self.size > self.expected_size:
            raise DigestMismatchError(
                f"blob {self.expected or ''}: more than the expected {self.expected_size} bytes"
            )
        with disk_errors(f"blob {self.expected or '(new)'}", self._store.root):
            return self._fh.write(data)

    def verify(self) -> str:
        """The digest of what was written, after the checks `commit` makes (size, expected
        digest), without storing anything: a caller that also judges the content (pull's
        streaming layer check) can report a wrong blob as wrong before a bad one as bad."""
        digest = "sha256:" + self._hash.hexdigest()
        if self.expected_size is not None and self.size != self.expected_size:
            raise DigestMismatchError(
                f"blob {self.expected or digest}: got {self.size} bytes, expected {self.expected_size}"
            )
        if self.expected and digest != self.expected:
            raise DigestMismatchError(f"blob content is {digest}, expected {self.expected}")
        return digest

    def commit(self) -> str:
        digest = self.verify()
        with disk_errors(f"blob {digest}", self._store.root):
            self._fh.flush()
            os.fsync(self._fh.fileno())
        final = self._store.blob_path(digest)
        # Claim first, then look: under the shared ref lock, so a rollback (exclusive)
        # either sees our claim or has already finished removing its copy.
        with self._store.lock(shared=True):
            self._store._record_claim(digest)
            if final.exists():
                self._tmp.unlink(missing_ok=True)
            else:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(self._tmp, final)
                _fsync_dir(final.parent)
                self.created = True
        self._fh.close()
        if self.created:
            log = _CREATED.get()
            if log is not None:
                log.append(digest)
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
    removed_bytes: int = 0  # blobs and abandoned temp files together
    kept_blobs: int = 0
    removed_unpacked: int = 0
    removed_tmp: int = 0
    removed_tmp_bytes: int = 0
    broken_images: list[str] = field(default_factory=list)  # "digest: why", kept as is


@dataclass
class FsckReport:
    checked: int = 0
    bad: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    bad_records: list[str] = field(default_factory=list)  # "path: why"
    broken_images: list[str] = field(default_factory=list)  # "digest: why"
    warnings: list[str] = field(default_factory=list)  # e.g. permissions wider than 0700

    @property
    def ok(self) -> bool:
        return not (self.bad or self.missing or self.bad_records or self.broken_images)


class Store:
    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        notify: Callable[[str], None] | None = None,
    ):
        """The store at ROOT (explicit: the CLI resolves --root/$SLIMAGE_HOME, the library
        reads no environment). NOTIFY gets the rare line worth telling a waiting user
        (e.g. gc waiting for writers); the library itself prints nothing."""
        self.root = Path(root)
        self.notify = notify
        self.blobs_dir = self.root / "blobs" / "sha256"
        self.layers_dir = self.root / "layers"
        self.tmp_dir = self.root / "tmp"
        if not self.root.is_dir():
            # A root we create is ours: 0700 (a root the user made keeps its mode; fsck
            # warns if it is wider).
            with disk_errors("the store", self.root):
                self.root.parent.mkdir(parents=True, exist_ok=True)
                with contextlib.suppress(FileExistsError):
                    self.root.mkdir(mode=0o700)
                    os.chmod(self.root, 0o700)
        with disk_errors("the store", self.root):
            for d in (self.blobs_dir, self.layers_dir, self.tmp_dir):
                d.mkdir(parents=True, exist_ok=True)
        self._refs_path = self.root / "refs.json"
        self.pins_dir = self.root / "pins"
        self.claims_dir = self.root / "claims"

    def private_dir(self, name: str) -> Path:
        """`<root>/NAME`, 0700: where extracted layer content lives (see PRIVATE_DIRS)."""
        with disk_errors(name, self.root):
            return private_dir(self.root / name)

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
        waits for them. Cheap: one flock per process, not per blob. Inside a `writing()`
        scope the hold ends with the scope instead."""
        key = str(self.root.resolve())
        with _MUTEX:
            if not _IN_SCOPE.get():
                _PERMANENT.add(key)
            if key in _WRITER_LOCKS:
                return
            fd = os.open(self.root / "gc.lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_SH)
            except BaseException:
                os.close(fd)
                raise
            _WRITER_LOCKS[key] = fd

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the writer lock (and this scope's claims) for the block only: for one
        ingest, which references everything it wrote or found before it ends."""
        key = str(self.root.resolve())
        token = _IN_SCOPE.set(True)
        with _MUTEX:
            _SCOPES[key] = _SCOPES.get(key, 0) + 1
        try:
            self.hold_for_writing()
            yield
        finally:
            _IN_SCOPE.reset(token)
            with _MUTEX:
                _SCOPES[key] -= 1
                last = _SCOPES[key] == 0 and key not in _PERMANENT
            if last:
                self._release_writer()

    def claim(self, digest: str) -> bool:
        """Whether the store holds DIGEST, held from now on for this process.

        The one way an ingest asks "is this blob already here?": it takes the writer lock
        first (so gc, which needs it exclusively, cannot delete the blob before the
        image that uses it is recorded) and records the claim (so another process's
        rollback leaves the blob alone). A blob found missing is simply written."""
        self.hold_for_writing()
        with self.lock(shared=True):
            self._record_claim(digest)
            return self.has_blob(digest)

    def _record_claim(self, digest: str) -> None:
        """Append DIGEST to this process's claim file (caller holds the ref lock)."""
        key = str(self.root.resolve())
        entry = _CLAIMS.get(key)
        if entry is None:
            self.claims_dir.mkdir(exist_ok=True)
            path = self.claims_dir / f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            entry = _CLAIMS[key] = (fd, path)
        with disk_errors("a claim record", self.root):
            os.write(entry[0], (validate(digest) + "\n").encode())

    def _claimed_by_others(self) -> set[str]:
        """Digests claimed by other live processes (caller holds the ref lock exclusively).
        A claim file whose owner died is removed."""
        own = _CLAIMS.get(str(self.root.resolve()))
        out: set[str] = set()
        if not self.claims_dir.is_dir():
            return out
        for path in self.claims_dir.iterdir():
            if own is not None and path == own[1]:
                continue
            if not _held_by_someone(path):
                path.unlink(missing_ok=True)
                continue
            with contextlib.suppress(OSError):
                out.update(line for line in path.read_text().split() if line)
        return out

    def _release_writer(self) -> None:
        """Drop this process's writer lock and claims (its writes are over)."""
        key = str(self.root.resolve())
        _PERMANENT.discard(key)
        own = _WRITER_LOCKS.pop(key, None)
        if own is not None:
            fcntl.flock(own, fcntl.LOCK_UN)
            os.close(own)
        claim = _CLAIMS.pop(key, None)
        if claim is not None:
            claim[1].unlink(missing_ok=True)
            os.close(claim[0])

    def rollback(self, created: list[str]) -> list[str]:
        """Remove the blobs in CREATED (those one failed ingest wrote) that nobody else
        needs: not claimed by another live process and not reachable from any image.
        Under the exclusive ref lock, so no claim or `add_image` slips in between.
        Returns the digests removed."""
        if not created:
            return []
        removed: list[str] = []
        with self.lock():
            keep = self._claimed_by_others() | self._reachable()[0]
            doomed = {d for d in created if d not in keep}
            for info_path in self.layers_dir.glob("*.json"):
                try:
                    blob = json.loads(info_path.read_text()).get("blob", "")
                except (OSError, ValueError, AttributeError):
                    continue
                if blob in doomed:
                    info_path.unlink(missing_ok=True)
            for digest in sorted(doomed):
                with contextlib.suppress(FileNotFoundError):
                    self.blob_path(digest).unlink()
                    removed.append(digest)
        return removed

    @contextlib.contextmanager
    def _exclusive_gc(self) -> Iterator[None]:
        self._release_writer()  # our own writes are finished when gc is called
        fd = os.open(self.root / "gc.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if self.notify is not None:
                    self.notify("waiting for other processes writing to the store")
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
        if expected and self.claim(expected):
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
            info = _parse_layer_info(path.read_bytes())
        except (OSError, InvalidImageError):
            return None  # absent or corrupt: the layer is indexed again; fsck reports it
        return info if self.has_blob(info.blob) else None

    def put_layer_info(self, info: LayerInfo) -> None:
        self._atomic_write(
            self.layers_dir / f"{hex_of(info.diff_id)}.json", json.dumps(info.to_dict()).encode()
        )

    # ------------------------------------------------------------------ refs
    def _atomic_write(self, path: Path, data: bytes) -> None:
        with disk_errors(path.name, self.root):
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

    def _reachable(self) -> tuple[set[str], set[str], dict[str, str]]:
        """(blob digests, layer diff_ids, broken images) reachable from refs, images and
        pins. A missing or unreadable manifest or config makes its image broken (digest ->
        why); the walk goes on, so one broken image never stops gc or fsck."""
        keep: set[str] = set()
        diff_ids: set[str] = set()
        broken: dict[str, str] = {}
        data = self._load_refs()
        roots = list(data["images"]) + list(data["refs"].values()) + self._pinned()
        todo = [(d, d) for d in roots]
        while todo:
            digest, image = todo.pop()
            if digest in keep:
                continue
            keep.add(digest)
            try:
                doc = parse_manifest_or_index(self.read_blob(digest))
            except (SlimageError, OSError, ValueError) as exc:
                broken.setdefault(image, f"manifest {digest}: {_one_line(exc)}")
                continue
            if isinstance(doc, Index):
                todo.extend((d.digest, image) for d in doc.manifests)
                continue
            keep.add(doc.config.digest)
            keep.update(d.digest for d in doc.layers)
            try:
                config = json.loads(self.read_blob(doc.config.digest))
                ids = config["rootfs"]["diff_ids"]
                if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
                    raise InvalidImageError("rootfs.diff_ids is not a list of digests")
                diff_ids.update(ids)
            except (SlimageError, OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
                broken.setdefault(image, f"config {doc.config.digest}: {_one_line(exc)}")
            for layer in doc.layers:
                if not self.has_blob(layer.digest):
                    broken.setdefault(image, f"layer {layer.digest} is not in the store")
        return keep, diff_ids, broken

    def gc(self) -> GcReport:
        """Delete every blob no image, tag or pin reaches, the layer records and unpacked
        dirs that went with them, and temp files no live writer holds. Waits for every
        process that writes to the store. A broken image is kept and reported."""
        report = GcReport()
        with self._exclusive_gc(), self.lock():
            keep, diff_ids, broken = self._reachable()
            report.broken_images = [f"{d}: {why}" for d, why in sorted(broken.items())]
            for digest in list(self.iter_blobs()):
                if digest in keep:
                    report.kept_blobs += 1
                    continue
                path = self.blob_path(digest)
                with contextlib.suppress(FileNotFoundError):
                    size = path.stat().st_size
                    path.unlink()
                    report.removed_bytes += size
                    report.removed_blobs.append(digest)
            for info_path in self.layers_dir.glob("*.json"):
                try:
                    blob = _parse_layer_info(info_path.read_bytes()).blob
                except (OSError, InvalidImageError):
                    info_path.unlink(missing_ok=True)
                    continue
                if blob not in keep:
                    info_path.unlink(missing_ok=True)
            for tmp in self.tmp_dir.iterdir():
                # A writer killed with -9 leaves its temp file; a live one holds a flock
                # on it (and on its claim file) and keeps it.
                if _held_by_someone(tmp):
                    continue
                with contextlib.suppress(OSError):
                    size = tmp.lstat().st_size
                    if tmp.is_dir() and not tmp.is_symlink():
                        shutil.rmtree(tmp)
                    else:
                        tmp.unlink()
                    report.removed_tmp += 1
                    report.removed_tmp_bytes += size
            report.removed_bytes += report.removed_tmp_bytes
            self._claimed_by_others()  # drops the claim files of dead processes
            report.removed_unpacked = self._prune_unpacked(diff_ids)
        return report

    def _prune_unpacked(self, diff_ids: set[str]) -> int:
        """Unpacked layer dirs (the builder's and runtime's overlay lowers) go with their
        layers; only `empty` and the dirs of reachable diff_ids stay. Each dir is first
        renamed aside, so a gc killed mid-delete never leaves a half-emptied dir under a
        layer's name (which the builder would take for a complete one)."""
        base = self.root / "layers-unpacked"
        if not base.is_dir():
            return 0
        keep = {d.split(":", 1)[-1] for d in diff_ids} | {"empty"}
        removed = 0
        for path in base.iterdir():
            if path.name in keep:
                continue
            doomed = path
            if not path.name.startswith(".gc-"):
                doomed = base / f".gc-{uuid.uuid4().hex[:12]}"
                try:
                    os.rename(path, doomed)
                except OSError:
                    continue
            shutil.rmtree(doomed, ignore_errors=True)
            removed += 1
        return removed

    def fsck(self) -> FsckReport:
        """Re-hash every blob; check every recorded image's manifest, config and layers
        are present and readable, and every layer record parses; warn when the root or a
        directory of extracted content is wider than 0700. Never stops at the first
        problem: one broken image is reported, the rest are still checked."""
        report = FsckReport()
        for digest in self.iter_blobs():
            report.checked += 1
            h = hashlib.sha256()
            try:
                with open(self.blob_path(digest), "rb") as fh:
                    while chunk := fh.read(CHUNK):
                        h.update(chunk)
            except OSError:
                continue  # removed meanwhile (gc): nothing to check
            if "sha256:" + h.hexdigest() != digest:
                report.bad.append(digest)
        keep, _, broken = self._reachable()
        report.missing = sorted(d for d in keep if not self.has_blob(d))
        report.broken_images = [f"{d}: {why}" for d, why in sorted(broken.items())]
        for info_path in sorted(self.layers_dir.glob("*.json")):
            try:
                info = _parse_layer_info(info_path.read_bytes())
                if info_path.stem != hex_of(info.diff_id):
                    raise InvalidImageError(f"names diff_id {info.diff_id}")
            except (OSError, InvalidImageError) as exc:
                report.bad_records.append(f"{info_path}: {_one_line(exc)}")
        report.warnings = self.permission_warnings()
        return report

    def permission_warnings(self) -> list[str]:
        """The store root and the dirs of extracted content must be 0700 (root only)."""
        out = []
        for path in [self.root, *(self.root / n for n in PRIVATE_DIRS)]:
            try:
                mode = stat.S_IMODE(path.stat().st_mode)
            except OSError:
                continue
            if mode & 0o077:
                out.append(
                    f"{path} is mode {mode:04o}, wider than 0700: other users can reach "
                    f"unpacked layers (setuid files, devices); run chmod 0700 {path}"
                )
        return out


_LAYER_INFO_FIELDS = {
    "diff_id": str,
    "blob": str,
    "media_type": str,
    "blob_size": int,
    "size": int,
    "uncompressed_size": int,
    "entries": int,
}


def _parse_layer_info(raw: bytes) -> LayerInfo:
    """A `layers/<hex>.json` record, type-checked: a corrupt record is refused with
    InvalidImageError (callers treat it as absent), never a crash."""
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise InvalidImageError(f"corrupt layer record ({_one_line(exc)})") from None
    if not isinstance(data, dict):
        raise InvalidImageError("corrupt layer record (not an object)")
    for name, kind in _LAYER_INFO_FIELDS.items():
        value = data.get(name, 0 if kind is int else None)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise InvalidImageError(f"corrupt layer record ({name} is {type(value).__name__})")
        if isinstance(value, int) and value < 0:
            raise InvalidImageError(f"corrupt layer record ({name} is negative)")
    try:
        validate(data["diff_id"])
        validate(data["blob"])
    except SlimageError as exc:
        raise InvalidImageError(f"corrupt layer record ({_one_line(exc)})") from None
    return LayerInfo(**{k: data[k] for k in _LAYER_INFO_FIELDS if k in data})


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def media_type_is_layer(media_type: str) -> bool:
    return media_type in mt.LAYERS
