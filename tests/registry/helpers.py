"""Helpers shared by the registry tests: small images made with the image core, and
the CLI run as a real subprocess."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

from slimage.mutate import ImageAssembler
from slimage.oci.model import HistoryEntry
from slimage.store.images import open_image
from slimage.store.store import Store
from tests.registry import servers


def tar_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1700000000
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_image(
    store: Store,
    tag: str,
    layers: list[dict[str, bytes]],
    *,
    base: str | None = None,
    cmd: list[str] | None = None,
) -> str:
    """An image in STORE made by the image core: BASE (a store name) plus LAYERS."""
    asm = ImageAssembler(store, open_image(store, base) if base else None)
    for i, files in enumerate(layers):
        asm.add_layer(io.BytesIO(tar_bytes(files)), HistoryEntry(created_by=f"layer {i}"))
    if cmd:
        asm.runtime["Cmd"] = cmd
    return asm.commit(tags=[tag], created="2024-01-01T00:00:00Z").manifest_digest


def run_cli(
    *args: str,
    store_root: Path | None = None,
    input: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    full_env = servers.env_without_proxies()
    if store_root is not None:
        full_env["SLIMAGE_HOME"] = str(store_root)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "slimage.cli.main", *args],
        capture_output=True,
        text=True,
        input=input,
        env=full_env,
        timeout=timeout,
    )


def random_bytes(n: int, seed: int = 0) -> bytes:
    return os.urandom(n) if seed == 0 else bytes((i * seed + i // 7) % 251 for i in range(n))
