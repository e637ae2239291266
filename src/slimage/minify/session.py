"""One traced run of an image: an overlay rootfs, runc, and strace from the runtime's start.

`slimage run` starts a container in one `runc run`; here we need the tracer in place
before the program's first instruction, so the run is split the way runc allows:
`strace -f -- runc create` (the tracer follows runc into the container's init, which
then waits on the exec fifo, inside the container's namespaces and pivoted root), and
only then `runc start`. strace starts runc itself, rather than attaching to its init with
-p, because only then does `--seccomp-bpf` work: the app's syscalls that are not file or
process calls never stop it (see `trace.strace_flags`). `--exec` commands are traced the
same way, with strace running `runc exec`.

Everything a run creates (mount, runc container, strace processes, state dir) is undone by
`close()`, which `with` guarantees on success, error, Ctrl-C and SIGTERM (the CLI turns
SIGTERM into KeyboardInterrupt). A crash that skips even that leaves a store pin and a
state dir named `minify-*`, which the next run sweeps.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from slimage.errors import RuntimeToolError, SlimageError
from slimage.image import Image
from slimage.minify.trace import StraceParser, Trace, parse_file, strace_flags
from slimage.runtime import overlay
from slimage.runtime import spec as ocispec
from slimage.runtime.ocirun import OciRuntime
from slimage.runtime.process import ProcessFlags, check_command, merge_env, oci_mounts, plan_process
from slimage.runtime.users import resolve_user
from slimage.store.store import Store


class TracerError(SlimageError):
    """strace is missing or could not attach: never produce an untraced image."""


class AppExitedError(SlimageError):
    """The application stopped while it was being probed."""


@dataclass
class RunSettings(ProcessFlags):
    """The `docker run` flags minify shares with `slimage run` (`ProcessFlags`: env,
    entrypoint, user, workdir, mounts, parsed by the same CLI helper), plus the
    command's arguments and the OCI runtime."""

    args: list[str] = field(default_factory=list)
    runtime: str | None = None


def strace_path() -> str:
    """The tracer binary: $SLIMAGE_STRACE (a path), else strace on PATH."""
    path = os.environ.get("SLIMAGE_STRACE") or shutil.which("strace") or ""
    if not path and os.path.exists("/usr/bin/strace"):
        path = "/usr/bin/strace"
    if not path or not os.access(path, os.X_OK):
        raise TracerError(
            "strace is not installed (apt-get install strace); minify will not write an "
            "image it could not trace"
        )
    return path


def sweep_stale(base: Path, store: Store) -> None:
    """Remove what a killed minify left: its runc containers, mounts and state dirs."""
    if not base.is_dir():
        return
    for d in base.iterdir():
        info = d / "session.json"
        try:
            data = json.loads(info.read_text())
            pid = int(data.get("owner", 0))
        except (OSError, ValueError):
            data, pid = {}, 0
        if pid and _alive(pid):
            continue
        cid = data.get("id", "")
        if cid:
            with contextlib.suppress(SlimageError, OSError):
                rt = OciRuntime(data.get("runtime") or None)
                rt.kill(cid, "KILL", all_procs=True)
                rt.delete(cid, force=True)
            store.unpin(f"minify-{cid}")
        overlay.unmount(d / "rootfs")
        overlay.unmount(d / "original")
        if not overlay.is_mounted(d / "rootfs") and not overlay.is_mounted(d / "original"):
            shutil.rmtree(d, ignore_errors=True)


class _Follower:
    """One trace file, parsed as strace appends to it: only whole lines, from where the
    last read stopped (strace writes each line as the call completes)."""

    def __init__(self, path: Path, cwd: str, *, root_prefix: str, runtime_paths: tuple[str, ...]):
        self.path = path
        self.parser = StraceParser(cwd, root_prefix=root_prefix, runtime_paths=runtime_paths)
        self.offset = 0
        self.rest = b""

    def read(self, final: bool = False) -> None:
        """FINAL: the tracer has exited, so a last line without its newline is whole."""
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            return
        self.offset += len(data)
        lines = (self.rest + data).split(b"\n")
        self.rest = b"" if final else lines.pop()
        for line in lines:
            self.parser.feed(line.decode("utf-8", "surrogateescape"))


def tracing_cpu() -> int | None:
    """The one CPU a traced run's tracer and tracee share (None: leave them be).

    With `--seccomp-bpf`, every file call the app makes stops it and wakes strace, twice
    (entry and exit), and the app waits until strace lets it go on. When the two run on
    different CPUs, each hand-off is a wake-up of the other CPU, often idle and halted:
    an inter-processor interrupt, and in a virtual machine an exit to the host. Measured
    here (2 vCPUs), npm's start under strace took 2.4 s unpinned and 1.4 s with both on
    one CPU (untraced: 0.9 s). The cost: the app sees one CPU in its affinity mask
    (`nproc`, a worker count from it), in both traced runs only; the image is unchanged.

    The CPU is the one this thread runs on: the scheduler just chose it, so it is
    likely not the busier one. SLIMAGE_MINIFY_PIN=0 turns pinning off."""
    if os.environ.get("SLIMAGE_MINIFY_PIN", "1") == "0":
        return None
    try:
        allowed = os.sched_getaffinity(0)
        with open("/proc/thread-self/stat") as fh:
            current = int(fh.read().rsplit(")", 1)[1].split()[36])  # field 39: processor
    except (OSError, ValueError, IndexError):
        return None
    if len(allowed) < 2:
        return None
    return current if current in allowed else max(allowed)


def avoid_cpu(cpu: int | None) -> None:
    """Keep the calling thread, and the threads it starts from now on, off CPU (a traced
    run's): minify's own work beside a traced run (parsing its trace, writing the
    layers, counting sizes) would otherwise take turns with the app and its tracer
    there, and slow the run it waits for."""
    if cpu is None:
        return
    with contextlib.suppress(OSError):
        others = os.sched_getaffinity(0) - {cpu}
        if others:
            os.sched_setaffinity(0, others)


@contextlib.contextmanager
def _on_cpu(cpu: int | None) -> Iterator[None]:
    """Run the block (a Popen: the child inherits the mask) with this thread pinned to CPU;
    the affinity is per thread, so nothing else in the process is affected."""
    old = os.sched_getaffinity(0)
    pinned = False
    if cpu is not None:
        with contextlib.suppress(OSError):  # the CPU went offline: run unpinned
            os.sched_setaffinity(0, {cpu})
            pinned = True
    try:
        yield
    finally:
        if pinned:
            os.sched_setaffinity(0, old)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


class TracedRun:
    """A container of IMAGE (already in STORE as MANIFEST_DIGEST) under strace."""

    def __init__(
        self,
        store: Store,
        image: Image,
        manifest_digest: str,
        settings: RunSettings,
        *,
        label: str = "run",
        all_syscalls: bool = False,
        lowers: list[Path] | None = None,
        cpu: int | None | Literal["auto"] = "auto",
    ):
        self.store = store
        self.image = image
        # The rootfs's layers, bottom first, when they are not IMAGE's own (verification
        # stacks the minified layers before their blobs are written); IMAGE then gives
        # the config only.
        self.lowers = lowers
        self.manifest_digest = manifest_digest
        self.settings = settings
        self.label = label
        self.base = store.root / "minify-work"
        self.id = f"slimage-minify-{secrets.token_hex(8)}"
        self.dir = self.base / self.id
        self.rootfs = self.dir / "rootfs"
        self.runtime = OciRuntime(settings.runtime)
        self.strace = strace_path()
        # Every syscall stops the app only when its names are wanted (--seccomp-profile).
        self.all_syscalls = all_syscalls
        self.flags = strace_flags(all_syscalls=all_syscalls)
        # The CPU the tracer and the app share (`tracing_cpu`); None: not pinned.
        self.cpu = tracing_cpu() if cpu == "auto" else cpu
        self.tracers: list[subprocess.Popen[bytes]] = []
        self.trace_files: list[Path] = []
        # Each trace file is parsed as strace writes it, on a thread, so the trace is
        # ready when the run stops, and a snapshot of it while the app still runs.
        self._followers: dict[Path, _Follower] = {}
        self._follow_lock = threading.Lock()
        self._follow_stop = threading.Event()
        self._follow_thread: threading.Thread | None = None
        self._follow_error: Exception | None = None
        self.pid = 0
        self.created = False
        self.plan_workdir = "/"
        self.env: list[str] = []
        self.user = ""
        self.argv: list[str] = []
        self.log = self.dir / "output.log"
        self.stop_signal = (image.config.config.get("StopSignal") or "SIGTERM").upper()

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> TracedRun:
        try:
            self._prepare()
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _prepare(self) -> None:
        from slimage.fs.rootpath import mkdir_p
        from slimage.runtime.layerdirs import LayerDirs

        overlay.require_root("slimage minify")
        sweep_stale(self.base, self.store)
        s = self.settings
        cfg = self.image.config.config
        plan = plan_process(
            cfg,
            args=s.args,
            entrypoint=s.entrypoint,
            env=s.env,
            user=s.user,
            workdir=s.workdir,
            hostname=self.id[-12:],
        )
        for sub in ("upper", "work", "rootfs", "bundle"):
            (self.dir / sub).mkdir(parents=True)
        (self.dir / "session.json").write_text(
            json.dumps({"id": self.id, "owner": os.getpid(), "runtime": self.runtime.path})
        )
        self.store.pin(f"minify-{self.id}", self.manifest_digest)
        lowers = (
            self.lowers
            if self.lowers is not None
            else LayerDirs(self.store).ensure_all(self.image.layers)
        )
        overlay.mount_overlay(self.rootfs, lowers, self.dir / "upper", self.dir / "work")
        mkdir_p(str(self.rootfs), plan.workdir)
        check_command(self.rootfs, plan.args, plan.env, self.id)
        user = resolve_user(self.rootfs, plan.user)
        env = list(plan.env)
        if not any(e.startswith("HOME=") for e in env):
            env.append(f"HOME={user.home}")
        self.env, self.user, self.plan_workdir, self.argv = env, plan.user, plan.workdir, plan.args
        self._uid, self._gid, self._gids = user.uid, user.gid, user.additional_gids
        proc = ocispec.ProcessSpec(
            plan.args, env, plan.workdir, user.uid, user.gid, user.additional_gids
        )
        mounts = [
            ocispec.bind("/etc/resolv.conf", "/etc/resolv.conf", readonly=True),
            ocispec.bind("/etc/hosts", "/etc/hosts", readonly=True),
            *oci_mounts(s.mounts),
        ]
        spec = ocispec.make_spec(
            str(self.rootfs), proc, network="host", hostname=self.id[-12:], mounts=mounts
        )
        (self.dir / "bundle" / "config.json").write_text(json.dumps(spec))

    def _start(self) -> None:
        """`strace -f -- runc create`, then `runc start`: the tracer follows runc into the
        container's init, which waits on the exec fifo until `start`, so the app is traced
        from its first instruction. runc's own calls come before the app's execve and
        are dropped by the parser."""
        pid_file = self.dir / "init.pid"
        trace_file = self.dir / "trace-main.txt"
        self.created = True  # from here on close() deletes it, whatever create did
        with open(self.log, "ab") as log, _on_cpu(self.cpu):
            p = subprocess.Popen(
                [
                    self.strace,
                    *self.flags,
                    "-o",
                    str(trace_file),
                    "--",
                    *self.runtime.command(
                        "create",
                        "--bundle",
                        str(self.dir / "bundle"),
                        "--pid-file",
                        str(pid_file),
                        self.id,
                    ),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        self.tracers.append(p)
        self.trace_files.append(trace_file)
        deadline = time.monotonic() + 60
        while not pid_file.exists():
            if p.poll() is not None or time.monotonic() > deadline:
                traced = trace_file.exists() and trace_file.stat().st_size > 0
                if not traced:
                    raise TracerError(
                        f"strace could not attach to the container's process: "
                        f"{self.tail(1) or 'exit ' + str(p.returncode)}"
                    )
                raise RuntimeToolError(
                    f"could not create the {self.label} container: {self.tail(1)}"
                )
            time.sleep(0.01)
        self.pid = int(pid_file.read_text().strip())
        self._follow_thread = threading.Thread(
            target=self._follow, daemon=True, name=f"trace-{self.label}"
        )
        self._follow_thread.start()
        try:
            self.runtime.start(self.id)
        except RuntimeToolError as exc:
            raise RuntimeToolError(f"{self.label} run: {exc}") from None
        self.started = time.monotonic()

    # ------------------------------------------------------------------ state
    def running(self) -> bool:
        return self.pid > 0 and _alive(self.pid)

    def exit_status(self) -> str:
        """The app's exit code (or signal), from the tracer, once it has ended."""
        for p in self.tracers[:1]:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=5)
        if not self.trace_files:
            return "?"
        try:
            tr = parse_file(str(self.trace_files[0]), self.plan_workdir)
        except OSError:
            return "?"
        return tr.exit_codes.get(self.pid, "?")

    def tail(self, n: int = 10) -> str:
        try:
            lines = self.log.read_text(errors="replace").rstrip().splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    # ------------------------------------------------------------------ exec
    def exec(self, argv: list[str], timeout: float) -> tuple[int, bytes, float]:
        """Run ARGV in the container under strace; (exit code, output, seconds)."""
        n = len(self.trace_files)
        trace_file = self.dir / f"trace-exec-{n}.txt"
        process: dict[str, Any] = {
            "terminal": False,
            "user": {
                "uid": self._uid,
                "gid": self._gid,
                **({"additionalGids": self._gids} if self._gids else {}),
            },
            "args": argv,
            "env": merge_env(self.env, []),
            "cwd": self.plan_workdir,
            "capabilities": {
                "bounding": ocispec.DEFAULT_CAPS,
                "effective": ocispec.DEFAULT_CAPS if self._uid == 0 else [],
                "permitted": ocispec.DEFAULT_CAPS if self._uid == 0 else [],
            },
        }
        pfile = self.dir / f"exec-{n}.json"
        pfile.write_text(json.dumps(process))
        self.trace_files.append(trace_file)
        t0 = time.monotonic()
        with _on_cpu(self.cpu):
            p = subprocess.Popen(
                [
                    self.strace,
                    *self.flags,
                    "-o",
                    str(trace_file),
                    *self.runtime.command("exec", "--process", str(pfile), self.id),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.tracers.append(p)
        try:
            out, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, _ = p.communicate()
            return 124, out, time.monotonic() - t0
        return p.returncode, out, time.monotonic() - t0

    # ------------------------------------------------------------------ stop
    def stop(self, grace: float = 1.0) -> None:
        """StopSignal, then SIGKILL after GRACE. Short: the trace is complete once the
        probes are, and an app that is PID 1 often ignores SIGTERM (node, npm). GRACE 0
        kills at once (the caller needs nothing from the app's shutdown)."""
        if not self.created:
            return
        if self.running() and grace > 0:
            self.runtime.kill(self.id, self.stop_signal.removeprefix("SIG") or "TERM")
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and self.running():
                time.sleep(0.05)
        if self.running():
            self.runtime.kill(self.id, "KILL", all_procs=True)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and self.running():
                time.sleep(0.05)
        for p in self.tracers:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(OSError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait()

    def _follow(self) -> None:
        avoid_cpu(self.cpu)
        try:
            while not self._follow_stop.wait(0.05):
                with self._follow_lock:
                    self._catch_up()
        except Exception as exc:  # raised by `traces`: a trace is never silently cut
            self._follow_error = exc

    def _catch_up(self, final: bool = False) -> None:
        """Parse what strace wrote since the last call (caller holds the lock)."""
        rt = (self.runtime.path, os.path.realpath(self.runtime.path))
        for f in list(self.trace_files):
            fol = self._followers.get(f)
            if fol is None:
                fol = self._followers[f] = _Follower(
                    f, self.plan_workdir, root_prefix=str(self.rootfs), runtime_paths=rt
                )
            fol.read(final)

    def snapshot(self) -> Trace:
        """What the tracers saw so far (the app may still be running)."""
        with self._follow_lock:
            self._catch_up()
            return self._merged()

    def traces(self) -> Trace:
        """Everything all tracers saw (call after `stop`)."""
        self._follow_stop.set()
        if self._follow_thread is not None:
            self._follow_thread.join()
        if self._follow_error is not None:
            raise self._follow_error
        with self._follow_lock:
            self._catch_up(final=True)
            return self._merged()

    def _merged(self) -> Trace:
        total = Trace()
        for f in self.trace_files:
            fol = self._followers.get(f)
            if fol is not None:
                total.merge(fol.parser.trace)
        return total

    def close(self) -> None:
        """Stop and remove everything this run made (traces too: read them first); safe to
        call twice."""
        try:
            self._follow_stop.set()
            if self._follow_thread is not None:
                self._follow_thread.join()  # it reads the trace files removed below
            self.stop()
        finally:
            for p in self.tracers:
                if p.poll() is None:
                    with contextlib.suppress(OSError):
                        os.killpg(p.pid, signal.SIGKILL)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        p.wait(timeout=5)
            if self.created:
                self.runtime.delete(self.id, force=True)
            overlay.unmount(self.rootfs)
            self.store.unpin(f"minify-{self.id}")
            if not overlay.is_mounted(self.rootfs):
                shutil.rmtree(self.dir, ignore_errors=True)
