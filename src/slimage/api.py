"""The documented Python API: the handful of calls the CLI itself is made of.

Every function takes its store explicitly (a `Store`, or nothing for the calls that need
none), prints nothing and keeps no module-global state, so a program can call them many
times, and from threads. Errors a caller can cause are `SlimageError`s with a one-line
message; anything else is a bug.

    import slimage

    store = slimage.Store("/var/lib/my-slimage")
    result = slimage.build(slimage.BuildOptions(context="app", tags=["app:1"]), store)
    image = slimage.open_image("app:1", store)
    slimage.write_image(image, "oci-archive:app.tar")
    report = slimage.analyze(image)
    print(report.efficiency, report.reclaimable_bytes)
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from slimage.analysis.compat import CompatReport
    from slimage.analysis.diff import DiffReport
    from slimage.analysis.efficiency import EfficiencyReport
    from slimage.dockerfile.fix import FixResult
    from slimage.dockerfile.lint import Finding
    from slimage.image import Image
    from slimage.oci.model import Platform
    from slimage.store.store import Store
    from slimage.transports.sinks import WriteResult


def open_image(spec: str, store: Store | None = None, *, platform: Platform | None = None) -> Image:
    """An `Image` from any source slimage reads: a store name (`app:1`, `store:app:1`),
    `docker-archive:FILE`, `oci:DIR`, `oci-archive:FILE`, `docker-daemon:REF`,
    `docker://REF`, or a plain archive or layout path. Layers are read lazily and every
    digest is verified as it is read."""
    from slimage.transports.sources import open_source

    return open_source(spec, store, platform=platform)


def write_image(
    image: Image, spec: str, store: Store | None = None, *, tags: list[str] | None = None
) -> WriteResult:
    """Write IMAGE to any sink (`store:NAME`, `docker-archive:FILE[:REF]`, `oci:DIR[:REF]`,
    `oci-archive:FILE[:REF]`, `docker-daemon:REF`, `docker://REF`). Files appear whole or
    not at all; layers keep their digests where the format allows."""
    from slimage.transports.sinks import open_sink

    return open_sink(spec, store).write(image, tags)


def analyze(image: Image | str, store: Store | None = None) -> EfficiencyReport:
    """Where an image's bytes go: per-layer sizes, wasted (reclaimable) bytes, efficiency.
    An `Image` from a local archive or layout is read in place."""
    from slimage.analysis.efficiency import analyze_image
    from slimage.analysis.target import ScanTarget, layer_slices

    if isinstance(image, str):
        image = open_image(image, store)
    return analyze_image(ScanTarget(image, layer_slices(image)))


def diff(a: Image | str, b: Image | str, store: Store | None = None) -> DiffReport:
    """What changed between two images, file by file."""
    from slimage.analysis.diff import diff_images
    from slimage.analysis.target import ScanTarget, layer_slices

    def target(x: Image | str) -> ScanTarget:
        img = open_image(x, store) if isinstance(x, str) else x
        return ScanTarget(img, layer_slices(img))

    return diff_images(target(a), target(b))


def lint(dockerfile: str | Path) -> list[Finding]:
    """Lint a Dockerfile, given as a path or as its text (a str holding a newline)."""
    from slimage.dockerfile.lint import lint_text

    if isinstance(dockerfile, Path) or "\n" not in dockerfile:
        path = Path(dockerfile)
        return lint_text(path.read_text(), path=str(path))
    return lint_text(dockerfile)


def fix(text: str, *, path: str = "Dockerfile", context_dir: str | Path | None = None) -> FixResult:
    """The Dockerfile with the safe, behaviour-keeping rewrites applied, and the list of
    what changed."""
    from slimage.dockerfile.fix import fix_text

    return fix_text(text, path=path, context_dir=context_dir)


def check_compat(
    image: Image | str, against: Image | str, store: Store | None = None
) -> CompatReport:
    """Would IMAGE's binaries load on the base AGAINST (its libc, loader and libraries)?
    Predicted from the ELF files, before anything runs."""
    from slimage.analysis.compat import check_compat as _check

    img = open_image(image, store) if isinstance(image, str) else image
    base = open_image(against, store) if isinstance(against, str) else against
    return _check(
        img,
        base,
        image_name=image if isinstance(image, str) else "",
        target_name=against if isinstance(against, str) else "",
    )


def build_base(
    preset: str, store: Store, *, tags: Iterable[str] = (), packages: Iterable[str] = ()
) -> Image:
    """A distroless-style base (`static`, `base`, `cc`, `nodejs`, `python3`, `musl`) made
    from Debian's signed packages, resolved and assembled without a registry."""
    from slimage.bases import BaseSpec, build, make_repository, plan
    from slimage.store.images import open_image as open_stored

    spec = BaseSpec(preset=preset, packages=list(packages))
    lock, _ = plan(spec, make_repository(spec))
    result = build(lock, store, tags=list(tags))
    return open_stored(store, result.manifest_digest)
