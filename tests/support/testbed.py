"""Real test fixtures on this machine: a Docker engine and the seed's stand-in images.

Nothing can be pulled here, so the images the seed uses are made locally and cached in
the engine (and the debootstrap rootfs on disk), so that later runs reuse them:

- ``slimage-test/debian:bookworm``: debootstrap --variant=minbase, then ``docker import``;
- ``slimage-test/node:8``: that base plus Debian's nodejs and npm, trusting the host CA
  bundle so that ``npm install`` works behind the intercepting proxy;
- ``slimage-test/node-vanilla``: the seed's vanilla Dockerfile built on that stand-in.

Run ``python -m tests.support.testbed`` to prepare them all (the README's setup does).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DOCKER = "/usr/bin/docker"
CACHE = Path(os.environ.get("SLIMAGE_TEST_CACHE", "/var/cache/slimage-tests"))
SHARED = Path(__file__).resolve().parents[3] / "shared"
SCENARIO = SHARED / "scenario" / "hello-express"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")

DEBIAN_IMAGE = "slimage-test/debian:bookworm"
NODE8_IMAGE = "slimage-test/node:8"
VANILLA_IMAGE = "slimage-test/node-vanilla:latest"


def docker_ok() -> bool:
    if not Path(DOCKER).exists():
        return False
    try:
        res = subprocess.run([DOCKER, "info"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return res.returncode == 0


def docker(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, DOCKER_BUILDKIT=kw.pop("buildkit", "1"))
    return subprocess.run([DOCKER, *args], check=check, env=env, **kw)


def image_exists(ref: str) -> bool:
    return docker("image", "inspect", ref, check=False, capture_output=True).returncode == 0


def bookworm_rootfs_tar() -> Path:
    """A minbase bookworm rootfs as a tar, made once by debootstrap and cached."""
    tar = CACHE / "bookworm-rootfs.tar"
    if tar.exists():
        return tar
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        root = Path(tmp) / "rootfs"
        subprocess.run(
            ["debootstrap", "--variant=minbase", "bookworm", str(root)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        part = tar.with_suffix(".part")
        with open(part, "wb") as out:
            subprocess.run(["tar", "-C", str(root), "-c", "."], check=True, stdout=out)
        part.rename(tar)
    return tar


def ensure_debian_base() -> str:
    if not image_exists(DEBIAN_IMAGE):
        with open(bookworm_rootfs_tar(), "rb") as fh:
            docker("import", "-", DEBIAN_IMAGE, stdin=fh, stdout=subprocess.DEVNULL)
    return DEBIAN_IMAGE


NODE8_DOCKERFILE = f"""\
FROM {DEBIAN_IMAGE}
COPY host-ca.crt /etc/ssl/certs/host-ca.crt
ENV npm_config_cafile=/etc/ssl/certs/host-ca.crt NODE_EXTRA_CA_CERTS=/etc/ssl/certs/host-ca.crt
RUN apt-get update && apt-get install -y --no-install-recommends nodejs npm \\
    && rm -rf /var/lib/apt/lists/*
CMD ["node"]
"""


def build(tag: str, context: Path, dockerfile: str | Path | None = None, *extra: str) -> None:
    args = ["build", "--network", "host", "-q", "-t", tag]
    if dockerfile is not None:
        args += ["-f", str(dockerfile)]
    docker(*args, *extra, str(context), stdout=subprocess.DEVNULL)


def ensure_node8() -> str:
    """The seed's `node:8`, stood in by Debian bookworm with Debian's nodejs and npm."""
    if image_exists(NODE8_IMAGE):
        return NODE8_IMAGE
    ensure_debian_base()
    with tempfile.TemporaryDirectory() as tmp:
        ctx = Path(tmp)
        shutil.copy(HOST_CA, ctx / "host-ca.crt")
        (ctx / "Dockerfile").write_text(NODE8_DOCKERFILE)
        build(NODE8_IMAGE, ctx)
    return NODE8_IMAGE


def scenario_context(tmp: Path, dockerfile: str = "Dockerfile") -> Path:
    """A copy of hello-express whose FROM lines name our local stand-ins."""
    ctx = tmp / "hello-express"
    shutil.copytree(SCENARIO, ctx, dirs_exist_ok=True)
    text = (SCENARIO / dockerfile).read_text()
    text = text.replace("FROM node:8 ", f"FROM {NODE8_IMAGE} ").replace(
        "FROM node:8\n", f"FROM {NODE8_IMAGE}\n"
    )
    (ctx / dockerfile).write_text(text)
    return ctx


def ensure_vanilla() -> str:
    if image_exists(VANILLA_IMAGE):
        return VANILLA_IMAGE
    ensure_node8()
    with tempfile.TemporaryDirectory() as tmp:
        ctx = scenario_context(Path(tmp))
        build(VANILLA_IMAGE, ctx, ctx / "Dockerfile")
    return VANILLA_IMAGE


def saved_archive(ref: str, name: str) -> Path:
    """`docker save` of REF, cached by image ID so a rebuilt image is saved again."""
    image_id = docker("image", "inspect", "-f", "{{.Id}}", ref, capture_output=True, text=True)
    short = image_id.stdout.strip().split(":")[-1][:12]
    out = CACHE / f"{name}-{short}.tar"
    if not out.exists():
        part = out.with_suffix(".part")
        docker("save", "-o", str(part), ref)
        part.rename(out)
    return out


def main() -> int:
    if not docker_ok():
        print("testbed: no running Docker engine (start: dockerd --bridge=none --iptables=false &)")
        return 1
    ensure_vanilla()
    path = saved_archive(VANILLA_IMAGE, "node-vanilla")
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
