"""`docker save` archives: reading both layouts and writing one `docker load` accepts.

Two layouts exist in the wild:
- legacy (Docker <= 24): `<v1id>/layer.tar` (usually uncompressed), `<hex>.json` config,
  `manifest.json`, `repositories`;
- Docker 25+: an OCI layout inside the tar (`oci-layout`, `index.json`,
  `blobs/sha256/*`) plus the same `manifest.json`, and `layer.tar` symlinks into blobs.

Reading indexes the outer tar once and then reads members by offset (see tarindex), so a
layer is streamed from its place in the file and never held in memory. Writing produces
the Docker 25 shape, which Docker 20.10's `docker load` also accepts (it follows
manifest.json), and which is at the same time a valid OCI layout.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, BinaryIO

from slimage.errors import InvalidImageError, NotFoundError, UnsupportedMediaTypeError
from slimage.image import BlobLocation, Image, Layer
from slimage.layers.compression import sniff
from slimage.oci import mediatypes as mt
from slimage.oci.digest import VerifyingReader, hex_of, sha256_digest, validate
from slimage.oci.model import Descriptor, ImageConfig, Index, Manifest, Platform
from slimage.oci.safejson import load_json
from slimage.store.refs import parse_reference
from slimage.transports.oci_layout import (
    LAYOUT_FILE,
    ArchiveBlobs,
    SourceLayer,
    _full_name,
    docker_manifest_for,
    image_from_manifest,
    images_from_index,
    index_entry,
    oci_manifest_for,
    read_index,
    ref_name_for,
)
from slimage.transports.tarindex import CHUNK, TarIndex


@dataclass
class ArchiveEntry:
    config: str
    repo_tags: list[str]
    layers: list[str]


def _parse_manifest_json(raw: bytes, label: str) -> list[ArchiveEntry]:
    """`manifest.json`: a non-empty list of {Config: str, RepoTags: [str] | null,
    Layers: [str]}. Types are checked the way Docker's loader decodes them (into
    `[]manifestItem`), so `"RepoTags": "evil"` is refused rather than read as the four
    tags e, v, i, l; `LayerSources` and unknown keys are ignored, as Docker does."""
    what = f"{label}: manifest.json"
    data = load_json(raw, what)
    if not isinstance(data, list) or not data:
        raise InvalidImageError(f"{what} is not a non-empty list")
    out = []
    for i, item in enumerate(data):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("Config"), str)
            or not isinstance(item.get("Layers"), list)
        ):
            raise InvalidImageError(f"{what}: entry {i} lacks Config or Layers")
        layers = item["Layers"]
        for j, name in enumerate(layers):
            if not isinstance(name, str):
                raise InvalidImageError(
                    f"{what}: entry {i}: Layers[{j}] must be a string, not {type(name).__name__}"
                )
        tags = item.get("RepoTags")
        if tags is None:
            tags = []
        elif not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise InvalidImageError(f"{what}: entry {i}: RepoTags must be a list of strings")
        out.append(ArchiveEntry(item["Config"], list(tags), list(layers)))
    return out


def _hash_member(index: TarIndex, name: str) -> str:
    h = hashlib.sha256()
    with index.open_member(name) as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def _legacy_image(index: TarIndex, entry: ArchiveEntry) -> Image:
    label = index.label
    raw = index.read_member(entry.config)
    config_digest = sha256_digest(raw)
    stem = entry.config.rsplit("/", 1)[-1].removesuffix(".json")
    if len(stem) == 64 and all(c in "0123456789abcdef" for c in stem):
        if config_digest != f"sha256:{stem}":
            raise InvalidImageError(
                f"{label}: {entry.config}: content is {config_digest}, expected sha256:{stem}"
            )
    config = ImageConfig.parse(raw, what=f"{label}: {entry.config}")
    diff_ids = config.diff_ids
    if len(diff_ids) != len(entry.layers):
        raise InvalidImageError(
            f"{label}: manifest.json lists {len(entry.layers)} layers but the config has "
            f"{len(diff_ids)} diff_ids"
        )
    descs = []
    for name, diff_id in zip(entry.layers, diff_ids, strict=True):
        member = index.resolve(name)
        with index.open_member(name) as fh:
            kind = sniff(fh.read(8))
        if kind == "none":
            digest = diff_id  # checked against the bytes when the layer is read
        elif kind in ("gzip", "zstd"):
            digest = _hash_member(index, name)
        else:
            raise UnsupportedMediaTypeError(
                f"{label}: {name}: unsupported layer compression {kind}"
            )
        descs.append(Descriptor(mt.layer_media_type(kind, docker=True), digest, member.size))
    manifest = Manifest.build(
        Descriptor(mt.DOCKER_CONFIG, config_digest, len(raw)), descs, docker=True
    )
    layers: list[Layer] = []
    for name, desc, diff_id in zip(entry.layers, descs, diff_ids, strict=True):
        layer = SourceLayer(desc, diff_id, _member_opener(index, name, desc))
        layer.open_unverified = _raw_opener(index, name)
        layer.locate = _locator(index, name)
        layers.append(layer)
    return Image(
        manifest, config, layers, source=label, repo_tags=_norm_tags(entry.repo_tags, label)
    )


def _member_opener(index: TarIndex, name: str, desc: Descriptor) -> Callable[[], BinaryIO]:
    def opener() -> BinaryIO:
        raw: Any = index.open_member(name)
        return VerifyingReader(  # type: ignore[return-value]
            raw, desc.digest, size=desc.size, name=f"{index.label}: {name}"
        )

    return opener


def _raw_opener(index: TarIndex, name: str) -> Callable[[], BinaryIO]:
    def opener() -> BinaryIO:
        raw: Any = index.open_member(name)
        return raw

    return opener


def _locator(index: TarIndex, name: str) -> Callable[[], BlobLocation | None]:
    def locate() -> BlobLocation | None:
        where = index.location(name)
        return BlobLocation(*where) if where else None

    return locate


def _norm_tags(tags: list[str], label: str) -> list[str]:
    """Tags as the store names them. An invalid one refuses the archive, as `docker load`
    does ("invalid reference format"): dropping it would load an image the user can't
    find under the name the archive promised."""
    out = []
    for t in tags:
        try:
            out.append(parse_reference(t).name)
        except Exception as err:
            raise InvalidImageError(
                f"{label}: manifest.json: RepoTags: {t[:80]!r} is not a valid image name ({err})"
            ) from None
    return out


def read_archive(
    index: TarIndex, *, platform: Platform | None = None, ref: str | None = None
) -> list[Image]:
    """Every image in a `docker save` archive (or just the one tagged REF).

    With an OCI layout inside (Docker 25+), the real manifests are used and the tags come
    from manifest.json (matched by config) or the index annotations; a legacy archive gets
    a Docker schema2 manifest synthesised from manifest.json."""
    label = index.label
    entries = (
        _parse_manifest_json(index.read_member("manifest.json"), label)
        if index.has("manifest.json")
        else None
    )
    images: list[Image]
    if index.has("index.json") and (index.has("oci-layout") or entries is None):
        blobs = ArchiveBlobs(index)
        raw = index.read_member("index.json")
        images = images_from_index(blobs, raw, label=label, platform=platform)
        by_config: dict[str, list[str]] = {}
        for e in entries or []:
            cfg = e.config.rsplit("/", 1)[-1].removesuffix(".json")
            by_config.setdefault(f"sha256:{cfg}", []).extend(_norm_tags(e.repo_tags, index.label))
        for img in images:
            tags = by_config.get(img.id)
            if tags:
                img.repo_tags = list(dict.fromkeys(tags))
    elif entries is not None:
        images = [_legacy_image(index, e) for e in entries]
    else:
        raise InvalidImageError(f"{label}: not an image archive (no manifest.json or index.json)")
    if ref:
        want = parse_reference(ref).name
        images = [i for i in images if want in i.repo_tags]
        if not images:
            raise NotFoundError(f"{label}: no image tagged {ref!r} in the archive")
    return images


def open_archive(
    path: str | os.PathLike[str], *, platform: Platform | None = None, ref: str | None = None
) -> list[Image]:
    return read_archive(TarIndex.open(path), platform=platform, ref=ref)


def open_archive_stream(
    stream: BinaryIO, *, label: str = "stdin", tmp_dir: str | None = None
) -> list[Image]:
    return read_archive(TarIndex.spool(stream, label, tmp_dir))


# ---------------------------------------------------------------------------- writing


class _TarSink:
    """Layout files as entries of a tar stream (works on pipes: no seeking)."""

    def __init__(self, tf: tarfile.TarFile):
        self.tf = tf
        self.names: set[str] = set()

    def _info(self, name: str, size: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.size = size
        info.mode = 0o644
        info.mtime = 0
        info.uname = info.gname = ""
        return info

    def has(self, name: str) -> bool:
        return name in self.names

    def put_bytes(self, name: str, data: bytes) -> None:
        self.names.add(name)
        self.tf.addfile(self._info(name, len(data)), io.BytesIO(data))

    def put_stream(self, name: str, size: int, stream: BinaryIO) -> None:
        self.names.add(name)
        self.tf.addfile(self._info(name, size), stream)

    def put_dir(self, name: str) -> None:
        if name in self.names:
            return
        self.names.add(name)
        info = tarfile.TarInfo(name)
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        info.mtime = 0
        self.tf.addfile(info)

    def put_symlink(self, name: str, target: str) -> None:
        self.names.add(name)
        info = tarfile.TarInfo(name)
        info.type = tarfile.SYMTYPE
        info.linkname = target
        info.mtime = 0
        self.tf.addfile(info)


def _v1_ids(image: Image) -> list[str]:
    """Stable v1 IDs for the legacy `<id>/layer.tar` directories: a hash of the parent's id
    and the layer's ChainID, so two images sharing a base share those directories."""
    out: list[str] = []
    parent = ""
    for chain in image.chain_ids:
        v1 = hashlib.sha256(f"{parent} {chain}".encode()).hexdigest()
        out.append(v1)
        parent = v1
    return out


def write_archive(
    out: BinaryIO,
    images: Iterable[tuple[Image, list[str]]],
    *,
    legacy_dirs: bool = True,
    ref_name: str | None = None,
) -> None:
    """Write a docker-archive to OUT (a file or a pipe) for IMAGES with their tags.
    REF_NAME, when given, is the ref.name annotation of every index entry (skopeo's
    `oci-archive:FILE:v1`) instead of each tag's tag part.

    Blobs are copied as stored (no recompression): Docker's loader decompresses gzip and
    zstd layers itself and checks them against the config's diff_ids."""
    from slimage.transports.oci_layout import write_blobs

    tf = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)
    tf.copybufsize = CHUNK  # type: ignore[attr-defined]
    sink = _TarSink(tf)
    manifest_json: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    index_entries: list[Descriptor] = []
    try:
        sink.put_dir("blobs")
        sink.put_dir("blobs/sha256")
        for image, tags in images:
            manifest = oci_manifest_for(image)
            write_blobs(sink, image, manifest)
            layer_paths = [f"blobs/sha256/{hex_of(d.digest)}" for d in manifest.layers]
            if legacy_dirs:
                ids = _v1_ids(image)
                for i, (v1, path) in enumerate(zip(ids, layer_paths, strict=True)):
                    if sink.has(f"{v1}/layer.tar"):
                        continue
                    sink.put_dir(v1)
                    sink.put_bytes(f"{v1}/VERSION", b"1.0")
                    v1json: dict[str, Any] = {"id": v1, "created": "1970-01-01T00:00:00Z"}
                    if i:
                        v1json["parent"] = ids[i - 1]
                    if i == len(ids) - 1:
                        v1json["config"] = image.config.config
                        v1json["os"] = image.config.data.get("os", "linux")
                    sink.put_bytes(f"{v1}/json", json.dumps(v1json, separators=(",", ":")).encode())
                    sink.put_symlink(f"{v1}/layer.tar", f"../{path}")
                if ids:
                    for t in tags:
                        ref = parse_reference(t)
                        repositories.setdefault(ref.repository, {})[ref.tag or "latest"] = ids[-1]
            names = [parse_reference(t).name for t in tags]
            manifest_json.append(
                {
                    "Config": f"blobs/sha256/{hex_of(image.config.digest)}",
                    "RepoTags": names or None,
                    "Layers": layer_paths,
                }
            )
            if names:
                for t in names:
                    index_entries.append(
                        index_entry(
                            manifest, ref_name or ref_name_for(t), containerd_name=_full_name(t)
                        )
                    )
            else:
                index_entries.append(index_entry(manifest, ref_name))
        sink.put_bytes("index.json", Index.build(index_entries).raw)
        sink.put_bytes("manifest.json", json.dumps(manifest_json, separators=(",", ":")).encode())
        if repositories:
            sink.put_bytes("repositories", json.dumps(repositories, separators=(",", ":")).encode())
        sink.put_bytes("oci-layout", LAYOUT_FILE)
    finally:
        tf.close()


__all__ = [
    "open_archive",
    "open_archive_stream",
    "read_archive",
    "write_archive",
    "docker_manifest_for",
    "image_from_manifest",
    "read_index",
    "validate",
]
