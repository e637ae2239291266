"""A build cache shared through an OCI registry or a directory: `--cache-to`/`--cache-from`.

Why a registry: it is the distributed store a team already runs. The cache is an OCI
artifact, so any registry can hold it and its layers are the very blobs images use (a
registry can cross-repo mount them, and an image pushed from the same build shares them):

    manifest  application/vnd.oci.image.manifest.v1+json
      config  application/vnd.slimage.build-cache.config.v1+json   (the records, below)
      layers  the step layers, as stored (tar+gzip or tar+zstd)

    config = {"version": 1, "records": [{"key": STEP_KEY, "diff_id": ..., "layer": DIGEST,
                                         "created": RFC3339}, ...]}

A record maps a step's cache key (`slimage.builder.cache.step_key`: the parent's key, the
expanded instruction and the content digests it reads; exact by construction, nothing in
it names the machine or the store) to the layer it produced. `type=local` writes the same
artifact as an OCI image layout (`index.json`, `blobs/sha256/`), for CI systems that cache
folders.

Import is lazy. A remote hit adds the record's layer descriptor to the stage without its
bytes; `RemoteCaches.ensure_local` fetches a layer only when a later step must run on top
of it, a `COPY --from`/`--mount=from=` reads it, or the final image (which the store must
hold whole) contains it. Fetched blobs go through the store's `BlobWriter` with the
expected digest and size, so a blob with wrong bytes is refused (`CacheBlobRefused`); the
builder then forgets every record pointing at that blob and reruns the build, which
rebuilds that step locally.

Export writes the blobs first and the manifest last (the tag, or `index.json`, moves only
after everything it names is in place), so an interrupted export never leaves a cache
manifest that points at missing blobs, and two runners exporting at once each leave a
complete manifest (last writer wins, as with BuildKit).

Faults never stop a build: an unreachable or unauthorized cache ref, a corrupt cache
manifest or one of another media type is reported once as a warning and the build goes
on without that cache.

BuildKit's caches, and why they give no hits here (measured in bench/fleet.py, see
BENCHMARKS.md). BuildKit's registry cache (`application/vnd.buildkit.cacheconfig.v0`)
and its inline cache (the `moby.buildkit.cache.v0` label-like key in an image config)
share one format: `{"layers": [{"blob", "parent"}], "records": [{"digest", "layers",
"inputs": [[{"selector", "link"}]]}]}`. A record's `digest` is a BuildKit cache key: for
an exec or file op, the digest of the LLB op's protobuf encoding (`pb.Op` with its full
`ExecOp` meta, mounts, platform and constraints), chained through `inputs` to the keys of
its parents, and for a `COPY` from the context a *selector* that is a BuildKit
`contenthash` of the files (a tree hash over tar-header-like records). The base image
record is the digest of a `docker-image://NAME@DIGEST` source op. To match one, slimage
would have to reproduce the exact protobuf bytes that BuildKit's Dockerfile frontend
(`dockerfile2llb`) emits for each instruction, including fields slimage has no notion of
(the frontend's proxy env, custom op names, the LLB version, the `llb.Constraints` of the
worker), and BuildKit's own content hash, for every BuildKit version. Our keys and theirs
hash different things, so an equal key would be a collision. `--cache-from` of such an
image is therefore read, counted and reported ("N BuildKit records, 0 usable") but never
yields a hit; the measured figure is in BENCHMARKS.md.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slimage.errors import SlimageError, UsageError
from slimage.oci import mediatypes as mt
from slimage.oci.digest import sha256_digest
from slimage.oci.model import Descriptor, Manifest

if TYPE_CHECKING:
    from slimage.builder.cache import CacheEntry
    from slimage.store.store import Store
    from slimage.transports.registry.client import RegistryClient

CACHE_CONFIG_TYPE = "application/vnd.slimage.build-cache.config.v1+json"
BUILDKIT_CACHE_CONFIG = "application/vnd.buildkit.cacheconfig.v0"
BUILDKIT_INLINE_KEY = "moby.buildkit.cache.v0"
MAX_CONFIG_BYTES = 16 << 20
MAX_MANIFEST_BYTES = 4 << 20
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")

Warn = Callable[[str], None]


class CacheBlobRefused(SlimageError):
    """A cache blob whose bytes do not match its digest (or its diff_id): the build forgets
    the records that name it and runs again, rebuilding that step locally."""

    def __init__(self, message: str, digest: str):
        super().__init__(message)
        self.digest = digest


# ------------------------------------------------------------------------------ specs


@dataclass
class CacheSpec:
    """One `--cache-to`/`--cache-from` value: type=registry,ref=R[,mode=] or type=local."""

    kind: str  # "registry" | "local"
    ref: str = ""
    path: str = ""
    mode: str = "min"
    text: str = ""

    @property
    def label(self) -> str:
        return self.ref if self.kind == "registry" else self.path


def parse_cache_spec(text: str, *, export: bool) -> CacheSpec:
    """Parse TEXT (BuildKit's syntax). A bare `REF` means type=registry,ref=REF, as in
    `docker build --cache-from IMAGE`."""
    flag = "--cache-to" if export else "--cache-from"
    if "=" not in text:
        text = f"type=registry,ref={text}"
    fields: dict[str, str] = {}
    for part in text.split(","):
        k, eq, v = part.partition("=")
        if not eq or not k.strip():
            raise UsageError(f"{flag} {text!r}: expected key=value pairs (type=registry,ref=R)")
        fields[k.strip()] = v.strip()
    kind = fields.pop("type", "registry")
    mode = fields.pop("mode", "min")
    if mode not in ("min", "max"):
        raise UsageError(f"{flag} {text!r}: mode must be min or max")
    if kind == "registry":
        ref = fields.pop("ref", "")
        if not ref:
            raise UsageError(f"{flag} {text!r}: type=registry needs ref=REGISTRY/REPO:TAG")
        from slimage.transports.registry.names import RemoteRef

        try:
            RemoteRef.parse(ref)
        except SlimageError as err:
            raise UsageError(f"{flag} {text!r}: {err}") from None
        spec = CacheSpec("registry", ref=ref, mode=mode, text=text)
    elif kind == "local":
        key = "dest" if export else "src"
        path = fields.pop(key, "")
        if not path:
            raise UsageError(f"{flag} {text!r}: type=local needs {key}=DIR")
        spec = CacheSpec("local", path=path, mode=mode, text=text)
    else:
        raise UsageError(f"{flag} {text!r}: type must be registry or local")
    fields.pop("oci-mediatypes", None)
    fields.pop("ignore-error", None)
    if fields:
        raise UsageError(f"{flag} {text!r}: unknown option {sorted(fields)[0]!r}")
    return spec


# ------------------------------------------------------------------------------ records


@dataclass
class Record:
    key: str
    diff_id: str
    layer: Descriptor
    created: str

    def entry(self) -> CacheEntry:
        from slimage.builder.cache import CacheEntry

        return CacheEntry(self.diff_id, self.layer.to_dict(), self.created)


def encode_cache(records: Iterable[Record]) -> tuple[bytes, bytes, list[Descriptor]]:
    """(manifest bytes, config bytes, layers) of a cache artifact holding RECORDS. Sorted,
    so the same records always give the same manifest digest."""
    recs = sorted({r.key: r for r in records}.values(), key=lambda r: r.key)
    layers: dict[str, Descriptor] = {}
    for r in recs:
        layers.setdefault(r.layer.digest, r.layer)
    config = json.dumps(
        {
            "version": 1,
            "records": [
                {"key": r.key, "diff_id": r.diff_id, "layer": r.layer.digest, "created": r.created}
                for r in recs
            ],
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    descs = sorted(layers.values(), key=lambda d: d.digest)
    manifest = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {
            "mediaType": CACHE_CONFIG_TYPE,
            "digest": sha256_digest(config),
            "size": len(config),
        },
        "layers": [d.to_dict() for d in descs],
    }
    raw = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    return raw, config, descs


def decode_records(manifest: Manifest, config_raw: bytes, where: str) -> list[Record]:
    """The records of a cache artifact; any malformed field rejects the whole cache (a
    half-trusted cache is worse than none)."""
    try:
        data = json.loads(config_raw)
    except ValueError:
        raise SlimageError(f"{where}: cache config is not JSON") from None
    if not isinstance(data, dict) or data.get("version") != 1:
        raise SlimageError(f"{where}: unknown cache config version")
    layers = {d.digest: d for d in manifest.layers}
    out = []
    raw_records = data.get("records")
    if not isinstance(raw_records, list):
        raise SlimageError(f"{where}: cache config has no records list")
    for i, rec in enumerate(raw_records):
        ok = (
            isinstance(rec, dict)
            and all(isinstance(rec.get(k), str) for k in ("key", "diff_id", "layer", "created"))
            and _DIGEST.fullmatch(rec["key"])
            and _DIGEST.fullmatch(rec["diff_id"])
            and rec["layer"] in layers
            and len(rec["created"]) <= 64
        )
        if not ok:
            raise SlimageError(f"{where}: cache record {i} is malformed")
        out.append(Record(rec["key"], rec["diff_id"], layers[rec["layer"]], rec["created"]))
    return out


# ------------------------------------------------------------------------------ sources


class Source:
    """Where imported records' blobs come from."""

    label = ""

    def __init__(self) -> None:
        self.records: dict[str, Record] = {}

    def fetch(self, store: Store, desc: Descriptor) -> int:
        """Bring DESC's blob into STORE, verified; return the bytes moved."""
        raise NotImplementedError


class RegistrySource(Source):
    def __init__(self, ref: str, client: RegistryClient, repository: str):
        super().__init__()
        self.label = ref
        self.client = client
        self.repository = repository

    def fetch(self, store: Store, desc: Descriptor) -> int:
        from slimage.transports.registry.pull import _download
        from slimage.transports.registry.report import BlobReport, NullProgress

        blob = BlobReport(desc.digest, desc.size, desc.media_type, "layer")
        _download(
            self.client,
            store,
            self.repository,
            desc,
            blob,
            NullProgress(),
            threading.Event(),
            self.label,
        )
        return blob.bytes_received


class LocalSource(Source):
    def __init__(self, path: Path):
        super().__init__()
        self.label = str(path)
        self.path = path

    def blob(self, digest: str) -> Path:
        return self.path / "blobs" / "sha256" / digest.split(":", 1)[1]

    def fetch(self, store: Store, desc: Descriptor) -> int:
        with open(self.blob(desc.digest), "rb") as fh:
            store.put_stream(fh, desc.digest, desc.size)
        return desc.size


def _read_capped(path: Path, cap: int, what: str) -> bytes:
    with open(path, "rb") as fh:
        data = fh.read(cap + 1)
    if len(data) > cap:
        raise SlimageError(f"{what} is over {cap} bytes")
    return data


def _open_local(spec: CacheSpec) -> LocalSource:
    root = Path(spec.path)
    where = f"cache {root}"
    try:
        index = json.loads(_read_capped(root / "index.json", MAX_MANIFEST_BYTES, where))
        entries = index.get("manifests") if isinstance(index, dict) else None
        if not isinstance(entries, list) or not entries:
            raise SlimageError(f"{where}: index.json lists no manifest")
        desc = Descriptor.from_dict(entries[-1])
        src = LocalSource(root)
        raw = _read_capped(src.blob(desc.digest), MAX_MANIFEST_BYTES, where)
        if sha256_digest(raw) != desc.digest:
            raise SlimageError(f"{where}: manifest {desc.digest} does not match its digest")
        manifest = Manifest.parse(raw, what=f"{where} manifest")
        _check_cache_type(manifest, where)
        config = _read_capped(src.blob(manifest.config.digest), MAX_CONFIG_BYTES, where)
        if sha256_digest(config) != manifest.config.digest:
            raise SlimageError(
                f"{where}: config {manifest.config.digest} does not match its digest"
            )
    except FileNotFoundError as exc:
        raise SlimageError(f"{where}: {exc.filename} not found") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SlimageError(f"{where}: unreadable ({type(exc).__name__}: {exc})") from None
    for r in decode_records(manifest, config, where):
        src.records[r.key] = r
    return src


class NotACache(SlimageError):
    """The ref holds something else (an image, another tool's cache)."""


def _check_cache_type(manifest: Manifest, where: str) -> None:
    ctype = manifest.config.media_type
    if ctype != CACHE_CONFIG_TYPE:
        raise NotACache(f"{where}: not a slimage build cache (config media type {ctype!r})")


def _open_registry(spec: CacheSpec, store: Store) -> RegistrySource:
    from slimage.transports.registry import seen
    from slimage.transports.registry.client import RegistryClient
    from slimage.transports.registry.manifests import fetch_manifest
    from slimage.transports.registry.names import RemoteRef
    from slimage.transports.registry.pull import _fetch_small_blob
    from slimage.transports.registry.report import BlobReport

    rref = RemoteRef.parse(spec.ref)
    where = f"cache {rref.display}"
    client = RegistryClient(rref.registry, scopes=[f"repository:{rref.repository}:pull"])
    client.ping()
    fetched = fetch_manifest(client, rref.repository, rref.reference, where=where)
    doc = fetched.doc
    if not isinstance(doc, Manifest):
        raise NotACache(f"{where}: an index, not a slimage build cache")
    src = RegistrySource(rref.display, client, rref.repository)
    cdesc = doc.config
    if cdesc.media_type != CACHE_CONFIG_TYPE:
        if cdesc.media_type in mt.CONFIGS and cdesc.size <= MAX_CONFIG_BYTES:
            blob = BlobReport(cdesc.digest, cdesc.size, cdesc.media_type, "config")
            raw = _fetch_small_blob(client, store, rref.repository, cdesc, blob, where)
            raise NotACache(f"{where}: {describe_image_config(raw)}")
        _check_cache_type(doc, where)
    if cdesc.size > MAX_CONFIG_BYTES:
        raise SlimageError(f"{where}: cache config is {cdesc.size} bytes; refusing")
    blob = BlobReport(cdesc.digest, cdesc.size, cdesc.media_type, "config")
    config = _fetch_small_blob(client, store, rref.repository, cdesc, blob, where)
    for r in decode_records(doc, config, where):
        src.records[r.key] = r
    # Mount hints: a later push to a sibling repository can mount these blobs.
    seen.record(store, rref.registry, rref.repository, [d.digest for d in doc.layers])
    return src


def buildkit_records(config_raw: bytes) -> list[dict[str, Any]] | None:
    """The records of BuildKit's inline cache in an image config, or None if it has none.
    (The value is a JSON string of a `cacheconfig.v0` document, base64 in some versions.)"""
    try:
        data = json.loads(config_raw)
    except ValueError:
        return None
    value = data.get(BUILDKIT_INLINE_KEY) if isinstance(data, dict) else None
    if value is None:
        return None
    if isinstance(value, str):
        import base64

        try:
            value = json.loads(value)
        except ValueError:
            try:
                value = json.loads(base64.b64decode(value))
            except ValueError:
                return []
    if isinstance(value, list):  # moby's form: the records alone, layers by image index
        return value
    recs = value.get("records") if isinstance(value, dict) else None
    return recs if isinstance(recs, list) else []


def describe_image_config(raw: bytes) -> str:
    """Why an image named by --cache-from gives no hits (see the module docstring)."""
    recs = buildkit_records(raw)
    if recs is None:
        return "an image without a build cache; ignored"
    return (
        f"a BuildKit inline cache ({BUILDKIT_INLINE_KEY}): {len(recs)} records, 0 usable "
        "(BuildKit keys are LLB op digests, not slimage step keys); ignored"
    )


# ------------------------------------------------------------------------------ import


@dataclass
class RemoteCaches:
    """The `--cache-from` sources of one build, and what was pulled from them."""

    store: Store
    sources: list[Source] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)
    bytes_pulled: int = 0
    blobs_pulled: int = 0
    hits: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def lookup(self, key: str) -> Record | None:
        for src in self.sources:
            rec = src.records.get(key)
            if rec is not None and rec.layer.digest not in self.refused:
                return rec
        return None

    def has(self, digest: str) -> bool:
        return any(r.layer.digest == digest for s in self.sources for r in s.records.values())

    def ensure_local(self, layers: Iterable[Descriptor], diff_ids: Iterable[str]) -> None:
        """Fetch every layer of LAYERS the store lacks from the source that recorded it.
        A wrong blob raises CacheBlobRefused; the store keeps nothing of it."""
        from slimage.store.images import index_stored_layer

        for desc, diff_id in zip(layers, diff_ids, strict=True):
            if self.store.has_blob(desc.digest):
                continue
            src = next(
                (
                    s
                    for s in self.sources
                    if any(r.layer.digest == desc.digest for r in s.records.values())
                ),
                None,
            )
            if src is None:
                continue  # not ours: the caller's own error names it
            with self._lock:
                if self.store.has_blob(desc.digest):
                    continue
                where = f"cache {src.label}: layer {desc.digest}"
                try:
                    n = src.fetch(self.store, desc)
                    # The diff_id the record claims is what the image config will say.
                    index_stored_layer(self.store, desc, diff_id)
                except (OSError, SlimageError) as exc:
                    # A blob with wrong bytes never reached the store (BlobWriter); one
                    # whose bytes are right but whose diff_id is not stays as a plain blob
                    # for gc (another build may hold it), and no record of ours uses it.
                    raise CacheBlobRefused(f"{where}: refused ({exc})", desc.digest) from None
                self.bytes_pulled += n
                self.blobs_pulled += 1


def load_sources(specs: list[CacheSpec], store: Store, warn: Warn) -> RemoteCaches:
    """Open every --cache-from; one that fails is reported once and skipped."""
    caches = RemoteCaches(store)
    for spec in specs:
        try:
            if spec.kind == "local":
                src: Source = _open_local(spec)
            else:
                src = _open_registry(spec, store)
        except SlimageError as exc:
            warn(f"--cache-from {spec.label}: {exc}; building without it")
            continue
        caches.sources.append(src)
    return caches


# ------------------------------------------------------------------------------ export


def export_cache(
    spec: CacheSpec, store: Store, records: list[Record], remote: RemoteCaches | None
) -> str:
    """Write RECORDS to SPEC's destination (blobs, config, then the manifest); returns the
    manifest digest."""
    raw, config, layers = encode_cache(records)
    digest = sha256_digest(raw)
    store.put_bytes(config, sha256_digest(config))

    def local(desc: Descriptor) -> None:
        if not store.has_blob(desc.digest) and remote is not None:
            remote.ensure_local([desc], [_diff_id_of(records, desc.digest)])

    if spec.kind == "local":
        for d in layers:
            local(d)
        _write_layout(Path(spec.path), store, raw, config, layers)
        return digest
    from slimage.transports.registry.names import DEFAULT_JOBS, RemoteRef
    from slimage.transports.registry.push import BlobBytes, _transfer

    rref = RemoteRef.parse(spec.ref)
    cdesc = Descriptor(CACHE_CONFIG_TYPE, sha256_digest(config), len(config))

    def locate(desc: Descriptor) -> BlobBytes:
        if desc.digest == cdesc.digest:
            return BlobBytes(len(config), data=config)
        local(desc)
        return BlobBytes(desc.size, str(store.blob_path(desc.digest)))

    _transfer(
        rref,
        digest,
        [(digest, raw, mt.OCI_MANIFEST)],
        [cdesc, *layers],
        locate,
        store=store,
        insecure=(),
        jobs=DEFAULT_JOBS,
        chunk_size=None,
        progress=None,
        client=None,
    )
    return digest


def _diff_id_of(records: list[Record], digest: str) -> str:
    return next(r.diff_id for r in records if r.layer.digest == digest)


def _write_layout(
    root: Path, store: Store, raw: bytes, config: bytes, layers: list[Descriptor]
) -> None:
    """An OCI layout; `index.json` is replaced last and atomically."""
    import shutil

    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')

    def put(digest: str, write: Callable[[Any], None], size: int) -> None:
        target = blobs / digest.split(":", 1)[1]
        if target.is_file() and target.stat().st_size == size:
            return
        fd, tmp = tempfile.mkstemp(dir=blobs, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    for d in layers:
        with store.open_blob(d.digest) as src:

            def copy(fh: Any, src: Any = src) -> None:
                shutil.copyfileobj(src, fh, 1 << 20)

            put(d.digest, copy, d.size)
    put(sha256_digest(config), lambda fh: fh.write(config), len(config))
    put(sha256_digest(raw), lambda fh: fh.write(raw), len(raw))
    index = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_INDEX,
        "manifests": [
            {
                "mediaType": mt.OCI_MANIFEST,
                "digest": sha256_digest(raw),
                "size": len(raw),
                "annotations": {"org.opencontainers.image.ref.name": "cache"},
            }
        ],
    }
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".index-")
    with os.fdopen(fd, "w") as fh:
        json.dump(index, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, root / "index.json")
