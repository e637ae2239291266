"""`base build debian --full`: a complete Debian made by the real tools, then imported.

mmdebstrap (preferred: it writes a tar and honours SOURCE_DATE_EPOCH) or debootstrap run
the maintainer scripts that the distroless presets deliberately skip, so this is the base
for images that need a working dpkg/apt. We only import their result as one layer.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from slimage.bases.builder import BaseBuildResult, LayerReport, source_date_epoch
from slimage.bases.errors import BaseBuildError
from slimage.bases.repository import DEFAULT_MIRROR, DEFAULT_SUITE
from slimage.mutate import ImageAssembler, rfc3339
from slimage.oci.model import HistoryEntry, Platform
from slimage.store.store import Store


def full_tool(prefer: str | None = None) -> tuple[str, str]:
    for name in ([prefer] if prefer else []) + ["mmdebstrap", "debootstrap"]:
        path = shutil.which(name) or (
            f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None
        )
        if path:
            return name, path
    raise BaseBuildError(
        "debian --full needs mmdebstrap or debootstrap (apt-get install mmdebstrap)"
    )


def build_full(
    store: Store,
    *,
    suite: str = DEFAULT_SUITE,
    arch: str = "amd64",
    mirror: str | None = None,
    variant: str = "minbase",
    tags: list[str] | None = None,
    tool: str | None = None,
    include: list[str] | None = None,
) -> BaseBuildResult:
    t0 = time.monotonic()
    name, path = full_tool(tool)
    mirror = mirror or DEFAULT_MIRROR
    epoch, _ = source_date_epoch()
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(epoch))
    with tempfile.TemporaryDirectory(prefix="slimage-full-") as tmp:
        tar = Path(tmp) / "rootfs.tar"
        if name == "mmdebstrap":
            cmd = [path, f"--variant={variant}", f"--architectures={arch}", "--quiet"]
            if include:
                cmd.append("--include=" + ",".join(include))
            cmd += [suite, str(tar), mirror]
            res = subprocess.run(cmd, capture_output=True, text=True, env=env)
        else:
            root = Path(tmp) / "root"
            cmd = [path, f"--variant={variant}", f"--arch={arch}"]
            if include:
                cmd.append("--include=" + ",".join(include))
            cmd += [suite, str(root), mirror]
            res = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if res.returncode == 0:
                res = subprocess.run(
                    [
                        "tar",
                        "--sort=name",
                        "--numeric-owner",
                        f"--mtime=@{epoch}",
                        "--clamp-mtime",
                        "-C",
                        str(root),
                        "-cf",
                        str(tar),
                        ".",
                    ],
                    capture_output=True,
                    text=True,
                )
        if res.returncode != 0:
            last = (res.stderr or res.stdout).strip().splitlines()
            raise BaseBuildError(f"{name} failed: {last[-1] if last else f'exit {res.returncode}'}")
        asm = ImageAssembler(
            store, platform=Platform("linux", arch, "v8" if arch == "arm64" else None)
        )
        created = rfc3339(epoch)
        with open(tar, "rb") as fh:
            info = asm.add_layer(
                fh,
                HistoryEntry(
                    created=created,
                    created_by=f"slimage base debian --full: {name} --variant={variant} {suite} {mirror}",
                ),
            )
    asm.runtime["Env"] = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    asm.runtime["Cmd"] = ["bash"]
    asm.add_history(HistoryEntry(created=created, created_by='CMD ["bash"]'))
    result = asm.commit(tags=tags, created=created)
    return BaseBuildResult(
        manifest_digest=result.manifest_digest,
        image_id=result.image_id,
        tags=list(tags or []),
        preset="debian --full",
        arch=arch,
        packages=0,
        layers=[LayerReport("rootfs", info.diff_id, info.size, [])],
        size=info.size,
        seconds=round(time.monotonic() - t0, 3),
    )
