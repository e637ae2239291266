"""Fixtures for the analyze/diff tests: images a real Docker engine built, with every kind
of layer change, and helpers that read the engine's own view of them."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from slimage.layers.tarscan import iter_entries
from tests.support import testbed

LAYERED = "slimage-test/layered:latest"
LAYERED2 = "slimage-test/layered2:latest"

# The legacy builder commits each step through the overlay2 driver, so `rm -rf d && mkdir
# d` comes out as an opaque directory (`.wh..wh..opq`), as the issue asks to test.
LAYERED_DOCKERFILE = """\
FROM slimage-test/debian:bookworm
RUN mkdir -p /data/keep /data/opq/sub /data/gone /data/swap \\
 && head -c 100000 /dev/urandom > /data/over.bin \\
 && head -c 50000 /dev/urandom > /data/gone/a.bin && head -c 20000 /dev/urandom > /data/gone/b.bin \\
 && head -c 30000 /dev/urandom > /data/opq/old1 && head -c 30000 /dev/urandom > /data/opq/sub/old2 \\
 && head -c 1000 /dev/urandom > /data/swap/inner \\
 && head -c 4000 /dev/urandom > /data/hl-target && ln /data/hl-target /data/hl-link \\
 && ln -s /data/over.bin /data/sym && head -c 7000 /dev/urandom > /data/tofile
RUN head -c 120000 /dev/urandom > /data/over.bin
RUN rm -rf /data/gone /data/hl-target /usr/bin/perl5.36.0
RUN rm -rf /data/opq && mkdir /data/opq && echo new > /data/opq/new
RUN rm -rf /data/swap && head -c 3000 /dev/urandom > /data/swap
RUN rm /data/tofile && mkdir /data/tofile && echo x > /data/tofile/x
RUN chmod 600 /data/keep && chown 1:1 /data/over.bin
CMD ["sh"]
"""

LAYERED2_DOCKERFILE = f"""\
FROM {LAYERED}
RUN echo changed > /data/opq/new && chmod 700 /data/keep && chown 2:2 /data/tofile/x \\
 && rm /data/sym && head -c 5000 /dev/urandom > /data/added && cp -p /data/swap /tmp/s \\
 && cat /tmp/s > /data/swap && rm /tmp/s
"""

# Paths `docker export` shows that come from the container runtime, not the image.
RUNTIME_PATHS = (
    "dev",
    "proc",
    "sys",
    ".dockerenv",
    "etc/hostname",
    "etc/hosts",
    "etc/resolv.conf",
    "etc/mtab",
)


def build(tag: str, dockerfile: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "Dockerfile").write_text(dockerfile)
        testbed.docker(
            "build",
            "--network",
            "host",
            "-q",
            "-t",
            tag,
            tmp,
            buildkit="0",
            stdout=subprocess.DEVNULL,
        )


def layered_archive_path() -> Path:
    """`docker save` of LAYERED (built once, cached by image ID). Needs slimage-test/debian:bookworm."""
    if not testbed.image_exists(LAYERED):
        build(LAYERED, LAYERED_DOCKERFILE)
    return testbed.saved_archive(LAYERED, "layered")


def layered2_archive_path() -> Path:
    layered_archive_path()
    if not testbed.image_exists(LAYERED2):
        build(LAYERED2, LAYERED2_DOCKERFILE)
    return testbed.saved_archive(LAYERED2, "layered2")


def exported_fs(ref: str) -> dict[str, tuple[str, int]]:
    """`docker export` of a fresh container: path -> (kind, size), hardlinks resolved."""
    cid = testbed.docker("create", ref, capture_output=True, text=True).stdout.strip()
    try:
        proc = subprocess.Popen([testbed.DOCKER, "export", cid], stdout=subprocess.PIPE)
        assert proc.stdout is not None
        out: dict[str, tuple[str, int]] = {}
        for e in iter_entries(proc.stdout, name="export"):
            if not e.name or e.name.startswith(RUNTIME_PATHS[:3]) or e.name in RUNTIME_PATHS:
                continue
            if e.kind == "hardlink":
                out[e.name] = out[e.linkname.strip("/")]
            elif e.kind == "symlink":
                out[e.name] = ("symlink", len(e.linkname.encode()))
            else:
                out[e.name] = (e.kind, e.size)
        proc.wait()
        return out
    finally:
        testbed.docker("rm", cid, capture_output=True)


def history_sizes(ref: str) -> list[int]:
    """`docker history --human=false` SIZE per config history entry, oldest first."""
    res = testbed.docker(
        "history",
        "--human=false",
        "--no-trunc",
        "--format",
        "{{.Size}}",
        ref,
        capture_output=True,
        text=True,
    )
    return [int(x) for x in res.stdout.split()][::-1]
