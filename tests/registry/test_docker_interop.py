"""Interop with the real Docker engine, both ways, through a real registry on loopback
(Docker trusts 127.0.0.0/8 as an insecure registry by default)."""

from __future__ import annotations

import io
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from slimage.mutate import ImageAssembler
from slimage.oci.model import HistoryEntry, ImageConfig
from slimage.store.images import ingest, open_image
from slimage.store.store import Store
from slimage.transports.registry import index_image_layers, pull, push
from slimage.transports.sources import open_source
from tests.registry.helpers import tar_bytes

pytestmark = pytest.mark.docker


def _docker(docker: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([docker, *args], capture_output=True, text=True, check=check, timeout=600)


@pytest.fixture(scope="module")
def debian_store(debian_image: str, tmp_path_factory: pytest.TempPathFactory) -> Store:
    """debian:bookworm from the engine, ingested once into a store for this module."""
    store = Store(tmp_path_factory.mktemp("interop") / "store")
    ingest(store, open_source(f"docker-daemon:{debian_image}"), tags=["debian:bookworm"])
    return store


def test_docker_pulls_and_runs_what_slimage_pushed(
    docker_engine: str, registry, debian_store: Store
) -> None:
    store = debian_store
    asm = ImageAssembler(store, open_image(store, "debian:bookworm"))
    token = uuid.uuid4().hex
    asm.add_layer(
        io.BytesIO(tar_bytes({"hello.txt": f"hello {token}\n".encode()})),
        HistoryEntry(created_by="COPY hello.txt /"),
    )
    asm.runtime["Cmd"] = ["cat", "/hello.txt"]
    ref = f"{registry.host}/interop/slim:{token[:8]}"
    digest = asm.commit(tags=[ref]).manifest_digest
    report = push(store, ref)
    assert report.digest == digest
    try:
        pulled = _docker(docker_engine, "pull", ref)
        assert digest in pulled.stdout
        run = _docker(docker_engine, "run", "--rm", "--network", "host", ref)
        assert run.stdout.strip() == f"hello {token}"
        repo_digests = _docker(
            docker_engine, "image", "inspect", "-f", "{{json .RepoDigests}}", ref
        ).stdout
        assert digest in repo_digests
    finally:
        _docker(docker_engine, "rmi", "-f", ref, check=False)


def test_slimage_pulls_what_docker_pushed(
    docker_engine: str, registry, debian_image: str, tmp_path: Path
) -> None:
    ref = f"{registry.host}/interop/debian:{uuid.uuid4().hex[:8]}"
    _docker(docker_engine, "tag", debian_image, ref)
    try:
        out = _docker(docker_engine, "push", ref).stdout
        m = re.search(r"digest: (sha256:[0-9a-f]{64})", out)
        assert m, out
        pushed_digest = m.group(1)
        image_id = _docker(docker_engine, "image", "inspect", "-f", "{{.Id}}", ref).stdout.strip()
    finally:
        _docker(docker_engine, "rmi", ref, check=False)
    store = Store(tmp_path / "s")
    report = pull(store, ref)
    assert report.digest == pushed_digest  # digest for digest
    assert report.image_id == image_id
    assert store.resolve(ref) == pushed_digest
    manifest = store.manifest_for(pushed_digest)
    config = ImageConfig.parse(store.read_blob(manifest.config.digest))
    # Every layer Docker compressed decompresses to the diff_id Docker recorded: pull
    # checked and recorded each one already, so there is nothing left to index.
    assert all(store.layer_info(d) is not None for d in config.diff_ids)
    assert index_image_layers(store, manifest, config) == 0
    assert store.layer_info(config.diff_ids[0]).size > 1_000_000
