"""`minify(options)`: run and trace, compute the closure, write, verify, report.

The pipeline, and why it is in this order:

1. The original runs under strace with the probes (session, probe, trace). Nothing is
   written before the trace is complete, so an error here leaves nothing behind.
2. The closure is computed on a read-only view of the original's layers (closure,
   packages), never on the container's writable layer.
3. The new layers' unpacked form is staged (write.StagedLayers), and the minified image
   runs from it, traced, with the same probes (verify), while its blobs are written on a
   thread (write). Only when the answers match and the blobs are in is the image
   recorded and tagged; on a mismatch, an error or an interrupt the writing is cancelled
   and nothing is recorded, so no half-made image is ever visible (blobs already written
   go at the next gc).

Where the time goes, and what overlaps (the speed target: at most 3x a plain `slimage
run` with the same probes; `seconds` in the report): both traced runs share one CPU
with their tracer (`session.tracing_cpu`), and minify's own threads keep off it. The
original's view is walked for the report's sizes while the traced app starts; the trace
is parsed as strace writes it; the closure is computed while the traced app shuts down
(and again only if the shutdown touched anything new); the layers are written during
the verification run, which is killed without its stop signal once its answers match.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from slimage.errors import SlimageError, UsageError
from slimage.image import Image
from slimage.minify import closure as cl
from slimage.minify.packages import PackageAdditions
from slimage.minify.packages import keep_packages as add_packages
from slimage.minify.probe import (
    ExecProbe,
    HttpProbe,
    ProbeResult,
    build_probes,
    crawl,
    exec_result,
    exposed_ports,
    run_http,
    wait_for_port,
)
from slimage.minify.report import (
    FsStats,
    MinifyReport,
    ViewEntry,
    gone_tools,
    measure,
    scan_view,
    size_of,
)
from slimage.minify.seccomp import check_target, write_profile
from slimage.minify.session import (
    AppExitedError,
    RunSettings,
    TracedRun,
    avoid_cpu,
    tracing_cpu,
)
from slimage.minify.trace import Trace
from slimage.minify.verify import Verification, VerificationError, compare, lacking_paths
from slimage.minify.write import StagedLayers, Written, layer_groups, write_image
from slimage.store.store import Store


class ProbeTimeoutError(SlimageError):
    """A port never answered within --probe-timeout."""


@dataclass
class MinifyOptions:
    image: str
    tags: list[str] = field(default_factory=list)
    http_probes: list[str] = field(default_factory=list)
    http_probe_file: str | None = None
    ports: list[int] = field(default_factory=list)
    execs: list[str] = field(default_factory=list)
    continue_after: str = "probes"  # probes, timeout:N, signal
    probe_timeout: float = 60.0
    include_paths: list[str] = field(default_factory=list)
    include_bins: list[str] = field(default_factory=list)
    include_shell: bool = False
    excludes: list[str] = field(default_factory=list)
    keep_packages: bool = True
    verify: bool = True
    ignore_body: list[str] = field(default_factory=list)
    run: RunSettings = field(default_factory=RunSettings)
    # Write the syscalls both runs made as a Docker seccomp profile here. Both runs then
    # stop at every syscall (slower): the fast mode only stops at the file calls.
    seccomp_profile: str | None = None
    # Follow same-origin links and assets of HTML answers (bounded: --crawl-max pages).
    http_crawl: bool = False
    crawl_max: int = 50


@dataclass
class _Run:
    """What one traced run gave."""

    trace: Trace
    results: list[ProbeResult]
    crawled: list[HttpProbe]  # requests --http-crawl added (first run only)
    exit: str
    argv: list[str]
    env: list[str]
    workdir: str


def _parse_continue(text: str) -> tuple[str, float]:
    if text == "probes" or text == "signal":
        return text, 0.0
    if text.startswith("timeout:"):
        try:
            n = float(text.split(":", 1)[1])
        except ValueError:
            n = -1
        if n >= 0:
            return "timeout", n
    raise UsageError(f"--continue-after {text!r}: use probes, timeout:SECONDS or signal")


def _source(store: Store, spec: str) -> tuple[str, Image, bool]:
    """(manifest digest, image, whether we brought it into the store)."""
    from slimage.errors import ImageNotFoundError
    from slimage.store.images import ingest, open_image

    try:
        digest = store.resolve(spec)
        return digest, open_image(store, digest), False
    except (ImageNotFoundError, UsageError):
        pass
    from slimage.transports.sources import open_source

    res = ingest(store, open_source(spec, store))
    return res.manifest_digest, open_image(store, res.manifest_digest), True


@contextlib.contextmanager
def _original_view(store: Store, image: Image, name: str) -> Iterator[tuple[str, list[Path]]]:
    """A read-only overlay of IMAGE's layers: the filesystem the closure is computed on."""
    import json
    import shutil

    from slimage.runtime import overlay
    from slimage.runtime.layerdirs import LayerDirs

    lowers = LayerDirs(store).ensure_all(image.layers)
    base = store.root / "minify-work" / name
    target = base / "original"
    target.mkdir(parents=True, exist_ok=True)
    (base / "session.json").write_text(json.dumps({"owner": os.getpid()}))
    try:
        with overlay.overlay(target, lowers):
            yield str(target), lowers
    finally:
        if not overlay.is_mounted(target):
            shutil.rmtree(base, ignore_errors=True)


def _fail_app(run: TracedRun, what: str) -> AppExitedError:
    tail = run.tail(5).replace("\n", " | ")
    return AppExitedError(
        f"the application exited (code {run.exit_status()}) {what}"
        + (f"; last output: {tail}" if tail else "; it printed nothing")
    )


def _exercise(
    run: TracedRun,
    probes: list[HttpProbe | ExecProbe],
    ports: list[int],
    mode: str,
    wait: float,
    timeout: float,
    log: Callable[[str], None],
    crawl_max: int = 0,
    crawled: list[HttpProbe] | None = None,
) -> list[ProbeResult]:
    """Send PROBES; with CRAWL_MAX, then crawl from the HTTP ones (appending each request
    made to CRAWLED, for the verification run to repeat)."""
    deadline = time.monotonic() + timeout
    results: list[ProbeResult] = []
    for port in sorted({p.port for p in probes if isinstance(p, HttpProbe)}):
        if not wait_for_port(port, deadline, run.running):
            if not run.running():
                raise _fail_app(run, f"before port {port} answered on 127.0.0.1")
            raise ProbeTimeoutError(
                f"port {port}/tcp never answered on 127.0.0.1 within {timeout:g}s "
                "(--probe-timeout); is it the port the app listens on?"
            )
    for probe in probes:
        if isinstance(probe, HttpProbe):
            res = run_http(probe, timeout=max(1.0, deadline - time.monotonic()))
        else:
            rc, out, secs = run.exec(
                list(probe.argv), timeout=max(1.0, deadline - time.monotonic())
            )
            res = exec_result(probe, rc, out, secs)
        results.append(res)
        log(f"  probe {res.name}: {res.status} {'ok' if res.ok else res.error}")
        if not run.running():
            raise _fail_app(run, f"during probing (after {res.name})")
    if crawl_max > 0:
        starts = [p for p in probes if isinstance(p, HttpProbe)]
        for probe, res in crawl(starts, max_pages=crawl_max, deadline=deadline):
            results.append(res)
            if crawled is not None:
                crawled.append(probe)
            log(f"  crawl {res.name}: {res.status} {'ok' if res.ok else res.error}")
        if not run.running():
            raise _fail_app(run, "during --http-crawl")
    if mode == "timeout":
        end = time.monotonic() + wait
        while time.monotonic() < end and run.running():
            time.sleep(0.1)
    elif mode == "signal":
        got = {"sig": False}

        def on_usr1(signum: int, frame: object) -> None:
            got["sig"] = True

        old = signal.signal(signal.SIGUSR1, on_usr1)
        try:
            log(f"  waiting for SIGUSR1 (kill -USR1 {os.getpid()}) to end the traced run")
            while not got["sig"] and run.running():
                time.sleep(0.1)
        finally:
            signal.signal(signal.SIGUSR1, old)
    elif not probes:
        # Nothing to probe: a job that runs to its end. Wait for it, within the timeout.
        while run.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        if run.running():
            raise ProbeTimeoutError(
                f"the image EXPOSEs no port and no probe was given, and the app still ran after "
                f"{timeout:g}s; give --http-probe/--exec, or --continue-after timeout:N"
            )
    return results


def _traced_run(
    store: Store,
    image: Image,
    digest: str,
    settings: RunSettings,
    probes: list[HttpProbe | ExecProbe],
    ports: list[int],
    opts: MinifyOptions,
    label: str,
    log: Callable[[str], None],
    crawl_max: int = 0,
    *,
    lowers: list[Path] | None = None,
    cpu: int | None = None,
    while_stopping: Callable[[Trace, TracedRun], None] | None = None,
    passed: Callable[[list[ProbeResult]], bool] | None = None,
) -> _Run:
    """One traced run with the probes. WHILE_STOPPING(trace so far, run) is called once
    the probes are done, before the app is stopped (it may start work that overlaps the
    app's shutdown). When PASSED(results) says the answers are right, the app is killed
    without its stop signal: a verification run's shutdown can only explain a failure."""
    mode, wait = _parse_continue(opts.continue_after)
    with TracedRun(
        store,
        image,
        digest,
        settings,
        label=label,
        all_syscalls=bool(opts.seccomp_profile),
        lowers=lowers,
        cpu=cpu,
    ) as run:
        try:
            crawled: list[HttpProbe] = []
            results = _exercise(
                run, probes, ports, mode, wait, opts.probe_timeout, log, crawl_max, crawled
            )
            exited_early = not run.running()
            if while_stopping is not None and not exited_early:
                while_stopping(run.snapshot(), run)
            quick = passed is not None and not opts.seccomp_profile and passed(results)
            run.stop(grace=0 if quick else 1.0)
            exit_status = run.exit_status() if exited_early else "stopped"
            trace = run.traces()
            if trace.lines == 0:
                from slimage.minify.session import TracerError

                raise TracerError(
                    f"the tracer recorded nothing for the {label} run; refusing to write an "
                    "untraced image"
                )
            return _Run(trace, results, crawled, exit_status, run.argv, run.env, run.plan_workdir)
        finally:
            run.close()


@dataclass
class _Kept:
    """The closure of one trace, and what the report says about it."""

    closure: cl.Closure
    traced_real: set[str]
    adds: PackageAdditions | None
    elf_added: int
    floor: set[str]  # the trace and its ELF closure only, before any guard or include
    excluded: dict[str, str]  # path -> the --exclude pattern that dropped it
    keep: set[str]


def _closure(
    opts: MinifyOptions,
    image: Image,
    root: str,
    trace: Trace,
    argv: list[str],
    env_list: list[str],
    workdir: str,
) -> _Kept:
    """What to keep, computed on ROOT (the original's read-only view) from TRACE."""
    c = cl.Closure(root)
    env = dict(e.split("=", 1) for e in env_list if "=" in e)
    arch = image.config.data.get("architecture", "amd64")
    traced_real: set[str] = set()
    mounted = [m.target for m in opts.run.mounts]
    for p in sorted(trace.found):
        if any(p == t or p.startswith(t + "/") for t in mounted):
            continue  # the host's (-v) or a tmpfs: not the image's
        got = c.add(p, "traced")
        if got:
            traced_real.add(got)
    for p in trace.execs:
        for interp in cl.shebang(c, p)[:1]:
            c.add(interp, "interpreter")
    # What the config needs.
    cl.add_program(c, argv[0], env, "entrypoint")
    for p in ("/etc/passwd", "/etc/group"):
        c.add(p, "user")
    c.add(workdir, "workdir")
    for p in cl.RUNTIME_FILES:
        c.add(p, "runtime files")
    c.add("/tmp", "runtime files")
    # What the user asked for.
    for p in opts.include_paths:
        if c.add(p, "--include-path", whole=True) is None:
            raise UsageError(f"--include-path {p}: no such path in {opts.image}")
    for b in opts.include_bins:
        if not cl.add_program(c, b, env, "--include-bin"):
            raise UsageError(f"--include-bin {b}: not found in {opts.image}")
    if opts.include_shell:
        if not cl.add_program(c, "sh", env, "--include-shell"):
            raise UsageError(f"--include-shell: {opts.image} has no /bin/sh")
    adds = add_packages(c, traced_real) if opts.keep_packages else None
    before_elf = set(c.keep)
    resolver = cl.ElfResolver(c, env, arch)
    resolver.close_over(sorted(c.keep))
    if cl.uses_tls(c):
        for d in ("/etc/ssl/certs", "/usr/lib/ssl", "/etc/ssl/openssl.cnf"):
            if c.resolve(d):
                c.add_tree(d, "TLS certificates")
        resolver.close_over(sorted(c.keep))
    elf_added = len(set(c.keep) - before_elf)
    # The floor: what the trace and its ELF closure strictly need, before the guards
    # (keep-packages), the config's and runtime's files and the user's includes.
    floor = cl.Closure(root, elves=c.elves)
    for p in traced_real:
        floor.add(p, "traced")
    for p in trace.execs:
        for interp in cl.shebang(floor, p)[:1]:
            floor.add(interp, "interpreter")
    cl.ElfResolver(floor, env, arch).close_over(sorted(floor.keep))
    excluded: dict[str, str] = {}
    if opts.excludes:
        for p in list(c.keep):
            pat = cl.matches(p, opts.excludes)
            if pat:
                excluded[p] = pat
                del c.keep[p]
    return _Kept(c, traced_real, adds, elf_added, set(floor.keep), excluded, set(c.keep))


class _Speculation:
    """The closure, computed on a thread from the trace as it stood when the probes
    ended, while the traced app shuts down (its stop signal, up to a second for npm).
    It is used only if the complete trace names exactly the same paths and execs; a
    shutdown that touched anything new has the closure computed again."""

    def __init__(self, compute: Callable[[Trace, TracedRun], _Kept], cpu: int | None):
        self.compute = compute
        self.cpu = cpu
        self.trace: Trace | None = None
        self.kept: _Kept | None = None
        self.error: BaseException | None = None
        self.seconds = 0.0
        self.thread: threading.Thread | None = None

    def start(self, trace: Trace, run: TracedRun) -> None:
        self.trace = trace

        def work() -> None:
            avoid_cpu(self.cpu)
            t = time.monotonic()
            try:
                self.kept = self.compute(trace, run)
            except Exception as exc:  # raised again if the final trace is the same
                self.error = exc
            self.seconds = time.monotonic() - t

        self.thread = threading.Thread(target=work, daemon=True, name="minify-closure")
        self.thread.start()

    def join(self) -> None:
        if self.thread is not None:
            self.thread.join()

    def result(self, final: Trace) -> _Kept | None:
        """The speculative closure if FINAL is the trace it was computed from."""
        if self.thread is None or self.trace is None:
            return None
        self.thread.join()
        if final.found != self.trace.found or final.execs != self.trace.execs:
            return None
        if self.error is not None:
            raise self.error
        return self.kept


def minify(
    opts: MinifyOptions,
    store: Store,
    log: Callable[[str], None] = lambda s: None,
) -> MinifyReport:
    """Minify OPTS.image into a new image; see the module docstring for the steps."""
    from slimage.runtime import overlay

    overlay.require_root("slimage minify")
    _parse_continue(opts.continue_after)
    if opts.seccomp_profile:
        check_target(opts.seccomp_profile)
    if opts.probe_timeout <= 0:
        raise UsageError("--probe-timeout must be positive")
    times: dict[str, float] = {}
    t0 = time.monotonic()
    digest, image, ingested = _source(store, opts.image)
    try:
        return _minify(opts, store, digest, image, log, times, t0)
    finally:
        if ingested:
            store.remove_image(digest)


def _probes(opts: MinifyOptions, ports: list[int]) -> list[HttpProbe | ExecProbe]:
    return build_probes(
        ports,
        opts.http_probes,
        opts.execs,
        probe_file=opts.http_probe_file,
        default_get=opts.continue_after == "probes",
    )


def _minify(
    opts: MinifyOptions,
    store: Store,
    digest: str,
    image: Image,
    log: Callable[[str], None],
    times: dict[str, float],
    t0: float,
) -> MinifyReport:
    cfg = image.config.config
    ports = list(dict.fromkeys(exposed_ports(cfg) + list(opts.ports)))
    probes = _probes(opts, ports)
    log(f"minify: tracing {opts.image} ({len(probes)} probe(s))")
    if opts.http_crawl and opts.crawl_max < 1:
        raise UsageError("--crawl-max must be at least 1")
    work_name = f"closure-{os.getpid()}"
    # Both traced runs share one CPU with their tracer; minify's threads keep off it.
    cpu = tracing_cpu()
    with (
        _original_view(store, image, work_name) as (root, lowers),
        _scanning(root, cpu) as scanned,
    ):
        spec = _Speculation(
            lambda trace, run: _closure(
                opts, image, root, trace, run.argv, run.env, run.plan_workdir
            ),
            cpu,
        )
        try:
            first = _traced_run(
                store,
                image,
                digest,
                opts.run,
                probes,
                ports,
                opts,
                "original",
                log,
                opts.crawl_max if opts.http_crawl else 0,
                cpu=cpu,
                while_stopping=spec.start,
            )
        except BaseException:
            spec.join()  # it reads the view, which is unmounted next
            raise
        # The verification run repeats exactly what the first one sent, crawled pages too.
        probes = [*probes, *first.crawled]
        times["trace"] = round(time.monotonic() - t0, 2)

        t1 = time.monotonic()
        kept = spec.result(first.trace)
        if kept is None:
            kept = _closure(opts, image, root, first.trace, first.argv, first.env, first.workdir)
            times["closure"] = round(time.monotonic() - t1, 2)
        else:
            # Computed while the app stopped; only the wait for it is on the clock.
            times["closure"] = round(spec.seconds, 2)
            times["closure_wait"] = round(time.monotonic() - t1, 2)
        c, keep, excluded, adds = kept.closure, kept.keep, kept.excluded, kept.adds

        created_by = "slimage minify " + shlex.join(
            [opts.image]
            + [f"--http-probe={s}" for s in opts.http_probes]
            + [f"--exec={e}" for e in opts.execs]
        )
        comment = (
            f"kept {len(keep)} paths: traced {len(kept.traced_real)}, "
            f"ELF closure {kept.elf_added}"
            + (f", keep-packages {len(adds.packages)} package(s)" if adds and adds.packages else "")
        )
        # The verification run starts from the new layers' unpacked form (`StagedLayers`:
        # hardlinks into the original's, or the cache's from an earlier identical run):
        # it does not need their blobs. So the layers are written (tar, compression,
        # digests: isal and hashlib let go of the GIL) on a thread while it runs, and the
        # sizes are counted on another. The staging comes first, alone: it makes
        # thousands of small syscalls, and each one hands the GIL to a busy thread for
        # up to a switch interval (measured: 1.3 s alone, 2.3 s beside the writer). The
        # image is recorded only once both are done and the answers matched.
        t2 = time.monotonic()
        groups = layer_groups(image, lowers, keep)
        cancel = threading.Event()
        pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="minify")
        seccomp_count = 0
        second: _Run | None = None

        def verify_on(dirs: list[Path]) -> _Run:
            """The minified image run from DIRS (its layers, unpacked) with the same
            probes; VerificationError unless every answer is the original's."""
            verification = Verification(done=False, passed=True)
            second: _Run | None = None
            try:
                second = _traced_run(
                    store,
                    image,
                    digest,
                    opts.run,
                    probes,
                    ports,
                    opts,
                    "minified",
                    log,
                    lowers=dirs,
                    cpu=cpu,
                    passed=lambda res: (
                        not compare(first.results, res, ignore_body=opts.ignore_body)
                    ),
                )
            except (AppExitedError, ProbeTimeoutError) as exc:
                verification = Verification(done=True, passed=False, crashed=str(exc))
            if second is not None:
                differing = compare(first.results, second.results, ignore_body=opts.ignore_body)
                lacking = lacking_paths(second.trace, first.trace, c.exists, keep)
                # A new ENOENT of a path the original has fails the job too: the probes
                # may not show it yet, production will (a lazily loaded file).
                verification = Verification(True, not differing and not lacking, differing, lacking)
            if second is None or not verification.passed:
                # What the original used and the minified image no longer has.
                named = set(verification.lacking)
                for p in sorted(first.trace.found):
                    real = c.resolve(p)
                    if real and real in excluded and real not in named:
                        named.add(real)
                        verification.lacking.append(real)
                verification.lacking = [  # the user's own --exclude: say which one
                    f"{p} (excluded by --exclude {excluded[p]})" if p in excluded else p
                    for p in verification.lacking
                ]
                raise VerificationError(verification.message())
            return second

        with contextlib.ExitStack() as stack:
            staged = (
                stack.enter_context(StagedLayers(store, image, root, lowers, groups))
                if opts.verify
                else None
            )
            times["unpack"] = round(time.monotonic() - t2, 2)
            writing = pool.submit(
                _timed,
                cpu,
                lambda: write_image(
                    store,
                    image,
                    root,
                    lowers,
                    keep,
                    groups=groups,
                    created_by=created_by,
                    comment=comment,
                    cancel=cancel,
                ),
            )
            floor_paths = kept.floor - set(excluded)
            measured = pool.submit(_sizes, cpu, root, keep, floor_paths, scanned)
            try:
                if staged is not None:
                    t3 = time.monotonic()
                    log("minify: verifying the minified image with the same probes")
                    failed: Exception | None = None
                    try:
                        second = verify_on(staged.dirs)
                    except Exception as exc:
                        if not any(staged.reused):
                            raise
                        failed = exc  # judged once the layers are written (below)
                    times["verify"] = round(time.monotonic() - t3, 2)
                    written, times["write"] = writing.result()
                    if not staged.holds(written):
                        # An unpacked layer found through the index is not the layer just
                        # written (slimage changed since): verify again on fresh ones.
                        staged.restage()
                        second = verify_on(staged.dirs)
                        times["verify"] = round(time.monotonic() - t3, 2)
                    elif failed is not None:
                        raise failed
                    staged.keep(written)
                else:
                    written, times["write"] = writing.result()
                if opts.seccomp_profile:
                    seen = first.trace.syscalls | (second.trace.syscalls if second else set())
                    seccomp_count = write_profile(opts.seccomp_profile, seen)
                store.add_image(written.manifest_digest, tags=opts.tags or None)
            except BaseException:
                cancel.set()  # a layer still being written is dropped, never recorded
                raise
            finally:
                pool.shutdown(wait=True)  # the view stays mounted until both are done
            (before, after, largest), gone, floor_bytes = measured.result()
    times["total"] = round(time.monotonic() - t0, 2)
    reasons: dict[str, int] = {}
    for r in c.keep.values():
        reasons[r] = reasons.get(r, 0) + 1
    parts = ["the base", "the application"] if len(written.layers) == 2 else ["all kept files"]
    size_before = sum(_layer_size(store, d) for d in image.config.diff_ids)
    size_after = sum(info.size for info in written.layers)
    report = MinifyReport(
        image=opts.image,
        minified=written.manifest_digest,
        image_id=written.config_digest,
        tags=list(opts.tags),
        before=before,
        after=after,
        factor=round(size_before / size_after, 2) if size_after else 0.0,
        image_size_before=size_before,
        image_size_after=size_after,
        layers=[
            {"part": parts[i], "diff_id": info.diff_id, "size": info.size}
            for i, info in enumerate(written.layers)
        ],
        probes=first.results,
        verify_probes=second.results if second else [],
        verified="passed" if opts.verify else "off",
        largest_removed=largest,
        gone=gone,
        keep_packages=dict(adds.packages) if adds else {},
        keep_packages_bytes=adds.bytes_added if adds else 0,
        traced_paths=len(kept.traced_real),
        floor_bytes=floor_bytes,
        seccomp_profile=opts.seccomp_profile or "",
        seccomp_syscalls=seccomp_count,
        elf_closure_added=kept.elf_added,
        unresolved=sorted(set(c.unresolved)),
        reasons=reasons,
        app_exit=first.exit,
        seconds=times,
        kept_paths=sorted(keep),
        traced=sorted(first.trace.found),
    )
    return report


def _sizes(
    cpu: int | None,
    root: str,
    keep: set[str],
    floor: set[str],
    scanned: Future[list[ViewEntry]],
) -> tuple[tuple[FsStats, FsStats, list[tuple[str, int]]], list[str], int]:
    avoid_cpu(cpu)
    return measure(root, keep, scanned.result()), gone_tools(root, keep), size_of(root, floor)


def _scan(cpu: int | None, root: str, stop: threading.Event) -> list[ViewEntry]:
    avoid_cpu(cpu)
    return scan_view(root, stop)


@contextlib.contextmanager
def _scanning(root: str, cpu: int | None) -> Iterator[Future[list[ViewEntry]]]:
    """The walk of the original's view for the report's sizes (`scan_view`), on a thread
    off the tracing CPU while the traced app starts up. Stopped and joined when the block
    ends, before the view is unmounted."""
    stop = threading.Event()
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="minify-scan")
    try:
        yield pool.submit(_scan, cpu, root, stop)
    finally:
        stop.set()
        pool.shutdown(wait=True)


def _timed(cpu: int | None, fn: Callable[[], Written]) -> tuple[Written, float]:
    avoid_cpu(cpu)
    t = time.monotonic()
    out = fn()
    return out, round(time.monotonic() - t, 2)


def _layer_size(store: Store, diff_id: str) -> int:
    info = store.layer_info(diff_id)
    return info.size if info is not None else 0


def stderr_log(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()
