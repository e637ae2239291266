"""Assembling a base image from Debian packages, the distroless way.

plan():   preset + options -> resolved packages, per layer group -> Lockfile
build():  Lockfile -> verified .debs in the cache -> one layer per group (or one layer)
          -> config -> committed image

No maintainer script runs: each package's data.tar is copied into its group's layer, and
what the scripts would have made (users, CA bundle, ...) is generated instead. The image
depends only on the lockfile, the options and SOURCE_DATE_EPOCH (default 0, as distroless),
so building from the same lock twice gives the same digest.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from slimage.bases import rootfs
from slimage.bases.cache import DebCache
from slimage.bases.debfile import tar_entries
from slimage.bases.errors import BaseBuildError
from slimage.bases.lockfile import LockedPackage, Lockfile
from slimage.bases.presets import BUSYBOX_APPLETS, BUSYBOX_PACKAGE, DATA_ONLY, Preset, get_preset
from slimage.bases.repository import (
    DEFAULT_KEYRING,
    DEFAULT_SUITE,
    Repository,
    Source,
    default_sources,
)
from slimage.bases.resolver import Resolution, Resolver
from slimage.bases.tarstream import IterStream, LayerTar
from slimage.errors import UsageError
from slimage.mutate import ImageAssembler, rfc3339
from slimage.oci.model import HistoryEntry, Platform
from slimage.store.images import store_layer_tar
from slimage.store.store import LayerInfo, Store

CA_DIR = "usr/share/ca-certificates/"
CA_BUNDLE = "etc/ssl/certs/ca-certificates.crt"


@dataclass
class BaseSpec:
    """What the user asked for (CLI flags map one to one)."""

    preset: str = "custom"
    packages: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    arch: str = "amd64"
    suite: str = DEFAULT_SUITE
    mirror: str | None = None
    security_mirror: str | None = None
    snapshot: str | None = None
    sources: list[Source] | None = None  # overrides mirror/suite/snapshot when given
    keyring: str = DEFAULT_KEYRING
    debug: bool = False
    nonroot: bool = False
    single_layer: bool = False
    keep_docs: bool = False

    def options(self) -> dict[str, object]:
        return {
            "debug": self.debug,
            "nonroot": self.nonroot,
            "single_layer": self.single_layer,
            "keep_docs": self.keep_docs,
            "packages": list(self.packages),
            "exclude": list(self.exclude),
        }


@dataclass
class LayerReport:
    group: str
    diff_id: str
    size: int
    packages: list[str]


@dataclass
class BaseBuildResult:
    manifest_digest: str
    image_id: str
    tags: list[str]
    preset: str
    arch: str
    packages: int
    layers: list[LayerReport]
    size: int
    seconds: float
    skipped_essential: list[str] = field(default_factory=list)
    duplicates: int = 0
    reused_layers: int = 0


def source_date_epoch(value: int | None = None) -> tuple[int, bool]:
    """(epoch, explicit): SOURCE_DATE_EPOCH from the argument or the environment; 0 when
    neither is set (file mtimes are then kept as the .debs have them)."""
    if value is not None:
        return int(value), True
    env = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if env:
        try:
            return int(env), True
        except ValueError:
            raise UsageError(f"SOURCE_DATE_EPOCH={env!r} is not an integer") from None
    return 0, False


def _groups(spec: BaseSpec, preset: Preset) -> list[tuple[str, tuple[str, ...]]]:
    groups = list(preset.groups)
    if spec.packages:
        groups.append(("packages", tuple(spec.packages)))
    if spec.debug and not preset.busybox_in_bin:
        groups.append(("debug", (BUSYBOX_PACKAGE,)))
    return groups


def make_repository(
    spec: BaseSpec, cache_dir: Path | None = None, *, offline: bool = False
) -> Repository:
    sources = spec.sources or default_sources(
        spec.suite,
        mirror=spec.mirror,
        security_mirror=spec.security_mirror,
        snapshot=spec.snapshot,
    )
    return Repository(
        sources, spec.arch, keyring=spec.keyring, cache_dir=cache_dir, offline=offline
    )


def plan(spec: BaseSpec, repo: Repository) -> tuple[Lockfile, Resolution]:
    """Resolve SPEC against REPO's signed indexes into a lockfile."""
    preset = get_preset(spec.preset)
    if preset.name == "custom" and not spec.packages:
        raise UsageError("name a preset, or give --packages")
    index = repo.index()
    resolver = Resolver(index, exclude=spec.exclude, no_deps=DATA_ONLY)
    res = Resolution()
    lock = Lockfile(
        preset=preset.name,
        arch=spec.arch,
        suite=repo.sources[0].suite if repo.sources else spec.suite,
        sources=[s.to_dict() for s in repo.sources],
        options=spec.options(),
    )
    for group, roots in _groups(spec, preset):
        before = set(res.packages)
        resolver.resolve(roots, res)
        lock.groups.append(group)
        for name in sorted(set(res.packages) - before):
            rec = res.packages[name]
            lock.packages.append(
                LockedPackage(
                    rec.name, rec.version, rec.architecture, group, rec.url, rec.sha256, rec.size
                )
            )
    return lock, res


def _status_text(control: str) -> bytes:
    text = control.strip("\n")
    if "\nStatus:" not in text:
        lines = text.split("\n")
        lines.insert(1, "Status: install ok installed")
        text = "\n".join(lines)
    return (text + "\n").encode()


class _LayerBuilder:
    def __init__(
        self,
        lock: Lockfile,
        preset: Preset,
        debs: dict[str, Path],
        *,
        epoch: int,
        clamp: bool,
        extra_ca: list[bytes],
        nonroot: bool,
        pool: ThreadPoolExecutor,
        cache: DebCache,
    ):
        self.pool = pool
        self.cache = cache
        self.lock = lock
        self.preset = preset
        self.debs = debs
        self.epoch = epoch
        self.clamp = clamp
        self.extra_ca = extra_ca
        self.nonroot = nonroot
        self.duplicates = 0

    def stream(self, groups: list[tuple[str, list[LockedPackage]]]) -> Iterator[bytes]:
        keep_docs = bool(self.lock.options.get("keep_docs"))
        generated = self._generated_files(pending_ca=True) if groups[0][0] == "static" else {}
        lt = LayerTar(
            epoch=self.epoch if self.clamp else None,
            reserved=generated,
            skip=None if keep_docs else (lambda p: not rootfs.keep_path(p)),
        )
        if groups[0][0] == "static":
            yield from self._generated_dirs(lt)
        status: dict[str, bytes] = {}
        certs: list[tuple[str, bytes]] = []
        for group, pkgs in groups:
            for pkg, control, data_tar in self._prefetch(pkgs):
                status[pkg.name] = _status_text(control)
                what = f"{pkg.name}_{pkg.version}_{pkg.architecture}.deb"
                if pkg.name == "ca-certificates":
                    for info, data in tar_entries(data_tar, what):
                        name = info.name.lstrip("./")
                        if data is not None and name.startswith(CA_DIR) and name.endswith(".crt"):
                            certs.append((name, data.read()))
                    continue
                for info, data in tar_entries(data_tar, what):
                    yield from lt.from_member(info, data)
            yield from self._group_extras(lt, group)
        if generated:
            generated[CA_BUNDLE] = (rootfs.ca_bundle(certs, self.extra_ca), 0o644)
            for path in sorted(generated):
                content, mode = generated[path]
                yield lt.file(path, content, mode)
        for name in sorted(status):
            yield lt.file(f"var/lib/dpkg/status.d/{name}", status[name])
        self.duplicates += len(lt.duplicates)
        yield lt.end()

    def _prefetch(self, pkgs: list[LockedPackage]) -> Iterator[tuple[LockedPackage, str, bytes]]:
        """(package, control, data.tar) in order, decompressed a few packages ahead in
        the shared pool: xz decompression is most of the work and releases the GIL."""

        def load(pkg: LockedPackage) -> tuple[str, bytes]:
            return self.cache.unpacked(pkg, self.debs[pkg.sha256])

        window = 3
        futures: list[Future[tuple[str, bytes]]] = []
        for i, pkg in enumerate(pkgs):
            while len(futures) < min(len(pkgs), i + window):
                futures.append(self.pool.submit(load, pkgs[len(futures)]))
            control, data = futures[i].result()
            futures[i] = None  # type: ignore[call-overload]  # let the bytes go
            yield pkg, control, data

    def _generated_dirs(self, lt: LayerTar) -> Iterator[bytes]:
        yield lt.directory("root", 0o700)
        yield lt.directory("home", 0o755)
        yield lt.directory("home/nonroot", 0o700, rootfs.NONROOT_UID, rootfs.NONROOT_UID)
        yield lt.directory("tmp", 0o1777)
        yield lt.directory("etc", 0o755)

    def _generated_files(self, pending_ca: bool = False) -> dict[str, tuple[bytes, int]]:
        files = {
            "etc/passwd": (rootfs.passwd(self.preset.root_shell), 0o644),
            "etc/group": (rootfs.group(), 0o644),
            "etc/os-release": (rootfs.os_release(self.lock.suite, "distroless-style"), 0o644),
            "etc/nsswitch.conf": (rootfs.NSSWITCH.encode(), 0o644),
        }
        if pending_ca:
            files[CA_BUNDLE] = (b"", 0o644)
        return files

    def _group_extras(self, lt: LayerTar, group: str) -> Iterator[bytes]:
        if group == "debug":
            for applet in BUSYBOX_APPLETS:
                yield lt.symlink(f"busybox/{applet}", "/bin/busybox")
        if self.preset.busybox_in_bin and group == self.preset.groups[-1][0]:
            for applet in BUSYBOX_APPLETS:
                if f"bin/{applet}" not in lt.paths:
                    yield lt.symlink(f"bin/{applet}", "busybox")
        if group == self.preset.groups[-1][0]:
            for path, target in self.preset.links:
                if path not in lt.paths:
                    yield lt.symlink(path, target)


def _config(asm: ImageAssembler, lock: Lockfile, preset: Preset) -> None:
    rt = asm.runtime
    env = dict(preset.env)
    debug = bool(lock.options.get("debug")) and not preset.busybox_in_bin
    if debug:
        env["PATH"] = env.get("PATH", "") + ":/busybox"
    rt["Env"] = [f"{k}={v}" for k, v in env.items()]
    entrypoint = preset.entrypoint
    if debug and not entrypoint:
        entrypoint = ["/busybox/sh"]
    if entrypoint:
        rt["Entrypoint"] = list(entrypoint)
    if preset.cmd:
        rt["Cmd"] = list(preset.cmd)
    if lock.options.get("nonroot"):
        rt["User"] = str(rootfs.NONROOT_UID)
        rt["WorkingDir"] = "/home/nonroot"
    else:
        rt["User"] = "0"
        rt["WorkingDir"] = "/"
    rt["Labels"] = {"io.slimage.base.preset": preset.name, "io.slimage.base.suite": lock.suite}


# Bump when the bytes a group layer is made of change for the same inputs.
LAYER_FORMAT = 2


@functools.cache
def _emission_code_digest() -> str:
    """The source of every module that decides a group layer's bytes: a change to any of
    them (here or in the shared writer) invalidates the layer cache by itself."""
    import slimage.bases.debfile as debfile_mod
    import slimage.bases.rootfs as rootfs_mod
    import slimage.bases.tarstream as tarstream_mod
    import slimage.layers.writer as writer_mod

    h = hashlib.sha256()
    for mod in (tarstream_mod, writer_mod, rootfs_mod, debfile_mod, sys.modules[__name__]):
        try:
            h.update(Path(mod.__file__ or "").read_bytes())
        except OSError:
            h.update(mod.__name__.encode())
    return h.hexdigest()


class _LayerCache:
    """Group inputs -> the diff_id they produced, so a rebuild into a store that already
    holds the layer skips extraction entirely. The key covers everything a group layer's
    bytes depend on: the .debs (by hash), the preset's additions, the options, the epoch."""

    def __init__(self, cache_dir: Path | None):
        from slimage.bases.fetch import default_cache_dir

        self.dir = (Path(cache_dir) if cache_dir else default_cache_dir()) / "layers"
        self.hits = 0

    def key(
        self,
        lock: Lockfile,
        preset: Preset,
        batch: list[tuple[str, list[LockedPackage]]],
        epoch: int | None,
        extra_ca: list[bytes],
    ) -> str:
        first = batch[0][0] == "static"
        material = {
            "format": LAYER_FORMAT,
            "code": _emission_code_digest(),
            "preset": [
                preset.name,
                preset.root_shell,
                preset.busybox_in_bin,
                list(preset.links),
                preset.groups[-1][0],
            ],
            "suite": lock.suite,
            "keep_docs": bool(lock.options.get("keep_docs")),
            "epoch": epoch,
            "groups": [[g, [p.sha256 for p in pkgs]] for g, pkgs in batch],
            "ca": [hashlib.sha256(c).hexdigest() for c in extra_ca] if first else [],
        }
        return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()

    def lookup(self, store: Store, key: str) -> LayerInfo | None:
        try:
            diff_id = (self.dir / key).read_text().strip()
        except OSError:
            return None
        info = store.layer_info(diff_id)
        if info is None or not store.has_blob(info.blob):
            return None
        self.hits += 1
        return info

    def remember(self, key: str, diff_id: str) -> None:
        from slimage.bases.fetch import atomic_write

        try:
            atomic_write(self.dir / key, diff_id.encode())
        except OSError:
            pass  # a read-only cache only costs speed


def fetch_debs(lock: Lockfile, cache: DebCache, *, workers: int = 4) -> dict[str, Path]:
    """Every .deb of LOCK in the cache (downloading the missing ones), verified by sha256."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        paths = list(pool.map(cache.get, lock.packages))
    return {p.sha256: path for p, path in zip(lock.packages, paths, strict=True)}


def build(
    lock: Lockfile,
    store: Store,
    *,
    tags: list[str] | None = None,
    cache_dir: Path | None = None,
    add_ca: list[Path] | None = None,
    epoch: int | None = None,
) -> BaseBuildResult:
    """Assemble LOCK into an image in STORE. Nothing is tagged unless every layer made it."""
    t0 = time.monotonic()
    preset = get_preset(lock.preset)
    extra_ca: list[bytes] = []
    for path in add_ca or []:
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise BaseBuildError(f"--add-ca {path}: {exc.strerror or exc}") from None
        if not rootfs.pem_certificates(data):
            raise BaseBuildError(f"--add-ca {path}: no PEM certificate in it")
        extra_ca.append(data)
    sde, explicit = source_date_epoch(epoch)
    cache = DebCache(cache_dir)
    debs = fetch_debs(lock, cache)
    variant = "v8" if lock.arch == "arm64" else None
    asm = ImageAssembler(store, platform=Platform("linux", lock.arch, variant))
    created = rfc3339(sde)
    grouped = [(g, pkgs) for g, pkgs in lock.by_group()]
    batches = [grouped] if lock.options.get("single_layer") else [[g] for g in grouped]
    layer_cache = _LayerCache(cache_dir)
    workers = max(2, min(4, os.cpu_count() or 2))
    with (
        ThreadPoolExecutor(max_workers=workers) as deb_pool,
        ThreadPoolExecutor(max_workers=workers) as layer_pool,
    ):
        builder = _LayerBuilder(
            lock,
            preset,
            debs,
            epoch=sde,
            clamp=explicit,
            extra_ca=extra_ca,
            nonroot=bool(lock.options.get("nonroot")),
            pool=deb_pool,
            cache=cache,
        )

        def make(batch: list[tuple[str, list[LockedPackage]]]) -> LayerInfo:
            key = layer_cache.key(lock, preset, batch, sde if explicit else None, extra_ca)
            known = layer_cache.lookup(store, key)
            if known is not None:
                return known
            info = store_layer_tar(store, IterStream(builder.stream(batch)))  # type: ignore[arg-type]
            layer_cache.remember(key, info.diff_id)
            return info

        # Groups are independent layers: build them side by side, add them in order.
        futures = [layer_pool.submit(make, batch) for batch in batches]
        try:
            infos = [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    reports: list[LayerReport] = []
    for batch, info in zip(batches, infos, strict=True):
        names = [p.name for _, pkgs in batch for p in pkgs]
        label = "+".join(g for g, _ in batch)
        asm.add_stored_layer(
            info,
            HistoryEntry(
                created=created,
                created_by=f"slimage base {preset.name}: {label} ({len(names)} packages: {' '.join(names)})",
            ),
        )
        reports.append(LayerReport(label, info.diff_id, info.size, names))
    _config(asm, lock, preset)
    asm.add_history(HistoryEntry(created=created, created_by=f"slimage base {preset.name}: config"))
    result = asm.commit(tags=tags, created=created)
    return BaseBuildResult(
        manifest_digest=result.manifest_digest,
        image_id=result.image_id,
        tags=list(tags or []),
        preset=preset.name,
        arch=lock.arch,
        packages=len(lock.packages),
        layers=reports,
        size=sum(r.size for r in reports),
        seconds=round(time.monotonic() - t0, 3),
        duplicates=builder.duplicates,
        reused_layers=layer_cache.hits,
    )
