"""RUN under an OCI runtime (runc or crun) on an overlay rootfs.

The process gets the image's Env/User/WorkingDir, the host's resolv.conf and hosts (bind
mounts that are removed from the upper dir afterwards, as BuildKit's mount-stub cleaner
does), the host network unless `--network none`, and any cache or secret mounts. Output
is streamed to the progress printer and its tail kept for the error message.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import signal
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slimage.errors import BuildError
from slimage.runtime import spec as ocispec
from slimage.runtime.ocirun import OciRuntime


@dataclass
class RunRequest:
    args: list[str]
    env: list[str]
    cwd: str
    uid: int
    gid: int
    additional_gids: list[int] = field(default_factory=list)
    network: str = "host"
    mounts: list[dict[str, Any]] = field(default_factory=list)


class RunFailed(BuildError):
    def __init__(self, message: str, exit_code: int, tail: list[str]):
        super().__init__(message)
        self.exit_code_value = exit_code
        self.tail = tail


def _stub_targets(rootfs: Path, mounts: list[dict[str, Any]]) -> list[str]:
    """Mount targets missing from the rootfs: runc will create them, we remove them after."""
    from slimage.fs.rootpath import resolve_in_root

    missing = []
    for m in mounts:
        dest = m["destination"]
        parts = [p for p in dest.split("/") if p]
        # The first missing component is what runc creates (and everything below it).
        for i in range(1, len(parts) + 1):
            sub = "/" + "/".join(parts[:i])
            if not os.path.lexists(resolve_in_root(str(rootfs), sub)):
                missing.append(sub)
                break
    return missing


def run_in(
    rootfs: Path,
    bundle_dir: Path,
    req: RunRequest,
    *,
    runtime: OciRuntime,
    on_output: Callable[[bytes], None] | None = None,
    tail_lines: int = 12,
) -> None:
    """Run REQ with ROOTFS as /; raise RunFailed with the output tail on non-zero exit."""
    from slimage.fs.rootpath import resolve_in_root

    mounts = [
        ocispec.bind("/etc/resolv.conf", "/etc/resolv.conf", readonly=True),
        ocispec.bind("/etc/hosts", "/etc/hosts", readonly=True),
        *req.mounts,
    ]
    mounts = [m for m in mounts if os.path.exists(m["source"]) or m["type"] != "bind"]
    std_dirs = ["/proc", "/dev", "/sys"]
    stubs = _stub_targets(rootfs, mounts + [{"destination": d} for d in std_dirs])
    proc = ocispec.ProcessSpec(
        args=req.args,
        env=req.env,
        cwd=req.cwd,
        uid=req.uid,
        gid=req.gid,
        additional_gids=req.additional_gids,
    )
    cfg = ocispec.make_spec(
        str(rootfs), proc, network=req.network, hostname="buildkitsandbox", mounts=mounts
    )
    bundle_dir.mkdir(parents=True, exist_ok=True)
    (bundle_dir / "config.json").write_text(json.dumps(cfg))
    cid = "slimage-build-" + uuid.uuid4().hex[:12]
    tail: collections.deque[str] = collections.deque(maxlen=tail_lines)
    partial = b""
    try:
        p = runtime.run(cid, str(bundle_dir), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert p.stdout is not None
        try:
            while chunk := p.stdout.read1(65536):  # type: ignore[attr-defined]
                if on_output:
                    on_output(chunk)
                partial += chunk
                *lines, partial = partial.split(b"\n")
                for line in lines:
                    tail.append(line.decode(errors="replace"))
            rc = p.wait()
        except BaseException:
            with contextlib.suppress(Exception):
                p.send_signal(signal.SIGKILL)
                p.wait()
            raise
    finally:
        # Also on KeyboardInterrupt (Ctrl-C, or SIGTERM as the CLI maps it). Should this be
        # cut short, the runtime object still lists the container for its session's close.
        runtime.kill(cid, "KILL")
        runtime.delete(cid, force=True)
    if partial:
        tail.append(partial.decode(errors="replace"))
    # Undo the mount points runc had to create: they are not part of the step's changes.
    for stub in sorted(stubs, key=len, reverse=True):
        host = resolve_in_root(str(rootfs), stub, follow_last=False)
        with contextlib.suppress(OSError):
            if os.path.isdir(host) and not os.path.islink(host):
                _rm_empty_tree(host)
            else:
                os.unlink(host)
    if rc != 0:
        cmd = " ".join(req.args)
        raise RunFailed(
            f'process "{cmd}" did not complete successfully: exit code: {rc}',
            rc,
            list(tail),
        )


def _rm_empty_tree(path: str) -> None:
    for dirpath, _dirnames, filenames in os.walk(path, topdown=False):
        for f in filenames:
            if os.path.getsize(os.path.join(dirpath, f)) == 0:
                os.unlink(os.path.join(dirpath, f))
        with contextlib.suppress(OSError):
            os.rmdir(dirpath)
