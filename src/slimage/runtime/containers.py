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
from typing import Any

from slimage.errors import NotFoundError, RuntimeToolError, SlimageError, UsageError
from slimage.runtime import overlay
from slimage.runtime import spec as ocispec
from slimage.runtime.ocirun import OciRuntime
from slimage.runtime.process import check_command, plan_process
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
    network: str = "host"
    tty: bool = False
    interactive: bool = False
    runtime: str | None = None


class Containers:
    def __init__(self, store: Store | None = None):
        self.store = store or Store()
        self.dir = self.store.root / "containers"
        self.dir.mkdir(parents=True, exist_ok=True)

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
        from slimage.builder.rootfs import LayerDirs
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
        rootfs = cdir / "rootfs"
        for sub in ("upper", "work", "rootfs", "bundle"):
            (cdir / sub).mkdir(parents=True)
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
        )
        self.store.pin(f"container-{cid}", manifest_digest)  # gc keeps what we mount
        self._save(rec)
        try:
            lowers = LayerDirs(self.store).ensure_all(image.layers)
            overlay.mount_overlay(rootfs, lowers, cdir / "upper", cdir / "work")
            from slimage.builder.fsops import mkdir_p

            mkdir_p(str(rootfs), plan.workdir)
            check_command(rootfs, plan.args, plan.env, name)
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
            ]
            spec = ocispec.make_spec(
                str(rootfs), proc, network=opts.network, hostname=cid[:12], mounts=mounts
            )
            (cdir / "bundle" / "config.json").write_text(json.dumps(spec))
        except BaseException:
            self._teardown(rec)
            raise
        if opts.detach:
            log = open(cdir / "container.log", "ab")
            p = runtime.run(cid, str(cdir / "bundle"), stdout=log, stderr=log, detach=True)
            rc = p.wait()
            log.close()
            if rc != 0:
                err = (cdir / "container.log").read_text(errors="replace").strip().splitlines()[-1:]
                self._teardown(rec)
                raise RuntimeToolError(f"could not start container: {' '.join(err)}")
            if opts.rm:
                subprocess.Popen(
                    [sys.executable, "-m", "slimage.runtime.reaper", str(self.store.root), cid],
                    start_new_session=True,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            return rec, 0
        stdin = None if (opts.tty or opts.interactive) else subprocess.DEVNULL
        if opts.tty:
            p = runtime.run(cid, str(cdir / "bundle"), stdin=stdin)
            pumps: list[threading.Thread] = []
        else:
            # Without a terminal, output is also kept for `logs` (as Docker's log driver).
            p = runtime.run(
                cid,
                str(cdir / "bundle"),
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            log = open(cdir / "container.log", "ab")
            lock = threading.Lock()
            pumps = [
                threading.Thread(
                    target=_pump, args=(p.stdout, sys.stdout.buffer, log, lock), daemon=True
                ),
                threading.Thread(
                    target=_pump, args=(p.stderr, sys.stderr.buffer, log, lock), daemon=True
                ),
            ]
            for t in pumps:
                t.start()
        try:
            rc = p.wait()
        except KeyboardInterrupt:
            runtime.kill(cid, "TERM")
            rc = p.wait()
        for t in pumps:
            t.join()
        if pumps:
            log.close()
        rec.exit_code = rc
        self._save(rec)
        if opts.rm:
            self.remove(rec.id, force=True)
        return rec, rc

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
        rt = OciRuntime(rec.runtime)
        rt.delete(rec.id, force=True)
        cdir = self.dir / rec.id
        overlay.unmount(cdir / "rootfs")
        if not overlay.is_mounted(cdir / "rootfs"):
            shutil.rmtree(cdir, ignore_errors=True)
            self.store.unpin(f"container-{rec.id}")


def _pump(src: Any, dst: Any, log: Any, lock: threading.Lock) -> None:
    while chunk := src.read1(65536):
        with lock:
            dst.write(chunk)
            dst.flush()
            log.write(chunk)
            log.flush()


def wait_and_remove(root: str, cid: str) -> None:
    """The --rm watcher of a detached container: remove it once it has exited."""
    c = Containers(Store(root))
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
