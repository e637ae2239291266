"""Thin wrapper over an OCI runtime binary (runc, or crun with the same CLI).

We keep the runtime's default state root (/run/runc, /run/crun) so `runc list` shows what
slimage started; every id we create starts with `slimage-` so it is ours to clean up.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from typing import Any

from slimage.errors import RuntimeToolError, UsageError

KNOWN = {"runc": "/usr/sbin/runc", "crun": "/usr/bin/crun"}


def runtime_path(name: str | None = None) -> str:
    """Resolve `--runtime` (a name or a path) to an executable."""
    name = name or os.environ.get("SLIMAGE_RUNTIME") or "runc"
    if os.sep in name:
        if not os.access(name, os.X_OK):
            raise UsageError(f"OCI runtime {name} is not executable")
        return name
    found = shutil.which(name) or (KNOWN.get(name) if os.path.exists(KNOWN.get(name, "")) else None)
    if not found:
        raise UsageError(f"OCI runtime {name!r} not found (install runc or crun)")
    return found


HYBRID_V2 = "/sys/fs/cgroup/unified"


def _hybrid_cgroups_with_v2_controllers() -> bool:
    """A hybrid host (v1 hierarchies plus a cgroup2 mount at /sys/fs/cgroup/unified) whose
    v2 root still holds controllers: crun refuses it ("cgroups in hybrid mode not
    supported"), runc copes."""
    try:
        with open(os.path.join(HYBRID_V2, "cgroup.controllers")) as fh:
            return bool(fh.read().split())
    except OSError:
        return False


class OciRuntime:
    """One OCI runtime binary, and the containers started through this object that were
    not deleted yet: the owner of the object (a build session) can remove exactly those,
    and nothing another build in the same process started."""

    def __init__(self, name: str | None = None):
        self.path = runtime_path(name)
        self._prefix: list[str] = []
        self.started: set[str] = set()
        if os.path.basename(self.path) == "crun" and _hybrid_cgroups_with_v2_controllers():
            # Hide the v2 mount from crun only, in a private mount namespace, so it sees a
            # plain v1 host. The host's mounts and cgroups are left as they are.
            self._prefix = [
                "unshare",
                "--mount",
                "--propagation",
                "slave",
                "sh",
                "-c",
                f'umount -l {HYBRID_V2} && exec "$0" "$@"',
            ]

    def _cmd(self, *args: str) -> list[str]:
        return [*self._prefix, self.path, *args]

    def command(self, *args: str) -> list[str]:
        """The argv of `RUNTIME ARGS...`, for a caller that runs it under a wrapper (minify
        runs `runc exec` under strace); the same prefix `_cmd` adds (crun's private mount
        namespace on a hybrid cgroup host) included."""
        return self._cmd(*args)

    def create(
        self,
        container_id: str,
        bundle: str,
        *,
        pid_file: str,
        stdout: Any = subprocess.DEVNULL,
        stderr: Any = subprocess.DEVNULL,
    ) -> int:
        """`runtime create`: the container's init is made and waits on the exec fifo,
        inside its namespaces and root, until `start`. Returns the runtime's exit code; a
        non-zero one leaves nothing to delete but the caller still calls `delete` (it is
        harmless), so that an interrupt between the two never leaks a container."""
        self.started.add(container_id)
        res = subprocess.run(
            self._cmd("create", "--bundle", bundle, "--pid-file", pid_file, container_id),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
        return res.returncode

    def start(self, container_id: str) -> None:
        """`runtime start` of a created container: its init execs the process."""
        res = subprocess.run(self._cmd("start", container_id), capture_output=True)
        if res.returncode != 0:
            raise RuntimeToolError(
                f"could not start container {container_id}: "
                f"{res.stderr.decode(errors='replace').strip()}"
            )

    def run(
        self,
        container_id: str,
        bundle: str,
        *,
        stdin: Any = subprocess.DEVNULL,
        stdout: Any = None,
        stderr: Any = None,
        detach: bool = False,
    ) -> subprocess.Popen[bytes]:
        args = ["run", "--bundle", bundle]
        if detach:
            args.append("--detach")
        args.append(container_id)
        self.started.add(container_id)
        return subprocess.Popen(
            self._cmd(*args), stdin=stdin, stdout=stdout, stderr=stderr, start_new_session=detach
        )

    def state(self, container_id: str) -> dict[str, Any] | None:
        res = subprocess.run(self._cmd("state", container_id), capture_output=True)
        if res.returncode != 0:
            return None
        try:
            return json.loads(res.stdout)
        except ValueError:
            return None

    def kill(self, container_id: str, signal: str = "KILL", *, all_procs: bool = False) -> bool:
        args = ["kill"]
        if all_procs:
            args.append("--all")
        res = subprocess.run(self._cmd(*args, container_id, signal), capture_output=True)
        return res.returncode == 0

    def delete(self, container_id: str, *, force: bool = True) -> None:
        args = ["delete"] + (["--force"] if force else []) + [container_id]
        subprocess.run(self._cmd(*args), capture_output=True)
        self.started.discard(container_id)

    def remove_started(self) -> None:
        """Kill and delete every container this object started and has not deleted."""
        for cid in list(self.started):
            self.kill(cid, "KILL", all_procs=True)
            self.delete(cid, force=True)

    def list_ids(self) -> list[str]:
        res = subprocess.run(self._cmd("list", "--format", "json"), capture_output=True)
        if res.returncode != 0:
            return []
        try:
            data = json.loads(res.stdout or b"null") or []
        except ValueError:
            return []
        return [c.get("id", "") for c in data]

    def exec(
        self,
        container_id: str,
        process: dict[str, Any],
        *,
        tty: bool = False,
        detach: bool = False,
    ) -> int:
        import tempfile

        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
            json.dump(process, fh)
            path = fh.name
        try:
            args = ["exec", "--process", path]
            if tty:
                args.append("--tty")
            if detach:
                args.append("--detach")
            args.append(container_id)
            try:
                return subprocess.call(self._cmd(*args))
            except KeyboardInterrupt:
                return 130
        finally:
            os.unlink(path)

    def check(self) -> None:
        res = subprocess.run(self._cmd("--version"), capture_output=True)
        if res.returncode != 0:
            raise RuntimeToolError(f"{self.path} --version failed: {res.stderr.decode().strip()}")
