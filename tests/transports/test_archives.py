"""Reading image archives and layouts: docker save (legacy, from the real engine), the
Docker 25 OCI-in-archive shape (built from the spec), OCI layout directories, and the
source prefixes of open_source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slimage.errors import NotFoundError, SlimageError
from slimage.imageops import image_history
from slimage.layers.tarscan import iter_entries
from slimage.store.images import ingest
from slimage.store.store import Store
from slimage.transports.sources import open_source
from tests.support import testbed
from tests.transports import imagekit


def _docker_id(ref: str) -> str:
    return testbed.docker(
        "image", "inspect", "-f", "{{.Id}}", ref, capture_output=True, text=True
    ).stdout.strip()


def _docker_diff_ids(ref: str) -> list[str]:
    out = testbed.docker(
        "image", "inspect", "-f", "{{json .RootFS.Layers}}", ref, capture_output=True, text=True
    )
    return json.loads(out.stdout)


def test_legacy_archive_matches_engine(vanilla_image: str, vanilla_archive: Path) -> None:
    image = open_source(str(vanilla_archive))
    assert image.id == _docker_id(vanilla_image)
    assert image.repo_tags == ["slimage-test/node-vanilla:latest"]
    assert image.config.diff_ids == _docker_diff_ids(vanilla_image)
    # the smallest layer reads back and verifies against its diff_id
    layer = min(image.layers, key=lambda la: la.descriptor.size)
    names = [e.name for e in iter_entries(layer.open_tar())]
    assert names


def test_docker25_archive_reads_like_the_legacy_one(
    tricky_legacy_archive: Path, tmp_path: Path
) -> None:
    d25 = imagekit.to_docker25_archive(tricky_legacy_archive, tmp_path / "d25.tar")
    legacy = open_source(str(tricky_legacy_archive))
    modern = open_source(str(d25))
    assert modern.id == legacy.id
    assert modern.repo_tags == legacy.repo_tags
    assert modern.config.diff_ids == legacy.config.diff_ids
    # gzip, zstd and plain layers all decompress to the same diff_ids
    kinds = {d.media_type.rsplit("+", 1)[-1] for d in modern.manifest.layers}
    assert {"gzip", "zstd"} <= kinds
    assert [r.size for r in image_history(modern)] == [r.size for r in image_history(legacy)]


def test_docker25_archive_loads_into_the_store(
    tricky_legacy_archive: Path, tmp_path: Path, store_root: Path
) -> None:
    d25 = imagekit.to_docker25_archive(tricky_legacy_archive, tmp_path / "d25.tar")
    store = Store(store_root)
    res = ingest(store, open_source(str(d25)), tags=["t/d25:x"])
    again = open_source("t/d25:x", store)
    assert again.id == res.image_id == open_source(str(tricky_legacy_archive)).id


def test_index_annotations_give_tags_without_manifest_json(tmp_path: Path) -> None:
    layer = imagekit.layer_tar([imagekit.E("hello.txt", data=b"hi")])
    legacy = imagekit.legacy_archive(tmp_path / "l.tar", [layer], tag="demo/app:2")
    d25 = imagekit.to_docker25_archive(legacy, tmp_path / "d25.tar")
    # drop manifest.json: only index.json annotations name the image now
    import tarfile

    stripped = tmp_path / "noman.tar"
    with tarfile.open(d25) as src, tarfile.open(stripped, "w") as dst:
        for m in src.getmembers():
            if m.name != "manifest.json":
                dst.addfile(m, src.extractfile(m) if m.isfile() else None)
    assert open_source(str(stripped)).repo_tags == ["demo/app:2"]


def test_oci_layout_dir_and_ref_selection(tmp_path: Path) -> None:
    layer = imagekit.layer_tar([imagekit.E("a", data=b"x" * 10)])
    root = imagekit.oci_layout_dir(tmp_path / "lay", [layer], ref="v7")
    img = open_source(str(root))
    assert img.config.diff_ids == [imagekit.sha(layer)]
    assert open_source(f"oci:{root}:v7").id == img.id
    with pytest.raises(NotFoundError):
        open_source(f"oci:{root}:nope")


def test_docker_archive_prefix_with_ref(tmp_path: Path) -> None:
    layer = imagekit.layer_tar([imagekit.E("f", data=b"1")])
    path = imagekit.legacy_archive(tmp_path / "a.tar", [layer], tag="x/y:z")
    assert open_source(f"docker-archive:{path}:x/y:z").repo_tags == ["x/y:z"]
    with pytest.raises(NotFoundError):
        open_source(f"docker-archive:{path}:x/y:other")


def test_compressed_legacy_layers_are_sniffed(tmp_path: Path) -> None:
    layers = [imagekit.layer_tar([imagekit.E(f"f{i}", data=bytes([i]) * 1000)]) for i in range(3)]
    path = imagekit.legacy_archive(
        tmp_path / "c.tar", layers, compressions=["gzip", "zstd", "none"]
    )
    img = open_source(str(path))
    assert [d.media_type.rsplit(".", 1)[-1] for d in img.manifest.layers] == ["gzip", "zstd", "tar"]
    for layer, raw in zip(img.layers, layers, strict=True):
        assert layer.open_tar().read() == raw


def test_docker_daemon_source(tricky_legacy: str) -> None:
    img = open_source(f"docker-daemon:{tricky_legacy}")
    assert img.id == _docker_id(tricky_legacy)
    with pytest.raises(SlimageError):
        open_source("docker-daemon:slimage-test/does-not-exist:nope")


def test_missing_store_name_is_a_clean_error(store_root: Path) -> None:
    with pytest.raises(SlimageError, match="No such image"):
        open_source("nothing/here:1", Store(store_root))
