"""`build()`: Dockerfile + context -> an image in the store (and optional outputs).

This is the function `slimage build` calls. It plans the stages, runs each needed one
through the executor, commits the target stage, and guarantees that an interrupted build
(Ctrl-C, SIGTERM) unmounts every overlay and deletes every container it started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from slimage.errors import BuildError, SlimageError
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


class Interrupted(SlimageError):
    exit_code = 130


@contextlib.contextmanager
def _cleanup_on_signal() -> Iterator[None]:
    """SIGTERM behaves like Ctrl-C; either way every mount and container is cleaned up."""

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted("build interrupted; mounts and containers cleaned up") from None
    finally:
        import sys

        # Nothing can be mounted or running unless these modules were loaded.
        if "slimage.builder.runner" in sys.modules:
            sys.modules["slimage.builder.runner"].kill_all()
        if "slimage.builder.rootfs" in sys.modules:
            sys.modules["slimage.builder.rootfs"].cleanup_all()
        signal.signal(signal.SIGTERM, old)


def build(opts: BuildOptions, store: Store | None = None) -> BuildResult:
    from slimage.builder.cache import BuildCache
    from slimage.builder.context import BuildContext
    from slimage.builder.executor import BuildSettings, StageExecutor, StageState, rfc3339
    from slimage.builder.planner import plan
    from slimage.builder.progress import Progress
    from slimage.dockerfile import parse_file

    t0 = time.monotonic()
    if os.geteuid() != 0:
        from slimage.errors import PermissionRequiredError

        raise PermissionRequiredError(
            "slimage build needs root (overlayfs mounts and runc); run it with sudo or as root"
        )
    if opts.outputs:
        from slimage.builder.outputs import check_outputs

        check_outputs(opts.outputs)  # a typo must not cost a whole build
    store = store or Store()
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
    progress = Progress(quiet=opts.quiet)
    secrets = {}
    for sid, src in opts.secrets.items():
        p = Path(src)
        if not p.is_file():
            raise BuildError(f"secret {sid}: {src} is not a file")
        secrets[sid] = p.resolve()
    settings = BuildSettings(
        store=store,
        context=BuildContext(ctx_dir, df_path, stat_cache=store.root / "build-context-hashes.json"),
        cache=BuildCache(store, enabled=not opts.no_cache),
        progress=progress,
        runtime_name=opts.runtime,
        network=opts.network,
        build_args=dict(opts.build_args),
        secrets=secrets,
        source_date_epoch=epoch,
        compression=opts.compression or os.environ.get("SLIMAGE_COMPRESSION", "gzip"),
    )
    done: dict[int, StageState] = {}

    def resolve_stage(ref: str) -> StageState | None:
        low = ref.lower()
        for s in pl.stages:
            if (s.name and s.name == low) or (low.isdigit() and s.index == int(low)):
                return done.get(s.index)
        return None

    steps = 0

    with _cleanup_on_signal():
        for idx in pl.order:
            stage = pl.stages[idx]
            ex = StageExecutor(
                settings, stage, resolve_stage, pl.meta_args, df.escape, str(df_path)
            )
            steps += 1
            progress.step(
                f"[{stage.label} 1/{len(stage.instructions) + 1}] {stage.from_inst.original}"
            )
            ex.start()
            progress.done()
            insts = ex.onbuild_triggers() + stage.instructions
            for n, inst in enumerate(insts, start=2):
                steps += 1
                ex.execute(inst, f"{stage.label} {n}/{len(insts) + 1}")
            done[idx] = ex.state
        final = done[pl.target]
        if opts.labels:
            # `--label` sets config labels on the result only (no history entry, no cache key).
            final.config["Labels"] = {**(final.config.get("Labels") or {}), **opts.labels}
        manifest, config = final.build(
            final.last_created() or rfc3339(epoch if epoch is not None else time.time())
        )
        store.put_bytes(config.raw, config.digest)
        from slimage.oci.digest import sha256_digest

        mdigest = sha256_digest(manifest.raw)
        store.put_bytes(manifest.raw, mdigest)
        refs = store.refs()
        from slimage.store.refs import parse_reference

        if mdigest not in store.images() or any(
            refs.get(parse_reference(t).name) != mdigest for t in opts.tags
        ):
            store.add_image(mdigest, tags=opts.tags, added=rfc3339(time.time()))
    settings.context.save_stat_cache()
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
    progress.done()
    return BuildResult(
        image_id=config.digest,
        manifest_digest=mdigest,
        tags=list(opts.tags),
        layers=len(final.diff_ids),
        steps=steps,
        cached_steps=progress.cached_steps,
        seconds=round(time.monotonic() - t0, 3),
        outputs=outputs,
    )
