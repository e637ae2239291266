"""One function to turn a destination the user typed into a `Sink`, mirroring `open_source`.

    open_sink("store:NAME")                     the store, tagged NAME
    open_sink("docker-archive:FILE[:REF]")      a `docker save` archive (Docker 25 shape)
    open_sink("oci:DIR[:REF]")                  an OCI layout directory (REF = ref.name)
    open_sink("oci-archive:FILE[:REF]")         an OCI layout in a tar
    open_sink("docker-daemon:REF")              the local Docker engine, via `docker load`
    open_sink("docker://REGISTRY/REPO:TAG")     a registry

Every sink takes an `Image`, whatever source opened it, so `copy` is one `open_source`
and one `open_sink`, and `save`, `push` and the builder's `--output` are the same call.
Why one place: each writer used to parse its own destination string and do its own
atomic write; now every file a user gets is written by `slimage.streams.atomic_output`
(temp file, fsync, rename, fsync the directory), so a failed or interrupted write leaves
the old file or none, never half of one.

Blobs are written as the source holds them (never recompressed) wherever the format
allows, so layer digests survive archive, layout and registry hops. Only the store
recompresses an uncompressed layer: it keeps every layer compressed by design.

As in skopeo, `FILE[:REF]` ends the path at the first `:` (a destination need not exist
yet, so the file system cannot decide).
"""

from __future__ import annotations

import abc
import contextlib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from slimage.errors import SlimageError, UsageError
from slimage.image import Image
from slimage.store.refs import parse_reference
from slimage.streams import atomic_output

if TYPE_CHECKING:
    from slimage.store.store import Store
    from slimage.transports.registry.report import ProgressSink, TransferReport

SINK_KINDS = ("store:", "docker-archive:", "oci:", "oci-archive:", "docker-daemon:", "docker://")
_FORMS = (
    "store:NAME, docker-archive:FILE[:REF], oci:DIR[:REF], oci-archive:FILE[:REF], "
    "docker-daemon:REF or docker://REGISTRY/REPO:TAG"
)

Tagged = tuple[Image, "list[str] | None"]


@dataclass
class WriteResult:
    """What a sink wrote. `digest` is the manifest digest as the destination holds it
    (an OCI layout or archive stores the OCI form of a Docker manifest)."""

    destination: str
    digest: str = ""
    image_ids: list[str] = field(default_factory=list)
    steps: list[TransferReport] = field(default_factory=list)


class Sink(abc.ABC):
    """A place images are written to. REF is the name given in the spec, if any."""

    kind: str = ""

    def __init__(self, spec: str, ref: str | None = None):
        self.spec = spec
        self.ref = ref or None

    def write(self, image: Image, tags: list[str] | None = None) -> WriteResult:
        """Write IMAGE under TAGS (default: the spec's REF, else the image's own tags)."""
        return self.write_all([(image, tags)])

    @abc.abstractmethod
    def write_all(self, images: Sequence[Tagged]) -> WriteResult:
        """Write several images in one go (one archive, one layout, one `docker load`)."""

    def _names(self, images: Sequence[Tagged]) -> list[list[str]]:
        if not images:
            raise UsageError(f"{self.spec}: nothing to write")
        if self.ref is not None:
            if len(images) > 1:
                raise UsageError(f"{self.spec}: one name for {len(images)} images")
            return [[self.ref]]
        return [list(tags) if tags is not None else list(img.repo_tags) for img, tags in images]


def _repository(image: Image) -> str:
    for tag in image.repo_tags:
        with contextlib.suppress(SlimageError):
            return parse_reference(tag).repository
    return ""


def _is_bare(ref: str) -> bool:
    """`v1` in `oci:DIR:v1` is a ref.name, not an image name."""
    return ":" not in ref and "/" not in ref and "@" not in ref


# The image-spec's grammar for org.opencontainers.image.ref.name.
_REF_NAME = re.compile(r"[A-Za-z0-9]+(?:(?:[-._:@+/]|--)[A-Za-z0-9]+)*")


def _check_ref_name(spec: str, ref: str) -> None:
    if not _REF_NAME.fullmatch(ref):
        raise UsageError(f"{spec}: {ref!r} is not a valid OCI ref.name")


def _check_names(spec: str, names: Iterable[str]) -> None:
    for n in names:
        try:
            parse_reference(n)
        except SlimageError as err:
            raise UsageError(f"{spec}: {err}") from None


def _parent_exists(spec: str, path: Path) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise UsageError(f"{spec}: directory {parent} does not exist")
    if path.is_dir():
        raise UsageError(f"{spec}: {path} is a directory")


# ---------------------------------------------------------------------------- sinks


class StoreSink(Sink):
    kind = "store"

    def __init__(self, spec: str, ref: str | None, store: Store):
        super().__init__(spec, ref)
        self.store = store
        if self.ref is not None:
            _check_names(spec, [self.ref])

    def write_all(self, images: Sequence[Tagged]) -> WriteResult:
        from slimage.store.images import ingest

        result = WriteResult(self.spec)
        for (image, _), names in zip(images, self._names(images), strict=True):
            tags = [parse_reference(n).name for n in names]
            res = ingest(self.store, image, tags=tags)
            result.digest = res.manifest_digest
            result.image_ids.append(res.image_id)
        return result


class ArchiveSink(Sink):
    """docker-archive (with the legacy `<id>/layer.tar` directories that Docker <= 24
    follows) or oci-archive (the layout alone); both are also valid OCI layouts."""

    def __init__(
        self, spec: str, ref: str | None, *, oci: bool, path: Path | None, stream: BinaryIO | None
    ):
        super().__init__(spec, ref)
        self.oci = oci
        self.kind = "oci-archive" if oci else "docker-archive"
        self.path = path
        self.stream = stream
        if path is not None:
            _parent_exists(spec, path)
        if self.ref is not None:
            if oci and _is_bare(self.ref):
                _check_ref_name(spec, self.ref)
            else:
                _check_names(spec, [self.ref])

    def write_all(self, images: Sequence[Tagged]) -> WriteResult:
        from slimage.transports.docker_archive import write_archive
        from slimage.transports.oci_layout import oci_manifest_for

        names = self._names(images)
        ref_name = None
        if self.oci and self.ref is not None and _is_bare(self.ref):
            _check_ref_name(self.spec, self.ref)
            # oci-archive:FILE:v1 names the entry `v1`; a full name needs a repository.
            ref_name = self.ref
            repo = _repository(images[0][0])
            names = [[f"{repo}:{self.ref}"] if repo else []]
        for n in names:
            _check_names(self.spec, n)
        pairs = [(img, n) for (img, _), n in zip(images, names, strict=True)]
        kw = {"legacy_dirs": not self.oci, "ref_name": ref_name}
        if self.path is not None:
            with atomic_output(self.path, mode=0o644) as fh:
                write_archive(fh, pairs, **kw)  # type: ignore[arg-type]
        elif self.stream is not None:
            write_archive(self.stream, pairs, **kw)  # type: ignore[arg-type]
        last = images[-1][0]
        digest = oci_manifest_for(last).digest if self.oci else last.manifest.digest
        return WriteResult(self.spec, digest, [img.id for img, _ in images])


class LayoutSink(Sink):
    kind = "oci"

    def __init__(self, spec: str, ref: str | None, path: Path):
        super().__init__(spec, ref)
        if not str(path):
            raise UsageError(f"{spec}: missing directory")
        self.path = path
        if self.ref is not None:
            if _is_bare(self.ref):
                _check_ref_name(spec, self.ref)
            else:
                _check_names(spec, [self.ref])

    def write_all(self, images: Sequence[Tagged]) -> WriteResult:
        from slimage.transports.oci_layout import _full_name, ref_name_for, write_layout_entries

        entries: list[tuple[Image, str | None, str | None]] = []
        if self.ref is not None and _is_bare(self.ref):
            _check_ref_name(self.spec, self.ref)
            image = images[0][0]
            repo = _repository(image)
            self._names(images)  # one image only
            entries.append((image, self.ref, f"{repo}:{self.ref}" if repo else None))
        else:
            for (image, _), names in zip(images, self._names(images), strict=True):
                _check_names(self.spec, names)
                tag = names[0] if names else None
                entries.append((image, ref_name_for(tag), _full_name(tag)))
        added = write_layout_entries(self.path, entries)
        return WriteResult(
            self.spec, added[-1].digest if added else "", [img.id for img, _ in images]
        )


class EngineSink(Sink):
    kind = "docker-daemon"

    def write_all(self, images: Sequence[Tagged]) -> WriteResult:
        from slimage.transports.docker_engine import load_into_engine

        names = self._names(images)
        for n in names:
            _check_names(self.spec, n)
        pairs = [
            (img, [parse_reference(t).name for t in n])
            for (img, _), n in zip(images, names, strict=True)
        ]
        load_into_engine(pairs)
        return WriteResult(self.spec, images[-1][0].manifest.digest, [img.id for img, _ in images])


class RegistrySink(Sink):
    kind = "docker"

    def __init__(
        self,
        spec: str,
        ref: str,
        *,
        store: Store | None,
        insecure: Iterable[str],
        jobs: int | None,
        chunk_size: int | None,
        progress: ProgressSink | None,
    ):
        super().__init__(spec, ref)
        from slimage.transports.registry.names import RemoteRef

        try:
            RemoteRef.parse(ref)
        except SlimageError as err:
            raise UsageError(f"{spec}: {err}") from None
        self.store = store
        self.insecure = list(insecure)
        self.jobs = jobs
        self.chunk_size = chunk_size
        self.progress = progress

    def write_all(self, images: Sequence[Tagged]) -> WriteResult:
        from slimage.transports.registry.names import DEFAULT_JOBS
        from slimage.transports.registry.push import push_image

        if len(images) != 1:
            raise UsageError(f"{self.spec}: a registry reference names one image")
        image = images[0][0]
        report = push_image(
            image,
            self.ref or "",
            store=self.store,
            insecure=self.insecure,
            jobs=self.jobs or DEFAULT_JOBS,
            chunk_size=self.chunk_size,
            progress=self.progress,
        )
        return WriteResult(self.spec, report.digest, [image.id], [report])


# ---------------------------------------------------------------------------- open_sink


def _split_path_ref(rest: str) -> tuple[str, str | None]:
    path, sep, ref = rest.partition(":")
    return path, (ref or None) if sep else None


def open_sink(
    spec: str,
    store: Store | None = None,
    *,
    insecure: Iterable[str] = (),
    jobs: int | None = None,
    chunk_size: int | None = None,
    progress: ProgressSink | None = None,
) -> Sink:
    """Resolve SPEC (see the module docstring) to a `Sink`. Checked now, before anything
    is read, so a typo costs nothing. STORE backs `store:` and gives a registry push its
    cross-repo mount hints; INSECURE, JOBS, CHUNK_SIZE and PROGRESS apply to registries."""
    if spec.startswith("docker://"):
        ref = spec[len("docker://") :]
        if not ref:
            raise UsageError(f"{spec}: missing image reference")
        return RegistrySink(
            spec,
            ref,
            store=store,
            insecure=insecure,
            jobs=jobs,
            chunk_size=chunk_size,
            progress=progress,
        )
    kind, sep, rest = spec.partition(":")
    if not sep or f"{kind}:" not in SINK_KINDS:
        raise UsageError(f"unknown destination {spec!r} (use {_FORMS})")
    if kind == "store":
        if store is None:
            from slimage.store.paths import default_root
            from slimage.store.store import Store

            store = Store(default_root())
        return StoreSink(spec, rest or None, store)
    if kind == "docker-daemon":
        if rest:
            _check_names(spec, [rest])
        return EngineSink(spec, rest or None)
    path, name = _split_path_ref(rest)
    return file_sink(kind, path, name, spec=spec)


def file_sink(
    fmt: str, path: str | os.PathLike[str], ref: str | None = None, *, spec: str | None = None
) -> Sink:
    """The sink for a file or directory PATH in FMT (docker-archive, oci-archive, oci),
    for callers that hold a path rather than a spec (`save -o`, `--output dest=`): a `:`
    in PATH is then part of the name."""
    label = spec or f"{fmt}:{path}"
    if not str(path):
        raise UsageError(f"{label}: missing {'directory' if fmt == 'oci' else 'file name'}")
    target = Path(os.path.expanduser(str(path)))
    if fmt == "oci":
        if target.exists() and not target.is_dir():
            raise UsageError(f"{label}: {target} exists and is not a directory")
        return LayoutSink(label, ref, target)
    if fmt not in ("docker-archive", "oci-archive"):
        raise UsageError(f"{label}: unknown format {fmt!r} (docker-archive, oci, oci-archive)")
    return ArchiveSink(label, ref, oci=fmt == "oci-archive", path=target, stream=None)


def stream_sink(stream: BinaryIO, fmt: str = "docker-archive") -> Sink:
    """An archive written to a pipe (`slimage save > file`): no atomic rename possible,
    the reader sees the stream end only when the archive is complete."""
    if fmt not in ("docker-archive", "oci-archive"):
        raise UsageError(f"{fmt}: only archives can be written to a stream")
    return ArchiveSink(f"{fmt}:-", None, oci=fmt == "oci-archive", path=None, stream=stream)
