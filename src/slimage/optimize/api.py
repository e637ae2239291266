"""`optimize(options, store)`: build, run, probe and measure every variant; recommend one.

Order, and why:

1. `as-written` is built first. If it does not build, nothing else can be compared with
   it: the error names the failing step's FILE:LINE and the tail of its output.
2. Its image is read once: the app's run-time files (appfiles), its measures, and the
   probes' answers, which every other variant must reproduce (status and body digest).
3. The other variants are built one after another in this process with slimage's
   builder (their build stages hit the cache of step 1), each measured and probed. A
   variant that cannot be made, does not build or answers differently gets a row saying
   why, and the others go on.
4. `minified` runs `slimage minify` (same probes) on the best variant so far.

Every variant is tagged `NAME:optimize-VARIANT` as soon as it is built, so an interrupted
run keeps the finished ones; builds, runs and minify each clean up their own containers,
mounts and untagged images on any exit, Ctrl-C included.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from slimage.errors import BuildError, NotFoundError, SlimageError, UsageError
from slimage.image import Image
from slimage.minify.probe import ExecProbe, HttpProbe, ProbeResult, build_probes, exposed_ports
from slimage.optimize import advise, variants
from slimage.optimize.appfiles import AppFiles, app_from, find_app_files, find_program, shebang
from slimage.optimize.measure import (
    Measures,
    cache_get,
    cache_put,
    compare,
    measure,
    measures_from,
    probe_run,
    read_files,
)
from slimage.store.store import Store


class OptimizeError(SlimageError):
    """as-written itself failed (does not build, or there is nothing to optimize)."""


@dataclass
class OptimizeOptions:
    context: str | None = None
    dockerfile: str | None = None
    image: str | None = None  # no Dockerfile: optimize this image (base-swap + minify rows)
    name: str | None = None  # NAME of the NAME:optimize-VARIANT tags
    build_args: dict[str, str] = field(default_factory=dict)
    http_probes: list[str] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    execs: list[str] = field(default_factory=list)
    probe_timeout: float = 60.0
    prefer: str = "safest"
    skip: list[str] = field(default_factory=list)  # variant names not to make
    runtime: str | None = None
    no_cache: bool = False


@dataclass
class VariantRow:
    name: str
    tag: str = ""
    status: str = "pending"  # ok, failed, skipped
    reason: str = ""
    dockerfile: str = ""  # the variant's Dockerfile text ("" for minified / an image)
    base: str = ""
    preset: str = ""
    image_id: str = ""
    build_seconds: float | None = None
    build_steps: int = 0
    cached_steps: int = 0  # steps answered from the build cache
    measures: Measures | None = None
    probes: list[ProbeResult] = field(default_factory=list)
    first_answer: float | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class OptimizeReport:
    name: str
    source: str  # the Dockerfile, or the image
    context: str
    rows: list[VariantRow]
    prefer: str
    recommended: str  # variant name, "" when none passed
    advice: str
    preset: str
    preset_reason: str
    entry_note: str
    app_roots: list[str]
    dropped: dict[str, int]
    original_dockerfile: str
    seconds: float
    exit_code: int = 0

    def row(self, name: str) -> VariantRow | None:
        return next((r for r in self.rows if r.name == name), None)


def tag_name(context: str | None, image: str | None) -> str:
    """NAME for NAME:optimize-VARIANT: the context directory's (or image's) name, made a
    valid repository name."""
    raw = Path(context).resolve().name if context else (image or "app").rsplit("/", 1)[-1]
    raw = raw.split("@", 1)[0].split(":", 1)[0].lower()
    name = re.sub(r"[^a-z0-9._-]+", "-", raw).strip("-._") or "app"
    return name


def _probes(opts: OptimizeOptions, config: dict) -> list[HttpProbe | ExecProbe]:
    ports = list(dict.fromkeys(exposed_ports(config) + list(opts.ports)))
    return build_probes(ports, opts.http_probes, opts.execs)


def _failed_step(progress: str, df_path: str, text: str) -> str:
    """FILE:LINE of the step the progress stream was in when the build failed."""
    from slimage.dockerfile import parse

    steps = re.findall(r"^#\d+ \[[^\]]*\] (.*)$", progress, re.M)
    if not steps:
        return df_path
    last = steps[-1].strip()
    try:
        df = parse(text, path=df_path, strict=False)
    except SlimageError:
        return df_path
    for inst in df.instructions:
        if inst.original.strip() == last:
            return f"{df_path}:{inst.start_line}"
    return df_path


class _Session:
    """One optimize run: the store, the options, the work directory, the log."""

    def __init__(self, opts: OptimizeOptions, store: Store, log: Callable[[str], None]):
        self.opts = opts
        self.store = store
        self.log = log
        self.name = opts.name or tag_name(opts.context, opts.image)
        self.work = store.root / "optimize-work" / f"{self.name.replace('/', '_')}-{os.getpid()}"
        self.probes: list[HttpProbe | ExecProbe] = []
        self.baseline: list[ProbeResult] | None = None

    def tag(self, variant: str) -> str:
        return f"{self.name}:optimize-{variant}"

    # ------------------------------------------------------------------ building
    def build(self, row: VariantRow, text: str, *, fatal: bool = False) -> bool:
        from slimage.builder.api import BuildOptions, build

        assert self.opts.context is not None
        path = self.work / f"Dockerfile.{row.name}"
        path.write_text(text)
        progress = io.StringIO()
        self.log(f"optimize: building {row.name}")
        t0 = time.monotonic()
        try:
            res = build(
                BuildOptions(
                    context=self.opts.context,
                    dockerfile=str(path),
                    tags=[row.tag],
                    build_args=dict(self.opts.build_args),
                    no_cache=self.opts.no_cache,
                    runtime=self.opts.runtime,
                    progress=progress,  # kept for the failing step's FILE:LINE
                ),
                self.store,
            )
        except BuildError as err:
            tail = list(getattr(err, "tail", None) or [])
            lines = [ln.strip() for ln in tail if ln.strip()][-3:]
            where = _failed_step(progress.getvalue(), self.source_path(row), text)
            msg = f"{where}: {err}" + (f"; output: {' | '.join(lines)}" if lines else "")
            if fatal:
                raise OptimizeError(msg) from None
            row.status, row.reason = "failed", f"does not build: {msg}"
            return False
        row.build_seconds = round(time.monotonic() - t0, 2)
        row.build_steps, row.cached_steps = res.steps, res.cached_steps
        row.image_id = res.image_id
        return True

    def source_path(self, row: VariantRow) -> str:
        if row.name == "as-written" and self.opts.dockerfile:
            return self.opts.dockerfile
        return str(self.work / f"Dockerfile.{row.name}")

    # ------------------------------------------------------------------ measuring
    def evaluate(self, row: VariantRow, needed: list[str], base_layers: int = 0) -> Image | None:
        """Measure and probe ROW's image; compare its answers with as-written's."""
        from slimage.store.images import open_image

        image = open_image(self.store, row.tag)
        key = "measures:" + "\n".join(needed)
        cached = cache_get(self.store, image.id, key)
        if cached is not None:
            row.measures = measures_from(cached)
        else:
            files = read_files(image)
            needed_here = [p for p in needed if p in files.elves]
            row.measures = measure(self.store, image, files, needed_here, row.tag)
            cache_put(self.store, image.id, key, asdict(row.measures))
        row.measures.base_layers = base_layers
        self.log(f"optimize: running {row.name} under slimage's runtime")
        out = probe_run(
            self.store,
            row.tag,
            self.probes,
            timeout=self.opts.probe_timeout,
            runtime=self.opts.runtime,
        )
        row.probes = out.results
        row.first_answer = out.first_answer
        diff = ""
        if self.baseline is not None and row.name != "as-written" and out.results:
            diff = compare(self.baseline, out.results)
        if diff or not out.ok:
            row.status, row.reason = "failed", diff or out.error or "probes failed"
            return image
        row.status = "ok"
        return image


def _base_layers(store: Store, df: object, build_args: dict[str, str], image: Image) -> int:
    """How many of IMAGE's layers its final stage's base gave it."""
    from slimage.dockerfile import stages
    from slimage.store.images import open_image

    st = stages(df, build_args)  # type: ignore[arg-type]
    by_name = {s.name: s for s in st if s.name}
    stage = st[-1]
    for _ in range(len(st)):
        ref = stage.base_expanded.lower()
        if ref in by_name:
            stage = by_name[ref]
        elif ref.isdigit() and int(ref) < len(st):
            stage = st[int(ref)]
        else:
            break
    if stage.base_expanded == "scratch":
        return 0
    try:
        base = open_image(store, stage.base_expanded)
    except SlimageError:
        from slimage.analysis.efficiency import guess_base_layers

        return guess_base_layers(image)[0]
    n = 0
    for a, b in zip(base.config.diff_ids, image.config.diff_ids, strict=False):
        if a != b:
            break
        n += 1
    return n


def ensure_preset(store: Store, preset: str, log: Callable[[str], None]) -> str:
    """The preset's image in the store (built from Debian packages when missing)."""
    tag = variants.preset_tag(preset)
    try:
        store.resolve(tag)
        return tag
    except (NotFoundError, UsageError):
        pass
    from slimage.bases.builder import BaseSpec, build, make_repository, plan

    log(f"optimize: building the {preset} base from Debian packages ({tag})")
    spec = BaseSpec(preset=preset)
    lock, _ = plan(spec, make_repository(spec))
    build(lock, store, tags=[tag])
    return tag


def _needed_elves(files: object, app: AppFiles) -> list[str]:
    """The ELF files the app runs: its program (or its script's interpreter) and its own
    native files."""
    out: list[str] = []
    prog = app.program
    elves = files.elves  # type: ignore[attr-defined]
    if prog and prog not in elves:
        interp = shebang(files, prog)  # type: ignore[arg-type]
        prog = find_program(files, interp[0]) if interp else ""  # type: ignore[arg-type]
    if prog and prog in elves:
        out.append(prog)
    return out + [p for p in app.native if p not in out]


def optimize(
    opts: OptimizeOptions, store: Store, log: Callable[[str], None] = lambda s: None
) -> OptimizeReport:
    """Build, run, probe and measure every variant; see the module docstring."""
    from slimage.runtime import overlay

    overlay.require_root("slimage optimize")
    if opts.prefer not in advise.PREFER:
        raise UsageError(f"--prefer {opts.prefer!r}: use one of {', '.join(advise.PREFER)}")
    if opts.probe_timeout <= 0:
        raise UsageError("--probe-timeout must be positive")
    unknown = [s for s in opts.skip if s not in variants.VARIANTS]
    if unknown:
        raise UsageError(f"--skip {unknown[0]}: variants are {', '.join(variants.VARIANTS)}")
    s = _Session(opts, store, log)
    s.work.mkdir(parents=True, exist_ok=True)
    try:
        return _optimize(s)
    finally:
        shutil.rmtree(s.work, ignore_errors=True)


def _optimize(s: _Session) -> OptimizeReport:
    from slimage.dockerfile import parse, parse_file
    from slimage.store.images import open_image

    opts, store = s.opts, s.store
    t0 = time.monotonic()
    rows: list[VariantRow] = []
    original = ""
    if opts.image is None:
        if opts.context is None:
            raise UsageError("give a build context (with its Dockerfile) or an image")
        ctx = Path(opts.context)
        df_path = Path(opts.dockerfile) if opts.dockerfile else ctx / "Dockerfile"
        if not ctx.is_dir():
            raise OptimizeError(
                f"{opts.context}: no such directory, and no image of that name in the store"
            )
        if not df_path.is_file():
            raise OptimizeError(f"{df_path}: no Dockerfile there (give -f FILE, or an image)")
        opts.dockerfile = str(df_path)
        df = parse_file(df_path)
        original = df.text
        as_written = VariantRow("as-written", s.tag("as-written"), dockerfile=df.text)
        rows.append(as_written)
        s.build(as_written, df.text, fatal=True)
        image = open_image(store, as_written.tag)
        base_ref = variants.stages(df, opts.build_args)[-1].base_expanded
        n_base = _base_layers(store, df, opts.build_args, image)
        source = str(df_path)
        shown_context = opts.context
    else:
        try:
            digest = store.resolve(opts.image)
        except (NotFoundError, UsageError):
            raise OptimizeError(
                f"{opts.image}: no such image in the store, and no build context of that name"
            ) from None
        image = open_image(store, digest)
        store.add_image(digest, tags=[s.tag("as-written")])
        df = parse(f"FROM {s.tag('as-written')} AS build\n", path=opts.image)
        as_written = VariantRow("as-written", s.tag("as-written"), reason="", base=opts.image)
        as_written.notes.append(
            f"the image {opts.image} as given (no Dockerfile: no fixed or multi-stage rows)"
        )
        rows.append(as_written)
        from slimage.analysis.efficiency import guess_base_layers

        n_base = guess_base_layers(image)[0]
        base_ref = ""
        source = opts.image
        opts.context = str(s.work)  # the generated Dockerfiles need no context files
        shown_context = "."
    lazy: dict[str, object] = {}

    def files() -> object:
        """as-written's files, read only when the cache does not answer."""
        if "files" not in lazy:
            lazy["files"] = read_files(image)
        return lazy["files"]

    config = image.config.config
    app_key = f"app:{n_base}"
    cached = cache_get(store, image.id, app_key)
    if cached is not None:
        app, needed = app_from(cached["app"]), list(cached["needed"])
    else:
        app = find_app_files(files(), n_base)  # type: ignore[arg-type]
        needed = _needed_elves(files(), app)
        cache_put(store, image.id, app_key, {"app": asdict(app), "needed": needed})
    s.probes = _probes(opts, config)
    s.evaluate(as_written, needed, n_base)
    if as_written.status == "ok":
        s.baseline = as_written.probes
    base_config = {}
    if base_ref:
        try:
            base_config = open_image(store, base_ref).config.config
        except SlimageError:
            base_config = {}
    # ------------------------------------------------------------- fixed
    if opts.image is None and "fixed" not in opts.skip:
        from slimage.dockerfile.fix import fix_text

        row = VariantRow("fixed", s.tag("fixed"))
        rows.append(row)
        res = fix_text(df.text, path=str(opts.dockerfile), context_dir=opts.context)
        row.dockerfile = res.fixed
        if not res.changed:
            row.notes.append("slimage fix finds nothing to rewrite: the same Dockerfile")
        else:
            row.notes.append(
                "slimage fix: " + ", ".join(f"{a.rule} line {a.line}" for a in res.applied)
            )
        if s.build(row, res.fixed):
            s.evaluate(row, needed, n_base)
    # ------------------------------------------------------------- generated variants
    gen_args = dict(
        df=df, build_args=opts.build_args, app=app, config=config, context=shown_context
    )
    if opts.image is None and "multi-stage" not in opts.skip:
        row = VariantRow("multi-stage", s.tag("multi-stage"), base=base_ref)
        rows.append(row)
        try:
            g = variants.generate(
                "multi-stage",
                base_ref=base_ref,
                base_config=base_config,
                **gen_args,  # type: ignore[arg-type]
            )
        except variants.VariantSkipped as exc:
            row.status, row.reason = "skipped", str(exc)
        else:
            row.dockerfile = g.text
            if app.entry and app.entry.note:
                row.notes.append(app.entry.note)
            if s.build(row, g.text):
                s.evaluate(row, needed, n_base)
    for variant in ("distroless", "musl"):
        if variant in opts.skip:
            continue
        preset = app.preset if variant == "distroless" else "musl"
        row = VariantRow(variant, s.tag(variant), preset=preset, base=variants.preset_tag(preset))
        rows.append(row)
        if variant == "distroless":
            row.notes.append(f"preset {preset}: {app.preset_reason}")
        tag = ensure_preset(store, preset, s.log)
        pimage = open_image(store, tag)
        # The generated file is a function of the user's Dockerfile and build args, the
        # as-written image (its ID) and the preset image: a warm run reads neither again.
        gkey = (
            "gen:"
            + hashlib.sha256(
                json.dumps(
                    [variant, pimage.id, df.text, opts.build_args, shown_context, base_ref]
                ).encode()
            ).hexdigest()
        )
        got = cache_get(store, image.id, gkey)
        if got is None:
            got = _generate_preset_variant(
                variant, preset, tag, pimage, files, app, needed, base_config, gen_args
            )
            cache_put(store, image.id, gkey, got)
        if got.get("skip"):
            row.status, row.reason = "skipped", got["skip"]
            continue
        text = got["text"]
        row.dockerfile = text
        if app.entry and app.entry.note:
            row.notes.append(app.entry.note)
        if s.build(row, text):
            s.evaluate(row, needed, len(pimage.layers))
    # ------------------------------------------------------------- minified
    if "minified" not in opts.skip:
        row = VariantRow("minified", s.tag("minified"))
        rows.append(row)
        best, _ = advise.choose(rows, "smallest")
        if best is None:
            row.status, row.reason = "skipped", "no variant passed its probes to minify"
        else:
            _minified(s, row, best, needed)
    rec, line = advise.advice(rows, opts.prefer, app.preset)
    report = OptimizeReport(
        name=s.name,
        source=source,
        context=opts.context or "",
        rows=rows,
        prefer=opts.prefer,
        recommended=rec.name if rec is not None else "",
        advice=line,
        preset=app.preset,
        preset_reason=app.preset_reason,
        entry_note=app.entry.note if app.entry else "",
        app_roots=["/" + p for p in app.copy_roots]
        + ["/" + p for ps in app.scattered.values() for p in ps][:50],
        dropped=dict(app.dropped),
        original_dockerfile=original,
        seconds=round(time.monotonic() - t0, 2),
        exit_code=0 if as_written.status == "ok" else 1,
    )
    return report


def _generate_preset_variant(
    variant: str,
    preset: str,
    tag: str,
    pimage: Image,
    files: Callable[[], object],
    app: AppFiles,
    needed: list[str],
    base_config: dict,
    gen_args: dict,
) -> dict[str, str]:
    """{"text": Dockerfile} of the distroless or musl variant, or {"skip": why}."""
    from slimage.bases.presets import get_preset

    pfiles = read_files(pimage)
    try:
        if variant == "musl":
            why = _musl_blocker(files(), pfiles, needed)
            if why:
                raise variants.VariantSkipped(why)
        elif preset == "python3" and app.interpreter.startswith("python3."):
            if not find_program(pfiles, app.interpreter):
                raise variants.VariantSkipped(
                    f"the app runs {app.interpreter}; the python3 preset has another version"
                )
        g = variants.generate(
            variant,
            base_ref=tag,
            base_config=base_config,
            target=pfiles,
            preset=preset,
            preset_entrypoint=get_preset(preset).entrypoint,
            **gen_args,
        )
    except variants.VariantSkipped as exc:
        return {"skip": str(exc)}
    return {"text": g.text}


def _musl_blocker(files: object, musl: object, needed: list[str]) -> str:
    """compat's one-line reason why a needed ELF file would not load on musl, or ''."""
    from slimage.analysis.compat import Checker, TargetSystem

    checker = Checker(files, TargetSystem.from_files(musl))  # type: ignore[arg-type]
    for path in needed:
        v = checker.check(path, files.elves[path])  # type: ignore[attr-defined]
        if not v.loads:
            return f"compat: /{path} {v.detail}"
    if not needed:
        return "compat: no ELF program found to check against musl"
    return ""


def _minified(s: _Session, row: VariantRow, best: VariantRow, needed: list[str]) -> None:
    from slimage.minify.api import MinifyOptions, minify

    row.base = best.tag
    row.notes.append(f"slimage minify of {best.name} (the smallest passing so far), same probes")
    s.log(f"optimize: minifying {best.name}")
    t0 = time.monotonic()
    try:
        minify(
            MinifyOptions(
                image=best.tag,
                tags=[row.tag],
                http_probes=list(s.opts.http_probes),
                ports=list(s.opts.ports),
                execs=list(s.opts.execs),
                probe_timeout=s.opts.probe_timeout,
            ),
            s.store,
        )
    except SlimageError as exc:
        row.status, row.reason = "failed", f"minify: {exc}"
        return
    row.build_seconds = round(time.monotonic() - t0, 2)
    row.dockerfile = best.dockerfile
    s.evaluate(row, needed, 1)  # minify writes the base's kept files, then the app's


def write_dockerfile(report: OptimizeReport, path: str) -> str:
    """Write the recommended variant's Dockerfile to PATH; returns the variant written."""
    rec = report.row(report.recommended)
    if rec is None:
        raise OptimizeError("no variant passed its probes: there is no Dockerfile to write")
    text = rec.dockerfile
    name = rec.name
    if rec.name == "minified":
        src = next((r for r in report.rows if r.tag == rec.base), None)
        if src is None or not src.dockerfile:
            raise OptimizeError(
                "the minified variant has no Dockerfile (it was made from an image)"
            )
        text = variants.with_header(
            src.dockerfile,
            f"# slimage optimize recommends `minified`: build this ({src.name}), then run\n"
            f"#   slimage minify IMAGE -t IMAGE:min (with the same probes) on the result.\n",
        )
        name = src.name
    if not text:
        raise OptimizeError(f"the {rec.name} variant has no Dockerfile to write")
    from slimage.streams import atomic_write

    atomic_write(Path(path), text.encode(), mode=0o644)
    return name


def load(report: OptimizeReport, store: Store) -> str:
    """Load the recommended image into the Docker engine; returns its tag."""
    from slimage.store.images import open_image
    from slimage.transports.docker_engine import load_into_engine

    rec = report.row(report.recommended)
    if rec is None:
        raise OptimizeError("no variant passed its probes: nothing to load")
    load_into_engine(open_image(store, rec.tag), [rec.tag])
    return rec.tag
