"""`build()`: Dockerfile + context -> an image in the store (and optional outputs).

This is the function `slimage build` calls. It plans the stages, runs each needed one
through the executor, commits the target stage, and guarantees that an interrupted build
(KeyboardInterrupt: Ctrl-C, or SIGTERM/SIGHUP as the CLI maps them) unmounts every overlay
and deletes every container it started.

It is reentrant: each call owns a `BuildSession` (its mounts and containers), installs no
signal handler and prints nothing unless given a progress stream, so one process can run
many builds, one after another or from worker threads. An identical rebuild is answered
from `slimage.builder.noop` before the builder is loaded (`BuildOptions.noop_cache`).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from slimage.errors import BuildError, SlimageError

if TYPE_CHECKING:
    from slimage.store.store import Store


@dataclass
class BuildOptions:
    context: str
    dockerfile: str | None = None
    tags: list[str] = field(default_factory=list)
    target: str | None = None
    build_args: dict[str, str] = field(default_factory=dict)
    no_cache: bool = False
    network: str = "host"
    runtime: str | None = None
    secrets: dict[str, str] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)  # "type=oci,dest=DIR" ...
    load: bool = False
    labels: dict[str, str] = field(default_factory=dict)  # docker build --label
    iidfile: str | None = None
    quiet: bool = False
    compression: str | None = None
    source_date_epoch: int | None = None
    # Where BuildKit-style progress goes (the CLI passes stderr); None: nowhere.
    progress: TextIO | None = None
    # Answer a rebuild with nothing to do from its record (see builder.noop); only builds
    # whose whole effect is in the store qualify (no outputs, --load, iidfile or secrets).
    noop_cache: bool = True
    # `--cache-from`/`--cache-to` values (see builder.remotecache), `--push` (every tag
    # pushed to its registry, as `--output type=registry` does).
    cache_from: list[str] = field(default_factory=list)
    cache_to: list[str] = field(default_factory=list)
    push: bool = False


@dataclass
class BuildResult:
    image_id: str
    manifest_digest: str
    tags: list[str]
    layers: int
    steps: int
    cached_steps: int
    seconds: float
    outputs: list[str] = field(default_factory=list)
    # Steps answered by a --cache-from source, and the bytes fetched from them.
    remote_cached_steps: int = 0
    bytes_pulled: int = 0
    pushed: list[str] = field(default_factory=list)  # "REF@DIGEST" per pushed name
    cache_exported: list[str] = field(default_factory=list)  # "DEST@DIGEST"
    warnings: list[str] = field(default_factory=list)


class Interrupted(SlimageError):
    exit_code = 130


class _Discard:
    """The progress stream of a build nobody watches."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def _noop_answer(opts: BuildOptions, hit: dict[str, Any], started: float) -> BuildResult:
    from slimage.builder import noop

    hit = dict(hit, cached_steps=hit["steps"], seconds=round(time.perf_counter() - started, 3))
    if opts.progress is not None and not opts.quiet:
        noop.report_hit(opts.progress, hit)
    return BuildResult(**hit)


def build(opts: BuildOptions, store: Store | str | os.PathLike[str]) -> BuildResult:
    """Build OPTS into STORE: a `Store`, or the root of one (then the store is opened only
    if the no-op record does not answer)."""
    started = time.perf_counter()
    given: Store | None = None if isinstance(store, (str, os.PathLike)) else store
    root = Path(given.root if given is not None else store)  # type: ignore[arg-type]
    from slimage.builder import noop

    key = noop.options_key(opts)
    if key is not None:
        hit = noop.lookup(root, key, opts.tags)
        if hit is not None:
            return _noop_answer(opts, hit, started)
    if os.geteuid() != 0:  # before the store is created: a refused build writes nothing
        from slimage.errors import PermissionRequiredError

        raise PermissionRequiredError(
            "slimage build needs root (overlayfs mounts and runc); run it with sudo or as root"
        )
    if given is None:
        from slimage.store.store import Store

        given = Store(root)
    urls: list[dict[str, Any]] = []  # what the ADD <url> steps learnt, for the record
    result = _build(opts, given, urls)
    if key is not None and noop.options_key(opts) == key:  # nothing changed meanwhile
        noop.remember(root, key, opts.tags, asdict(result), urls)
    return result


def _build(
    opts: BuildOptions, store: Store, urls: list[dict[str, Any]] | None = None
) -> BuildResult:
    from slimage.builder.cache import BuildCache
    from slimage.builder.context import BuildContext
    from slimage.builder.executor import BuildSettings
    from slimage.builder.planner import plan
    from slimage.builder.progress import Progress
    from slimage.builder.session import BuildSession
    from slimage.dockerfile import parse_file

    t0 = time.monotonic()
    if opts.outputs or opts.push:
        from slimage.builder.outputs import check_outputs

        check_outputs(opts.outputs, push=opts.push, tags=opts.tags)  # a typo costs no build
    from slimage.builder.remotecache import load_sources, parse_cache_spec

    cache_from = [parse_cache_spec(t, export=False) for t in opts.cache_from]
    cache_to = [parse_cache_spec(t, export=True) for t in opts.cache_to]
    warnings: list[str] = []

    def warn(text: str) -> None:
        """Said once, also with -q: a cache that silently does nothing costs hours."""
        if text in warnings:
            return
        warnings.append(text)
        if opts.progress is not None:
            opts.progress.write(f"WARNING: {text}\n")
            opts.progress.flush()

    ctx_dir = Path(opts.context)
    df_path = Path(opts.dockerfile) if opts.dockerfile else ctx_dir / "Dockerfile"
    if not df_path.is_file():
        raise BuildError(f"failed to read dockerfile: open {df_path}: no such file or directory")
    df = parse_file(df_path)
    pl = plan(df, target=opts.target, build_args=opts.build_args)
    epoch = opts.source_date_epoch
    if epoch is None and os.environ.get("SOURCE_DATE_EPOCH", "").strip():
        try:
            epoch = int(os.environ["SOURCE_DATE_EPOCH"])
        except ValueError:
            raise BuildError("SOURCE_DATE_EPOCH must be an integer (seconds since 1970)") from None
    progress = Progress(opts.progress or _Discard(), quiet=opts.quiet)  # type: ignore[arg-type]
    secrets = {}
    for sid, src in opts.secrets.items():
        p = Path(src)
        if not p.is_file():
            raise BuildError(f"secret {sid}: {src} is not a file")
        secrets[sid] = p.resolve()
    session = BuildSession(store, opts.runtime)
    settings = BuildSettings(
        session=session,
        store=store,
        context=BuildContext(ctx_dir, df_path, stat_cache=store.root / "build-context-hashes.json"),
        cache=BuildCache(
            store,
            enabled=not opts.no_cache,
            remote=load_sources(cache_from, store, warn)
            if cache_from and not opts.no_cache
            else None,
        ),
        progress=progress,
        runtime_name=opts.runtime,
        network=opts.network,
        build_args=dict(opts.build_args),
        secrets=secrets,
        source_date_epoch=epoch,
        compression=opts.compression or os.environ.get("SLIMAGE_COMPRESSION", "gzip"),
    )
    try:
        with session:  # closes (kills, unmounts) on any exit, KeyboardInterrupt included
            manifest, config, mdigest, final, steps = _run_with_remote(
                opts, settings, pl, df, df_path, epoch, warn
            )
    except KeyboardInterrupt as exc:
        err = Interrupted("build interrupted; mounts and containers cleaned up")
        err.exit_code = int(getattr(exc, "exit_code", 130))  # 143 for SIGTERM, from the CLI
        raise err from None
    from slimage.store.refs import parse_reference

    settings.context.save_stat_cache()
    if urls is not None:
        urls.extend(settings.cache.url_inputs)
    if opts.iidfile:
        Path(opts.iidfile).write_text(config.digest)
    # BuildKit's closing step, in its words.
    n = progress.step("exporting to image")
    progress.info(f"#{n} writing image {config.digest} done")
    for t in opts.tags:
        progress.info(f"#{n} naming to {parse_reference(t).name} done")
    outputs: list[str] = []
    if opts.outputs or opts.load:
        from slimage.builder.outputs import export

        outputs = export(store, mdigest, opts.outputs, load=opts.load, tags=opts.tags)
        for o in outputs:
            progress.info(f"#{n} exporting to {o} done")
    pushed: list[str] = []
    if opts.push:
        from slimage.builder.outputs import push_tags

        for name, digest in push_tags(store, mdigest, opts.tags):
            progress.info(f"#{n} pushing {name}@{digest} done")
            pushed.append(f"{name}@{digest}")
    exported = _export_caches(cache_to, store, settings.cache, manifest, warn, progress, n)
    progress.done()
    remote = settings.cache.remote
    return BuildResult(
        image_id=config.digest,
        manifest_digest=mdigest,
        tags=list(opts.tags),
        layers=len(final.diff_ids),
        steps=steps,
        cached_steps=progress.cached_steps,
        seconds=round(time.monotonic() - t0, 3),
        outputs=outputs,
        remote_cached_steps=settings.cache.remote_hits,
        bytes_pulled=remote.bytes_pulled if remote is not None else 0,
        pushed=pushed,
        cache_exported=exported,
        warnings=warnings,
    )


MAX_CACHE_RETRIES = 3


def _run_with_remote(
    opts: BuildOptions,
    settings: Any,
    pl: Any,
    df: Any,
    df_path: Path,
    epoch: int | None,
    warn: Any,
) -> tuple[Any, Any, str, Any, int]:
    """`_run_stages`, run again without a --cache-from blob that was refused (wrong
    bytes, wrong diff_id, gone): the step that made it is then rebuilt here. The steps the
    first attempt ran are in the local cache by then, so a rerun costs little."""
    from slimage.builder.remotecache import CacheBlobRefused

    for attempt in range(MAX_CACHE_RETRIES + 1):
        try:
            return _run_stages(opts, settings, pl, df, df_path, epoch)
        except CacheBlobRefused as exc:
            remote = settings.cache.remote
            if remote is None or attempt == MAX_CACHE_RETRIES:
                raise BuildError(str(exc)) from None
            warn(f"{exc}; rebuilding that step locally")
            remote.refused.add(exc.digest)
            settings.cache.used.clear()
            settings.cache.remote_hits = 0
            settings.progress.cached_steps = 0
    raise AssertionError("unreachable")  # pragma: no cover


def _export_caches(
    specs: list[Any],
    store: Store,
    cache: Any,
    manifest: Any,
    warn: Any,
    progress: Any,
    n: int,
) -> list[str]:
    """Each --cache-to: mode=min the records whose layers the image holds, mode=max every
    record the build used. A failed export is a warning: the image is built."""
    from slimage.builder.remotecache import Record, export_cache
    from slimage.oci.model import Descriptor

    done: list[str] = []
    if not specs:
        return done
    in_image = {d.digest for d in manifest.layers}
    every = [
        Record(k, e.diff_id, Descriptor.from_dict(e.layer), e.created)
        for k, e in cache.used.items()
    ]
    for spec in specs:
        records = every if spec.mode == "max" else [r for r in every if r.layer.digest in in_image]
        try:
            digest = export_cache(spec, store, records, cache.remote)
        except (SlimageError, OSError) as exc:
            warn(f"--cache-to {spec.label}: not exported ({exc})")
            continue
        progress.info(
            f"#{n} exporting cache to {spec.label} ({len(records)} records) {digest} done"
        )
        done.append(f"{spec.label}@{digest}")
    return done


def _run_stages(
    opts: BuildOptions,
    settings: Any,
    pl: Any,
    df: Any,
    df_path: Path,
    epoch: int | None,
) -> tuple[Any, Any, str, Any, int]:
    """Every needed stage, then the target committed and tagged in the settings' store."""
    from slimage.builder.executor import StageExecutor, StageState, rfc3339

    progress = settings.progress
    done: dict[int, StageState] = {}

    def resolve_stage(ref: str) -> StageState | None:
        low = ref.lower()
        for s in pl.stages:
            if (s.name and s.name == low) or (low.isdigit() and s.index == int(low)):
                return done.get(s.index)
        return None

    steps = 0
    for idx in pl.order:
        stage = pl.stages[idx]
        ex = StageExecutor(
            settings,
            stage,
            resolve_stage,
            pl.meta_args,
            df.escape,
            str(df_path),
            platform=pl.platform_args,
        )
        steps += 1
        progress.step(f"[{stage.label} 1/{len(stage.instructions) + 1}] {stage.from_inst.original}")
        ex.start()
        progress.done()
        commands = ex.onbuild_triggers() + stage.commands
        for n, command in enumerate(commands, start=2):
            steps += 1
            ex.execute(command, f"{stage.label} {n}/{len(commands) + 1}")
        done[idx] = ex.state
    final = done[pl.target]
    if opts.labels:
        # `--label` sets config labels on the result only (no history entry, no cache key).
        final.config["Labels"] = {**(final.config.get("Labels") or {}), **opts.labels}
    if settings.cache.remote is not None:
        # The store holds every image whole: the final layers taken from a remote cache
        # are fetched now (and only those, unless a step needed others).
        settings.cache.remote.ensure_local(final.layers, final.diff_ids)
    manifest, config, mdigest = final.write(
        tags=opts.tags,
        created=final.last_created() or rfc3339(epoch if epoch is not None else time.time()),
    )
    return manifest, config, mdigest, final, steps
