"""Containers on runc (or crun): run, exec, ps, logs, stop, rm.

State lives under the store root (`containers/<id>/`): the record (image, command,
names), the bundle, the overlay rootfs (upper/work/rootfs) and the log of a detached
container. The OCI runtime keeps its own state in its default root, so `runc list` shows
slimage's containers too.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from slimage.errors import NotFoundError, RuntimeToolError, SlimageError, UsageError
from slimage.runtime import overlay, owner
from slimage.runtime import spec as ocispec
from slimage.runtime.ocirun import OciRuntime
from slimage.runtime.process import MountSpec, check_command, oci_mounts, plan_process
from slimage.runtime.users import resolve_user
from slimage.store.store import Store

_ADJ = ["brave", "calm", "eager", "fond", "keen", "lucid", "quirky", "sharp", "tender", "witty"]
_NOUN = ["hopper", "lovelace", "turing", "curie", "knuth", "ritchie", "thompson", "hamilton"]


@dataclass
class ContainerRecord:
    id: str
    name: str
    image: str
    image_id: str
    command: list[str]
    created: float
    runtime: str
    network: str = "host"
    detached: bool = False
    auto_remove: bool = False
    stop_signal: str = "SIGTERM"
    env: list[str] = field(default_factory=list)
    user: str = ""
    workdir: str = "/"
    exit_code: int | None = None
    # `<pid>.<start>` of the process that must finish this container's life (the `run`
    # itself, or the watcher of a detached --rm); "" once nobody has to. A dead owner's
    # --rm container is removed by the next command that looks (see `reap_orphans`).
    owner: str = ""


@dataclass
class RunOptions:
    image: str
    args: list[str] = field(default_factory=list)
    name: str | None = None
    detach: bool = False
    rm: bool = False
    env: list[str] = field(default_factory=list)
    workdir: str | None = None
    user: str | None = None
    entrypoint: str | None = None
    mounts: list[MountSpec] = field(default_factory=list)  # -v, --mount, --tmpfs
    network: str = "host"
    tty: bool = False
    interactive: bool = False
    runtime: str | None = None
    # Where a foreground container's output goes (besides its log); None: the log only.
    # The library writes nowhere else: the CLI passes its own stdout and stderr.
    stdout: BinaryIO | None = None
    stderr: BinaryIO | None = None


class Containers:
    """The containers of one store. Creating it reaps what dead processes left behind, so
    every runtime command (run, ps, rm, ...) starts from a clean state."""

    def __init__(self, store: Store, *, reap: bool = True):
        self.store = store
        self.dir = self.store.private_dir("containers")  # rootfs mounts: 0700
        if reap:
            self.reap_orphans()

    # ------------------------------------------------------------------ records
    def _records(self) -> list[ContainerRecord]:
        out = []
        for d in sorted(self.dir.iterdir()):
            with contextlib.suppress(OSError, ValueError, TypeError):
                out.append(ContainerRecord(**json.loads((d / "record.json").read_text())))
        return out

    def _save(self, rec: ContainerRecord) -> None:
        path = self.dir / rec.id / "record.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(rec)))
        os.replace(tmp, path)

    def get(self, ref: str) -> ContainerRecord:
        recs = self._records()
        for r in recs:
            if r.name == ref or r.id == ref:
                return r
        hits = [r for r in recs if r.id.startswith(ref)] if len(ref) >= 3 else []
        if len(hits) == 1:
            return hits[0]
        raise NotFoundError(f"No such container: {ref}")

    def status(self, rec: ContainerRecord) -> str:
        st = OciRuntime(rec.runtime).state(rec.id)
        if st is None:
            return "exited"
        return str(st.get("status", "unknown"))

    # ------------------------------------------------------------------ run
    def run(self, opts: RunOptions) -> tuple[ContainerRecord, int]:
        from slimage.store.images import open_image

        overlay.require_root("slimage run")
        runtime = OciRuntime(opts.runtime)
        ref = opts.image
        if ref.split(":", 1)[0] in ("docker-daemon", "docker-archive", "oci", "oci-archive"):
            # An image from elsewhere (e.g. one Docker built) is brought into the store first.
            from slimage.store.images import ingest
            from slimage.transports.sources import open_source

            ref = ingest(self.store, open_source(ref, self.store)).manifest_digest
        manifest_digest = self.store.resolve(ref)
        image = open_image(self.store, manifest_digest)
        names = {r.name for r in self._records()}
        name = opts.name or f"{secrets.choice(_ADJ)}_{secrets.choice(_NOUN)}"
        if opts.name and opts.name in names:
            raise UsageError(f'Conflict. The container name "/{opts.name}" is already in use')
        while name in names:
            name = f"{secrets.choice(_ADJ)}_{secrets.choice(_NOUN)}{secrets.randbelow(100)}"
        cid = secrets.token_hex(32)
        cfg = image.config.config
        plan = plan_process(
            cfg,
            args=opts.args,
            entrypoint=opts.entrypoint,
            env=opts.env,
            user=opts.user,
            workdir=opts.workdir,
            hostname=cid[:12],
        )
        cdir = self.dir / cid
        rec = ContainerRecord(
            id=cid,
            name=name,
            image=opts.image,
            image_id=image.id,
            command=plan.args,
            created=time.time(),
            runtime=runtime.path,
            network=opts.network,
            detached=opts.detach,
            auto_remove=opts.rm,
            stop_signal=cfg.get("StopSignal") or "SIGTERM",
            env=plan.env,
            user=plan.user,
            workdir=plan.workdir,
            owner=owner.token(),
        )
        # From the first mkdir on, any exit (an error, Ctrl-C, or SIGTERM/SIGHUP that the
        # CLI turns into KeyboardInterrupt) goes through `_abandon`: nothing is left
        # mounted, running or on disk unless the container was started without --rm.
        started = False
        try:
            cdir.mkdir(parents=True)
            self._save(rec)  # first: a record names its owner, so a reaper can attribute it
            for sub in ("upper", "work", "rootfs", "bundle"):
                (cdir / sub).mkdir()
            self.store.pin(f"container-{cid}", manifest_digest)  # gc keeps what we mount
            self._prepare(rec, image, plan, opts)
            if opts.detach:
                started = True
                return self._start_detached(rec, runtime, opts), 0
            started = True
            rc = self._run_foreground(rec, runtime, opts)
            rec.exit_code = rc
            if opts.rm:
                self._teardown(rec)
            else:
                rec.owner = ""
                self._save(rec)
        except BaseException:
            self._abandon(rec, runtime, started=started)
            raise
        return rec, rc

    def _prepare(self, rec: ContainerRecord, image: Any, plan: Any, opts: RunOptions) -> None:
        """Mount the rootfs and write the bundle's config.json."""
        from slimage.fs.rootpath import mkdir_p
        from slimage.runtime.layerdirs import LayerDirs

        cdir = self.dir / rec.id
        rootfs = cdir / "rootfs"
        lowers = LayerDirs(self.store).ensure_all(image.layers)
        overlay.mount_overlay(rootfs, lowers, cdir / "upper", cdir / "work")
        mkdir_p(str(rootfs), plan.workdir)
        check_command(rootfs, plan.args, plan.env, rec.name)
        user = resolve_user(rootfs, plan.user)
        env = list(plan.env)
        if not any(e.startswith("HOME=") for e in env):
            env.append(f"HOME={user.home}")
        proc = ocispec.ProcessSpec(
            plan.args,
            env,
            plan.workdir,
            user.uid,
            user.gid,
            user.additional_gids,
            terminal=opts.tty,
        )
        mounts = [
            ocispec.bind("/etc/resolv.conf", "/etc/resolv.conf", readonly=True),
            ocispec.bind("/etc/hosts", "/etc/hosts", readonly=True),
            *oci_mounts(opts.mounts),
        ]
        spec = ocispec.make_spec(
            str(rootfs), proc, network=opts.network, hostname=rec.id[:12], mounts=mounts
        )
        (cdir / "bundle" / "config.json").write_text(json.dumps(spec))

    def _start_detached(
        self, rec: ContainerRecord, runtime: OciRuntime, opts: RunOptions
    ) -> ContainerRecord:
        cdir = self.dir / rec.id
        with open(cdir / "container.log", "ab") as log:
            p = runtime.run(rec.id, str(cdir / "bundle"), stdout=log, stderr=log, detach=True)
            rc = p.wait()
        if rc != 0:
            err = (cdir / "container.log").read_text(errors="replace").strip().splitlines()[-1:]
            raise RuntimeToolError(f"could not start container: {' '.join(err)}")
        if opts.rm:
            watcher = subprocess.Popen(
                [sys.executable, "-m", "slimage.runtime.reaper", str(self.store.root), rec.id],
                start_new_session=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            rec.owner = owner.token(watcher.pid)
        else:
            rec.owner = ""
        self._save(rec)
        return rec

    def _run_foreground(self, rec: ContainerRecord, runtime: OciRuntime, opts: RunOptions) -> int:
        cdir = self.dir / rec.id
        stdin = None if (opts.tty or opts.interactive) else subprocess.DEVNULL
        if opts.tty:
            p = runtime.run(rec.id, str(cdir / "bundle"), stdin=stdin)
            try:
                return p.wait()
            except BaseException:
                _kill_and_reap(runtime, rec.id, p)
                raise
        # Without a terminal, output is also kept for `logs` (as Docker's log driver).
        with open(cdir / "container.log", "ab") as log:
            p = runtime.run(
                rec.id,
                str(cdir / "bundle"),
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            lock = threading.Lock()
            pumps = [
                threading.Thread(target=_pump, args=(src, dst, log, lock), daemon=True)
                for src, dst in ((p.stdout, opts.stdout), (p.stderr, opts.stderr))
            ]
            for t in pumps:
                t.start()
            try:
                rc = p.wait()
            except BaseException:
                _kill_and_reap(runtime, rec.id, p)
                raise
            finally:
                for t in pumps:
                    t.join(timeout=5)
        return rc

    def _abandon(self, rec: ContainerRecord, runtime: OciRuntime, *, started: bool) -> None:
        """Undo an interrupted or failed `run`: a container that never started, or one
        started with --rm, goes entirely; a started one without --rm stays, exited, as
        `docker run` leaves it."""
        with contextlib.suppress(Exception):
            if not started or rec.auto_remove or rec.detached:
                self._teardown(rec)
                return
            runtime.kill(rec.id, "KILL", all_procs=True)
            runtime.delete(rec.id, force=True)
            rec.owner = ""
            self._save(rec)

    # ------------------------------------------------------------------ exec
    def exec(
        self,
        ref: str,
        args: list[str],
        *,
        env: list[str] | None = None,
        user: str | None = None,
        workdir: str | None = None,
        tty: bool = False,
        detach: bool = False,
    ) -> int:
        from slimage.runtime.process import merge_env

        rec = self.get(ref)
        if self.status(rec) != "running":
            raise SlimageError(f"Container {rec.id[:12]} is not running")
        rootfs = self.dir / rec.id / "rootfs"
        envs = merge_env(rec.env, env or [])
        check_command(rootfs, args, envs, rec.name)
        u = resolve_user(rootfs, user if user is not None else rec.user)
        if not any(e.startswith("HOME=") for e in envs):
            envs.append(f"HOME={u.home}")
        process = {
            "terminal": tty,
            "user": {
                "uid": u.uid,
                "gid": u.gid,
                **({"additionalGids": u.additional_gids} if u.additional_gids else {}),
            },
            "args": args,
            "env": envs,
            "cwd": workdir or rec.workdir,
            "capabilities": {
                "bounding": ocispec.DEFAULT_CAPS,
                "effective": ocispec.DEFAULT_CAPS if u.uid == 0 else [],
                "permitted": ocispec.DEFAULT_CAPS if u.uid == 0 else [],
            },
        }
        return OciRuntime(rec.runtime).exec(rec.id, process, tty=tty, detach=detach)

    # ------------------------------------------------------------------ ps / logs
    def ps(self, all_: bool = False) -> list[dict[str, Any]]:
        rows = []
        for rec in self._records():
            status = self.status(rec)
            if not all_ and status != "running":
                continue
            rows.append({"record": rec, "status": status})
        rows.sort(key=lambda r: -float(r["record"].created))  # type: ignore[attr-defined]
        return rows

    def log_path(self, ref: str) -> Path:
        rec = self.get(ref)
        return self.dir / rec.id / "container.log"

    # ------------------------------------------------------------------ stop / rm
    def stop(self, ref: str, timeout: float = 10.0) -> ContainerRecord:
        rec = self.get(ref)
        rt = OciRuntime(rec.runtime)
        if self.status(rec) != "running":
            return rec
        sig = rec.stop_signal.upper().removeprefix("SIG") or "TERM"
        rt.kill(rec.id, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.status(rec) != "running":
                break
            time.sleep(0.1)
        else:
            rt.kill(rec.id, "KILL", all_procs=True)
            for _ in range(50):
                if self.status(rec) != "running":
                    break
                time.sleep(0.1)
        return rec

    def remove(self, ref: str, *, force: bool = False) -> ContainerRecord:
        rec = self.get(ref)
        if self.status(rec) == "running":
            if not force:
                raise SlimageError(
                    f"You cannot remove a running container {rec.id}. Stop the container before "
                    "attempting removal or force remove"
                )
            OciRuntime(rec.runtime).kill(rec.id, "KILL", all_procs=True)
        self._teardown(rec)
        return rec

    def _teardown(self, rec: ContainerRecord) -> None:
        """Delete the runtime's container, unmount the rootfs, remove the directory and
        the gc pin. Idempotent, and safe on a half-made container."""
        with contextlib.suppress(SlimageError):
            OciRuntime(rec.runtime).delete(rec.id, force=True)
        cdir = self.dir / rec.id
        overlay.unmount(cdir / "rootfs")
        if not overlay.is_mounted(cdir / "rootfs"):
            shutil.rmtree(cdir, ignore_errors=True)
            self.store.unpin(f"container-{rec.id}")

    # ------------------------------------------------------------------ reaping
    def reap_orphans(self) -> list[str]:
        """Remove what a `run` killed outright (SIGKILL, OOM) could not: its --rm
        container (running or not) once its owner is gone, and a container directory
        whose record was never written. Returns the ids removed. A detached --rm
        container whose watcher died is removed once it has exited."""
        removed: list[str] = []
        try:
            entries = list(self.dir.iterdir())
        except OSError:
            return removed
        for d in entries:
            try:
                rec = ContainerRecord(**json.loads((d / "record.json").read_text()))
            except FileNotFoundError:
                if _older_than(d, 60):  # killed between mkdir and the record's write
                    with contextlib.suppress(Exception):
                        overlay.unmount(d / "rootfs")
                        if not overlay.is_mounted(d / "rootfs"):
                            shutil.rmtree(d, ignore_errors=True)
                            removed.append(d.name)
                continue
            except (OSError, ValueError, TypeError):
                continue
            if not rec.auto_remove or not rec.owner or owner.alive(rec.owner):
                continue
            with contextlib.suppress(Exception):
                if rec.detached and self.status(rec) == "running":
                    continue
                OciRuntime(rec.runtime).kill(rec.id, "KILL", all_procs=True)
                self._teardown(rec)
                removed.append(rec.id)
        return removed


def _older_than(path: Path, seconds: float) -> bool:
    try:
        return time.time() - path.stat().st_mtime > seconds
    except OSError:
        return False


def _kill_and_reap(runtime: OciRuntime, cid: str, p: subprocess.Popen[bytes]) -> None:
    """Stop an interrupted foreground container: SIGTERM (its own chance to finish), then
    SIGKILL to every process in it, and wait for the runtime process to exit."""
    with contextlib.suppress(Exception):
        runtime.kill(cid, "TERM")
        try:
            p.wait(timeout=3)
            return
        except subprocess.TimeoutExpired:
            pass
        runtime.kill(cid, "KILL", all_procs=True)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _pump(src: Any, dst: BinaryIO | None, log: Any, lock: threading.Lock) -> None:
    """Copy one output pipe to DST and the log. A closed DST or log (the run was
    interrupted and is cleaning up) only ends the copy: nothing is raised from a thread."""
    with contextlib.suppress(OSError, ValueError):
        while chunk := src.read1(65536):
            with lock:
                if dst is not None:
                    try:
                        dst.write(chunk)
                        dst.flush()
                    except (OSError, ValueError):
                        dst = None  # the reader went away; the log still gets everything
                log.write(chunk)
                log.flush()


def wait_and_remove(root: str, cid: str) -> None:
    """The --rm watcher of a detached container: remove it once it has exited."""
    c = Containers(Store(root), reap=False)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    while True:
        try:
            rec = c.get(cid)
        except NotFoundError:
            return
        if c.status(rec) != "running":
            c.remove(cid, force=True)
            return
        time.sleep(0.5)
