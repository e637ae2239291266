"""`slimage copy` between every pair of source and sink kinds, read back by real tools.

One tiny two-layer image, made as an uncompressed OCI layout, is turned into every kind of
source by tools other than slimage (skopeo writes the archives and the registry copy,
`docker load` fills the engine; only the store source is slimage's own). Then each of the
36 (source, sink) pairs is copied with slimage, and what it wrote is read back by skopeo
(which checks every blob's digest while it copies it to a `dir:`), by `docker image
inspect`, or, for the store, by opening it and reading every layer. The image ID (the
config digest) must survive every hop.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from slimage.store.images import open_image
from slimage.store.store import Store
from slimage.transports.registry.copy import copy
from slimage.transports.sources import open_source
from tests.registry import servers
from tests.transports import imagekit
from tests.transports.imagekit import E

KINDS = ["store", "docker-archive", "oci", "oci-archive", "docker-daemon", "docker"]
TAG = "slimage-test/matrix"
RUN = uuid.uuid4().hex[:6]


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(cmd, capture_output=True, text=True, env=servers.env_without_proxies())
    assert res.returncode == 0, f"{' '.join(cmd)}: {res.stderr}"
    return res


class World:
    def __init__(self, root: Path, registry: servers.RegistryProc, layout: Path):
        self.root = root
        self.registry = registry
        self.layout = layout
        self.store = Store(root / "store")
        self.image_id = ""
        self.layer_digests: list[str] = []
        self.engine_tags: list[str] = []
        self.sources: dict[str, str] = {}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, docker_engine: str) -> Iterator[World]:
    for tool in ("skopeo", "docker"):
        if shutil.which(tool) is None:
            pytest.skip(f"needs {tool}")
    if servers.REGISTRY_BIN is None:
        pytest.skip("needs Debian's docker-registry")
    root = tmp_path_factory.mktemp("matrix")
    registry = servers.RegistryProc(root, name="matrix")
    layers = [
        imagekit.layer_tar([E("etc", "dir"), E("etc/hello", data=b"hello\n")]),
        imagekit.layer_tar([E("app", "dir"), E("app/data", data=bytes(range(256)) * 40)]),
    ]
    layout = imagekit.oci_layout_dir(root / "src-layout", layers, ref="v1")
    w = World(root, registry, layout)
    index = json.loads((layout / "index.json").read_text())
    manifest_hex = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((layout / "blobs/sha256" / manifest_hex).read_text())
    w.image_id = manifest["config"]["digest"]
    w.layer_digests = [d["digest"] for d in manifest["layers"]]
    src_ref = f"{TAG}:src-{RUN}"
    archive = root / "src-docker.tar"
    _run("skopeo", "copy", "-q", f"oci:{layout}:v1", f"docker-archive:{archive}:{src_ref}")
    oci_archive = root / "src-oci.tar"
    _run("skopeo", "copy", "-q", f"oci:{layout}:v1", f"oci-archive:{oci_archive}:v1")
    _run("docker", "load", "-q", "-i", str(archive))
    w.engine_tags.append(src_ref)
    remote = f"{registry.host}/matrix/src:1"
    _run(
        "skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{layout}:v1", f"docker://{remote}"
    )
    copy(f"oci:{layout}:v1", f"store:{src_ref}", store=w.store)
    w.sources = {
        "store": f"store:{src_ref}",
        "docker-archive": f"docker-archive:{archive}",
        "oci": f"oci:{layout}:v1",
        "oci-archive": f"oci-archive:{oci_archive}:v1",
        "docker-daemon": f"docker-daemon:{src_ref}",
        "docker": f"docker://{remote}",
    }
    try:
        yield w
    finally:
        if w.engine_tags:
            subprocess.run(["docker", "rmi", "-f", *w.engine_tags], capture_output=True)
        registry.stop()


def _destination(w: World, src: str, dst: str) -> tuple[str, str]:
    """(slimage spec, the spec skopeo or docker reads it back with)."""
    out = w.root / f"out-{src}-to-{dst}"
    name = f"{TAG}:{src}-{RUN}"
    if dst == "store":
        return f"store:{name}", ""
    if dst == "docker-archive":
        return f"docker-archive:{out}.tar:{name}", f"docker-archive:{out}.tar"
    if dst == "oci":
        return f"oci:{out}:v1", f"oci:{out}:v1"
    if dst == "oci-archive":
        return f"oci-archive:{out}.tar:v1", f"oci-archive:{out}.tar:v1"
    if dst == "docker-daemon":
        w.engine_tags.append(f"{name}-{dst}")
        return f"docker-daemon:{name}-{dst}", f"{name}-{dst}"
    remote = f"{w.registry.host}/matrix/{src}:to-{dst}"
    return f"docker://{remote}", f"docker://{remote}"


def _skopeo_config_digest(w: World, spec: str, where: Path) -> str:
    """skopeo copies SPEC to a `dir:` (verifying every blob's digest on the way) and we
    read the config digest from the manifest it wrote."""
    _run("skopeo", "copy", "-q", "--src-tls-verify=false", spec, f"dir:{where}")
    manifest = json.loads((where / "manifest.json").read_text())
    for d in manifest["layers"]:
        assert (where / d["digest"].split(":")[1]).stat().st_size == d["size"]
    return str(manifest["config"]["digest"])


@pytest.mark.parametrize("dst", KINDS)
@pytest.mark.parametrize("src", KINDS)
def test_copy_matrix(world: World, src: str, dst: str) -> None:
    spec, readback = _destination(world, src, dst)
    report = copy(world.sources[src], spec, store=world.store)
    assert report.image_id == world.image_id
    if dst == "store":
        image = open_image(world.store, spec.removeprefix("store:"))
        assert image.id == world.image_id
        for layer in image.layers:  # every layer decompresses to its diff_id
            with layer.open_tar() as fh:
                while fh.read(1 << 20):
                    pass
    elif dst == "docker-daemon":
        got = _run("docker", "image", "inspect", "--format", "{{.Id}}", readback).stdout.strip()
        assert got == world.image_id
    else:
        where = world.root / f"readback-{src}-{dst}"
        assert _skopeo_config_digest(world, readback, where) == world.image_id


def test_uncompressed_layout_to_registry_keeps_layer_digests(world: World, tmp_path: Path) -> None:
    """The layers go from the layout's files to the registry as they are: the pushed
    manifest is the layout's own, and nothing passes through (or lands in) the store."""
    store = Store(tmp_path / "fresh-store")
    remote = f"{world.registry.host}/matrix/digests:1"
    report = copy(world.sources["oci"], f"docker://{remote}", store=store)
    raw = _run("skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{remote}").stdout
    manifest = json.loads(raw)
    assert [d["digest"] for d in manifest["layers"]] == world.layer_digests
    assert all(d["mediaType"].endswith(".tar") for d in manifest["layers"])
    index = json.loads((world.layout / "index.json").read_text())
    assert report.digest == index["manifests"][0]["digest"]
    blobs = store.blobs_dir
    assert not blobs.exists() or not any(blobs.iterdir())


def test_layout_layers_say_where_their_bytes_lie(world: World) -> None:
    """A layer from a layout or a plain archive names its file region; reading that
    region gives exactly the blob (so analyze can scan it in place)."""
    from slimage.image import location_of

    for kind in ("oci", "docker-archive"):
        image = open_source(world.sources[kind])
        for layer in image.layers:
            loc = location_of(layer)
            assert loc is not None, kind
            with open(loc.path, "rb") as fh:
                fh.seek(loc.offset)
                data = fh.read(loc.length)
            with layer.open_blob() as blob:
                assert blob.read() == data


def test_cli_copy_into_the_store(world: World, tmp_path: Path) -> None:
    """The issue's example: `slimage copy docker-daemon:REF store:NAME` is accepted."""
    from tests.transports.conftest import slimage

    root = tmp_path / "cli-store"
    res = slimage("copy", world.sources["docker-daemon"], f"store:{TAG}:cli", root=root)
    assert res.returncode == 0, res.stderr.decode()
    assert open_image(Store(root), f"{TAG}:cli").id == world.image_id
    res = slimage("copy", world.sources["oci"], "nowhere:abc", root=root)
    assert res.returncode == 2 and b"unknown destination" in res.stderr
    assert b"Traceback" not in res.stderr
