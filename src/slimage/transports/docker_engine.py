"""The local Docker engine as a source (`docker save`) and a sink (`docker load`).

Used for `docker-daemon:REF` and for the builder's `--load`. It talks to the engine only
through the `docker` client, so whatever DOCKER_HOST/contexts the user set up apply.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Iterable

from slimage.errors import EngineError, ImageNotFoundError
from slimage.image import Image
from slimage.oci.model import Platform


def docker_binary() -> str:
    path = os.environ.get("SLIMAGE_DOCKER") or shutil.which("docker")
    if not path:
        raise EngineError("docker client not found (install docker.io or set SLIMAGE_DOCKER)")
    return path


def open_daemon_image(ref: str, *, platform: Platform | None = None) -> Image:
    """`docker save REF`, streamed into an anonymous temp file, read as an archive."""
    from slimage.transports.docker_archive import read_archive
    from slimage.transports.tarindex import TarIndex

    proc = subprocess.Popen(
        [docker_binary(), "save", ref], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    err_chunks: list[bytes] = []
    t = threading.Thread(target=lambda: err_chunks.append(proc.stderr.read()), daemon=True)  # type: ignore[union-attr]
    t.start()
    try:
        index = TarIndex.spool(
            proc.stdout,  # type: ignore[arg-type]
            f"docker-daemon:{ref}",
        )
    except Exception:
        proc.kill()
        proc.wait()
        t.join()
        err = b"".join(err_chunks).decode(errors="replace").strip()
        if err:
            raise _engine_error(ref, err) from None
        raise
    rc = proc.wait()
    t.join()
    if rc != 0:
        raise _engine_error(ref, b"".join(err_chunks).decode(errors="replace").strip())
    images = read_archive(index, platform=platform)
    return images[0]


def _engine_error(ref: str, err: str) -> Exception:
    if "No such image" in err or "reference does not exist" in err:
        return ImageNotFoundError(f"docker-daemon:{ref}: no such image in the Docker engine")
    return EngineError(
        f"docker save {ref} failed: {err.splitlines()[-1] if err else 'unknown error'}"
    )


def load_into_engine(
    images: Iterable[tuple[Image, list[str]]] | Image, tags: list[str] | None = None
) -> list[str]:
    """Stream a docker-archive of IMAGES into `docker load`. Returns the engine's
    `Loaded image...` lines. Accepts one `Image` (with TAGS) or (image, tags) pairs."""
    from slimage.transports.docker_archive import write_archive

    if isinstance(images, Image):
        pairs = [(images, list(tags or images.repo_tags))]
    else:
        pairs = list(images)
    proc = subprocess.Popen(
        [docker_binary(), "load"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None
    out: list[bytes] = []
    err: list[bytes] = []
    t1 = threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True)  # type: ignore[union-attr]
    t2 = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)  # type: ignore[union-attr]
    t1.start()
    t2.start()
    try:
        write_archive(proc.stdin, pairs)  # type: ignore[arg-type]
        proc.stdin.close()
    except BrokenPipeError:
        pass
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    rc = proc.wait()
    t1.join()
    t2.join()
    text = b"".join(out).decode(errors="replace")
    if rc != 0:
        msg = b"".join(err).decode(errors="replace").strip()
        raise EngineError(f"docker load failed: {msg.splitlines()[-1] if msg else f'exit {rc}'}")
    return [line for line in text.splitlines() if line.strip()]
