"""`minify(options)`: run and trace, compute the closure, write, verify, report.

The pipeline, and why it is in this order:

1. The original runs under strace with the probes (session, probe, trace). Nothing is
   written before the trace is complete, so an error here leaves nothing behind.
2. The closure is computed on a read-only view of the original's layers (closure,
   packages), never on the container's writable layer.
3. The image is written into the store without a tag (write), so that it can run.
4. It runs again, traced, with the same probes (verify). Only when the answers match is
   it tagged; on a mismatch, an error or an interrupt its record is removed again, so no
   half-made image is ever visible (its blobs go at the next gc).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from slimage.errors import SlimageError, UsageError
from slimage.image import Image
from slimage.minify import closure as cl
from slimage.minify.packages import keep_packages as add_packages
from slimage.minify.probe import (
    ExecProbe,
    HttpProbe,
    ProbeResult,
    crawl,
    exec_result,
    exposed_ports,
    parse_http_probe,
    parse_probe_file,
    run_http,
    wait_for_port,
)
from slimage.minify.report import MinifyReport, gone_tools, measure, size_of
from slimage.minify.seccomp import check_target, write_profile
from slimage.minify.session import AppExitedError, RunSettings, TracedRun
from slimage.minify.trace import Trace
from slimage.minify.verify import Verification, VerificationError, compare, lacking_paths
from slimage.minify.write import Written, unpack_from_view, write_image
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
) -> _Run:
    mode, wait = _parse_continue(opts.continue_after)
    with TracedRun(
        store, image, digest, settings, label=label, all_syscalls=bool(opts.seccomp_profile)
    ) as run:
        try:
            crawled: list[HttpProbe] = []
            results = _exercise(
                run, probes, ports, mode, wait, opts.probe_timeout, log, crawl_max, crawled
            )
            exited_early = not run.running()
            run.stop()
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
    http: list[HttpProbe] = []
    for spec in opts.http_probes:
        http += parse_http_probe(spec, ports)
    if opts.http_probe_file:
        http += parse_probe_file(opts.http_probe_file, ports)
    if not http and not opts.http_probes and opts.continue_after == "probes":
        http = [HttpProbe("GET", "/", p) for p in ports]
    execs: list[HttpProbe | ExecProbe] = []
    for cmd in opts.execs:
        argv = shlex.split(cmd)
        if not argv:
            raise UsageError("--exec needs a command")
        execs.append(ExecProbe(tuple(argv)))
    return [*http, *execs]


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
    )
    # The verification run repeats exactly what the first one sent, crawled pages too.
    probes = [*probes, *first.crawled]
    times["trace"] = round(time.monotonic() - t0, 2)

    t1 = time.monotonic()
    work_name = f"closure-{os.getpid()}"
    with _original_view(store, image, work_name) as (root, lowers):
        c = cl.Closure(root)
        env = dict(e.split("=", 1) for e in first.env if "=" in e)
        traced_real: set[str] = set()
        mounted = [m.target for m in opts.run.mounts]
        for p in sorted(first.trace.found):
            if any(p == t or p.startswith(t + "/") for t in mounted):
                continue  # the host's (-v) or a tmpfs: not the image's
            got = c.add(p, "traced")
            if got:
                traced_real.add(got)
        for p in first.trace.execs:
            for interp in cl.shebang(c, p)[:1]:
                c.add(interp, "interpreter")
        # What the config needs.
        cl.add_program(c, first.argv[0], env, "entrypoint")
        for p in ("/etc/passwd", "/etc/group"):
            c.add(p, "user")
        c.add(first.workdir, "workdir")
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
        resolver = cl.ElfResolver(c, env, image.config.data.get("architecture", "amd64"))
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
        for p in first.trace.execs:
            for interp in cl.shebang(floor, p)[:1]:
                floor.add(interp, "interpreter")
        cl.ElfResolver(floor, env, image.config.data.get("architecture", "amd64")).close_over(
            sorted(floor.keep)
        )
        excluded: dict[str, str] = {}
        if opts.excludes:
            for p in list(c.keep):
                pat = cl.matches(p, opts.excludes)
                if pat:
                    excluded[p] = pat
                    del c.keep[p]
        keep = set(c.keep)
        times["closure"] = round(time.monotonic() - t1, 2)

        t2 = time.monotonic()
        created_by = "slimage minify " + shlex.join(
            [opts.image]
            + [f"--http-probe={s}" for s in opts.http_probes]
            + [f"--exec={e}" for e in opts.execs]
        )
        comment = f"kept {len(keep)} paths: traced {len(traced_real)}, ELF closure {elf_added}" + (
            f", keep-packages {len(adds.packages)} package(s)" if adds and adds.packages else ""
        )
        written = write_image(
            store, image, root, lowers, sorted(keep), created_by=created_by, comment=comment
        )
        existed = written.manifest_digest in store.images()
        times["write"] = round(time.monotonic() - t2, 2)
        if opts.verify:
            # The verification run stacks the new layers: give the layer cache their
            # unpacked form now, made of hardlinks into the original's, rather than have
            # it decompress and extract the blobs just written.
            t2 = time.monotonic()
            _unpack_written(store, written, root, lowers)
            times["unpack"] = round(time.monotonic() - t2, 2)
        # The sizes are counted while the verification run waits on the app.
        pool = ThreadPoolExecutor(max_workers=1)
        floor_paths = set(floor.keep) - set(excluded)
        measured = pool.submit(
            lambda: (measure(root, keep), gone_tools(root, keep), size_of(root, floor_paths))
        )
        pool.shutdown(wait=False)
        verification = Verification(done=False, passed=True)
        seccomp_count = 0
        second: _Run | None = None
        try:
            store.add_image(written.manifest_digest)
            if opts.verify:
                t3 = time.monotonic()
                from slimage.store.images import open_image

                mini = open_image(store, written.manifest_digest)
                log("minify: verifying the minified image with the same probes")
                try:
                    second = _traced_run(
                        store,
                        mini,
                        written.manifest_digest,
                        opts.run,
                        probes,
                        ports,
                        opts,
                        "minified",
                        log,
                    )
                except (AppExitedError, ProbeTimeoutError) as exc:
                    verification = Verification(done=True, passed=False, crashed=str(exc))
                if second is not None:
                    differing = compare(first.results, second.results, ignore_body=opts.ignore_body)
                    lacking = lacking_paths(second.trace, first.trace, c.exists, keep)
                    verification = Verification(True, not differing, differing, lacking)
                if not verification.passed:
                    # What the original used and the minified image no longer has.
                    for p in sorted(first.trace.found):
                        real = c.resolve(p)
                        if real and real in excluded and real not in verification.lacking:
                            verification.lacking.append(
                                f"{real} (excluded by --exclude {excluded[real]})"
                            )
                    raise VerificationError(verification.message())
                times["verify"] = round(time.monotonic() - t3, 2)
            if opts.seccomp_profile:
                seen = first.trace.syscalls | (second.trace.syscalls if second else set())
                seccomp_count = write_profile(opts.seccomp_profile, seen)
            if opts.tags:
                store.add_image(written.manifest_digest, tags=opts.tags)
        except BaseException:
            if not existed:
                store.remove_image(written.manifest_digest)
            raise
        finally:
            # The view stays mounted until the count is done.
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
        traced_paths=len(traced_real),
        floor_bytes=floor_bytes,
        seccomp_profile=opts.seccomp_profile or "",
        seccomp_syscalls=seccomp_count,
        elf_closure_added=elf_added,
        unresolved=sorted(set(c.unresolved)),
        reasons=reasons,
        app_exit=first.exit,
        seconds=times,
        kept_paths=sorted(keep),
        traced=sorted(first.trace.found),
    )
    return report


def _unpack_written(store: Store, written: Written, root: str, lowers: list[Path]) -> None:
    from slimage.runtime.layerdirs import LayerDirs

    cache = LayerDirs(store)
    for info, names in zip(written.layers, written.groups, strict=True):
        with cache.assemble(info.diff_id) as staging:
            if staging is not None:
                unpack_from_view(staging, root, lowers, names, written.epoch)


def _layer_size(store: Store, diff_id: str) -> int:
    info = store.layer_info(diff_id)
    return info.size if info is not None else 0


def stderr_log(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()
