"""The everyday image operations over a store, behind `load`, `save`, `images`,
`history`, `inspect`, `tag` and `rmi`, as plain functions returning plain data (the CLI
only renders them). Not a transport: it uses the transports and the store.
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from slimage.errors import ImageNotFoundError, SlimageError, UsageError
from slimage.image import Image
from slimage.layers.tarscan import DockerSize, scan
from slimage.oci.model import Platform
from slimage.store.images import IngestResult, index_stored_layer, ingest, open_image
from slimage.store.refs import parse_reference
from slimage.store.store import Store
from slimage.transports.docker_archive import read_archive
from slimage.transports.tarindex import TarIndex
from slimage.units import parse_rfc3339

# ---------------------------------------------------------------------------- load / save


@dataclass
class LoadedImage:
    id: str
    tags: list[str]
    manifest_digest: str
    layers_added: int
    layers_skipped: int


def load_archive(
    store: Store,
    path: str | os.PathLike[str] | None = None,
    stream: BinaryIO | None = None,
    *,
    platform: Platform | None = None,
) -> list[LoadedImage]:
    """`docker load`: every image of a docker-archive (or OCI archive) into the store.

    A pipe is first spooled to an anonymous temp file in the store's tmp dir (removed by
    the OS even on a crash), because manifest.json comes at the end of a `docker save`."""
    if path is not None:
        index = TarIndex.open(path)
    elif stream is not None:
        if _is_regular_file(stream):  # `slimage load < file.tar`: read it in place
            index = TarIndex(stream, "stdin")
        else:
            index = TarIndex.spool(stream, "stdin", str(store.tmp_dir))
    else:
        raise UsageError("load: give -i FILE or pipe an archive on stdin")
    try:
        images = read_archive(index, platform=platform)
        out = []
        for image in images:
            res: IngestResult = ingest(store, image, tags=image.repo_tags)
            out.append(
                LoadedImage(
                    res.image_id,
                    list(image.repo_tags),
                    res.manifest_digest,
                    res.layers_added,
                    res.layers_skipped,
                )
            )
        return out
    finally:
        index.close()


def _is_regular_file(stream: BinaryIO) -> bool:
    """A plain, uncompressed tar file behind STREAM (so it can be read by offset)."""
    from slimage.layers.compression import sniff

    try:
        fd = stream.fileno()
        return stat.S_ISREG(os.fstat(fd).st_mode) and sniff(os.pread(fd, 8, 0)) == "none"
    except (OSError, AttributeError, ValueError):
        return False


def resolve_for_save(store: Store, name: str) -> tuple[Image, list[str]]:
    """An image and the tags it is saved under: a tag saves as that tag; an ID saves
    untagged, as `docker save ID` does."""
    image = open_image(store, name)
    try:
        ref = parse_reference(name)
        tags = [ref.name] if ref.name in image.repo_tags else []
    except SlimageError:
        tags = []
    return image, tags


def save(
    store: Store,
    names: list[str],
    *,
    output: str | os.PathLike[str] | None = None,
    stream: BinaryIO | None = None,
    fmt: str = "docker-archive",
) -> list[tuple[Image, list[str]]]:
    """`docker save`: docker-archive (Docker 25 shape, which 20.10 loads too), an OCI
    layout directory (`oci`) or an OCI layout tar (`oci-archive`), through the same sinks
    as `copy`. Blobs are copied as stored: no recompression."""
    from slimage.transports.sinks import file_sink, stream_sink

    if not names:
        raise UsageError("save: name at least one image")
    if fmt not in ("docker-archive", "oci", "oci-archive"):
        raise UsageError(f"save: unknown --format {fmt!r} (docker-archive, oci, oci-archive)")
    if output is not None:
        sink = file_sink(fmt, output)
    elif fmt == "oci":
        raise UsageError("save --format oci needs -o DIR")
    elif stream is not None:
        sink = stream_sink(stream, fmt)
    else:
        raise UsageError("save: give -o FILE or redirect stdout")
    pairs = [resolve_for_save(store, n) for n in names]
    sink.write_all([(img, tags) for img, tags in pairs])
    return pairs


# ---------------------------------------------------------------------------- images


@dataclass
class ImageRow:
    repository: str
    tag: str
    id: str
    manifest_digest: str
    created: str | None
    created_ts: float | None
    size: int
    broken: str | None = None  # why the image cannot be read (its ID shows as BROKEN)


BROKEN = "<broken>"


def layer_sizes(image: Image, store: Store | None = None) -> list[int]:
    """Docker SIZE per layer: from the store's records when known, else by scanning.

    A layer whose blob is in STORE but has no record yet (a pull keeps blobs as served)
    is scanned once and recorded, so the next listing is instant."""
    out = []
    for n, layer in enumerate(image.layers, 1):
        if layer.size is None and store is not None and store.has_blob(layer.digest):
            layer.size = index_stored_layer(store, layer.descriptor, layer.diff_id)[0].size
        if layer.size is None:
            where = f"{image.source}: " if image.source else ""
            label = f"{where}layer {n} ({layer.diff_id})"
            sizer = DockerSize(label)
            with contextlib.closing(layer.open_tar()) as tar:
                scan(tar, sizer, name=label)
            layer.size = sizer.total
        out.append(layer.size)
    return out


def _store_size(store: Store, image: Image) -> int:
    return sum(layer_sizes(image, store))


def list_images(store: Store, reference: str | None = None) -> list[ImageRow]:
    """One row per tag (or one `<none>` row for an untagged image), newest first.

    An image that cannot be read (a missing config, a corrupt manifest or layer) still
    gets its rows, with IMAGE ID `<broken>` and `broken` saying why: one bad image never
    hides itself, nor breaks the listing of the others."""
    rows: list[ImageRow] = []
    refs = store.refs()
    by_digest: dict[str, list[str]] = {}
    for name, digest in refs.items():
        by_digest.setdefault(digest, []).append(name)
    want = parse_reference(reference) if reference else None
    for digest in store.images():
        broken: str | None = None
        try:
            image = open_image(store, digest)
            size = _store_size(store, image)
            ident, created = image.id, image.config.created
            created_ts = parse_rfc3339(created)
        except SlimageError as exc:
            broken = str(exc)
            ident, created, created_ts, size = BROKEN, None, None, 0
        names = sorted(by_digest.get(digest, []))
        if not names:
            if want is None:
                rows.append(
                    ImageRow("<none>", "<none>", ident, digest, created, created_ts, size, broken)
                )
            continue
        for name in names:
            repo, _, tag = name.rpartition(":")
            if want is not None:
                if want.repository != repo or (want.tag and want.tag != tag):
                    continue
            rows.append(ImageRow(repo, tag, ident, digest, created, created_ts, size, broken))
    rows.sort(key=lambda r: (-(r.created_ts or 0), r.repository, r.tag))
    return rows


# ---------------------------------------------------------------------------- history


@dataclass
class HistoryRow:
    id: str  # image ID for the top row, "<missing>" below (as Docker shows saved images)
    created: str | None
    created_ts: float | None
    created_by: str
    size: int
    comment: str
    empty_layer: bool
    layer_index: int | None = None


def image_history(image: Image, store: Store | None = None) -> list[HistoryRow]:
    """Newest first, one row per history entry; SIZE per the rule in `DockerSize`."""
    sizes = layer_sizes(image, store)
    rows = []
    for entry, idx in image.config.layer_history():
        size = sizes[idx] if idx is not None else 0
        rows.append(
            HistoryRow(
                id="<missing>",
                created=entry.created,
                created_ts=parse_rfc3339(entry.created),
                created_by=entry.created_by,
                size=size,
                comment=entry.comment,
                empty_layer=idx is None,
                layer_index=idx,
            )
        )
    rows.reverse()
    if rows:
        rows[0].id = image.id
    return rows


# ---------------------------------------------------------------------------- inspect


@dataclass
class InspectResult:
    data: dict[str, Any] = field(default_factory=dict)


# Docker's container.Config, in its field order: always-present fields with their zero
# values, then the `omitempty` ones only when set. `docker inspect` shows this shape.
_CONFIG_FIELDS: list[tuple[str, Any]] = [
    ("Hostname", ""),
    ("Domainname", ""),
    ("User", ""),
    ("AttachStdin", False),
    ("AttachStdout", False),
    ("AttachStderr", False),
    ("ExposedPorts", ...),
    ("Tty", False),
    ("OpenStdin", False),
    ("StdinOnce", False),
    ("Env", None),
    ("Cmd", None),
    ("Healthcheck", ...),
    ("ArgsEscaped", ...),
    ("Image", ""),
    ("Volumes", None),
    ("WorkingDir", ""),
    ("Entrypoint", None),
    ("NetworkDisabled", ...),
    ("MacAddress", ...),
    ("OnBuild", None),
    ("Labels", None),
    ("StopSignal", ...),
    ("StopTimeout", ...),
    ("Shell", ...),
]


def docker_config_view(config: dict[str, Any] | None) -> dict[str, Any]:
    src = config or {}
    out: dict[str, Any] = {}
    for key, zero in _CONFIG_FIELDS:
        if zero is ...:
            if src.get(key):
                out[key] = src[key]
        else:
            value = src.get(key, zero)
            out[key] = zero if value in (None, "") and zero is not None else value
    for key, value in src.items():  # anything Docker does not know, kept rather than lost
        out.setdefault(key, value)
    return out


def inspect_image(
    image: Image, *, manifest_digest: str | None = None, store: Store | None = None
) -> dict[str, Any]:
    """`docker image inspect`-shaped data, plus the manifest and where it came from."""
    import json

    cfg = image.config.data
    digest = manifest_digest or image.manifest.digest
    size = sum(layer_sizes(image, store))
    return {
        "Id": image.id,
        "RepoTags": list(image.repo_tags),
        # Docker lists registry digests here; a loaded or built image has none (its own
        # manifest digest is ManifestDigest below).
        "RepoDigests": [],
        "Parent": cfg.get("parent", ""),
        "Comment": cfg.get("comment", ""),
        "Created": cfg.get("created", ""),
        "Container": cfg.get("container", ""),
        "ContainerConfig": docker_config_view(cfg.get("container_config")),
        "DockerVersion": cfg.get("docker_version", ""),
        "Author": cfg.get("author", ""),
        "Config": docker_config_view(cfg.get("config")),
        "Architecture": cfg.get("architecture", ""),
        **({"Variant": cfg["variant"]} if cfg.get("variant") else {}),
        "Os": cfg.get("os", ""),
        "Size": size,
        "VirtualSize": size,
        "RootFS": {
            "Type": cfg.get("rootfs", {}).get("type", "layers"),
            "Layers": image.config.diff_ids,
        },
        "Metadata": {"LastTagTime": ""},
        "ManifestDigest": digest,
        "Manifest": json.loads(image.manifest.raw),
        "Source": image.source,
    }


# ---------------------------------------------------------------------------- tag / rmi


@dataclass
class RemoveResult:
    untagged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


def remove_image(store: Store, name: str, *, force: bool = False) -> RemoveResult:
    """`docker rmi`: untag NAME; once an image has no tags left, forget it (its blobs go
    at the next `gc`). Removing by ID an image with several tags needs FORCE, as in Docker."""
    digest = store.resolve(name)
    tags = sorted(n for n, d in store.refs().items() if d == digest)
    result = RemoveResult()
    try:
        ref_name = parse_reference(name).name
    except SlimageError:
        ref_name = None
    if ref_name in tags:
        store.untag(ref_name)
        result.untagged.append(ref_name)
        tags.remove(ref_name)
        if tags:
            return result
    elif len(tags) > 1 and not force:
        raise UsageError(
            f"conflict: unable to delete {name} (must be forced) - image is referenced in "
            f"multiple repositories"
        )
    else:
        for t in tags:
            result.untagged.append(t)
    image_id = None
    with contextlib.suppress(SlimageError):
        image_id = open_image(store, digest).id
    store.remove_image(digest)
    result.deleted.append(image_id or digest)
    return result


def tag_image(store: Store, source: str, target: str) -> str:
    try:
        return store.tag(source, target)
    except ImageNotFoundError:
        raise ImageNotFoundError(f"No such image: {source}") from None
