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
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from slimage.errors import RuntimeToolError, SlimageError
from slimage.image import Image
from slimage.minify.trace import Trace, parse_file, strace_flags
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
    ):
        self.store = store
        self.image = image
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
        self.tracers: list[subprocess.Popen[bytes]] = []
        self.trace_files: list[Path] = []
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
        lowers = LayerDirs(self.store).ensure_all(self.image.layers)
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
        with open(self.log, "ab") as log:
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
        probes are, and an app that is PID 1 often ignores SIGTERM (node, npm)."""
        if not self.created:
            return
        if self.running():
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

    def traces(self) -> Trace:
        """Everything all tracers saw (call after `stop`)."""
        total = Trace()
        rt = (self.runtime.path, os.path.realpath(self.runtime.path))
        for f in self.trace_files:
            if f.exists():
                total.merge(
                    parse_file(
                        str(f), self.plan_workdir, root_prefix=str(self.rootfs), runtime_paths=rt
                    )
                )
        return total

    def close(self) -> None:
        """Stop and remove everything this run made (traces too: read them first); safe to
        call twice."""
        try:
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
