"""The store: one copy per digest, verified reads, atomic writes, refs, gc and fsck."""

from __future__ import annotations

import io
import multiprocessing
import tarfile
from pathlib import Path

import pytest

from slimage.errors import BlobNotFoundError, DigestMismatchError, ImageNotFoundError
from slimage.image import Image, Layer
from slimage.mutate import ImageAssembler
from slimage.oci import mediatypes as mt
from slimage.oci.digest import sha256_digest
from slimage.oci.model import Descriptor, HistoryEntry, ImageConfig, Manifest
from slimage.store.images import ingest, open_image
from slimage.store.store import Store


def make_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def image_from_tars(tars: list[bytes]) -> Image:
    diff_ids = [sha256_digest(t) for t in tars]
    config = ImageConfig.from_data(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["true"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": f"step {i}"} for i in range(len(tars))],
        }
    )
    layers = [
        Layer(Descriptor(mt.OCI_LAYER, d, len(t)), d, lambda t=t: io.BytesIO(t))
        for d, t in zip(diff_ids, tars, strict=True)
    ]
    manifest = Manifest.build(
        Descriptor(mt.OCI_CONFIG, config.digest, len(config.raw)), [x.descriptor for x in layers]
    )
    return Image(manifest, config, layers, source="test")


def blob_files(store: Store) -> set[str]:
    return {p.name for p in store.blobs_dir.iterdir()}


def test_blob_roundtrip_is_verified_and_deduplicated(tmp_path: Path) -> None:
    store = Store(tmp_path)
    d1 = store.put_bytes(b"hello")
    d2 = store.put_bytes(b"hello")
    assert d1 == d2 == sha256_digest(b"hello")
    assert len(blob_files(store)) == 1
    assert store.read_blob(d1) == b"hello"
    # Corrupt the blob on disk: the next read must refuse it.
    store.blob_path(d1).write_bytes(b"jello")
    with pytest.raises(DigestMismatchError):
        store.read_blob(d1)
    report = store.fsck()
    assert report.bad == [d1] and not report.ok


def test_wrong_digest_leaves_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with pytest.raises(DigestMismatchError):
        store.put_bytes(b"data", expected=sha256_digest(b"other"))
    assert blob_files(store) == set()
    assert list(store.tmp_dir.iterdir()) == []


def test_missing_blob_is_a_clear_error(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with pytest.raises(BlobNotFoundError, match="not in the store"):
        store.read_blob(sha256_digest(b"nope"))


def test_ingest_shares_layers_between_images(tmp_path: Path) -> None:
    store = Store(tmp_path)
    base = make_tar({"etc/os-release": b"ID=test\n" * 100})
    app = make_tar({"app/index.js": b"console.log(1)\n"})
    first = ingest(store, image_from_tars([base]), tags=["base:1"])
    assert (first.layers_added, first.layers_skipped) == (1, 0)
    second = ingest(store, image_from_tars([base, app]), tags=["app:1"])
    assert (second.layers_added, second.layers_skipped) == (1, 1)
    img = open_image(store, "app:1")
    assert [x.size for x in img.layers] == [800, 15]
    with img.layers[1].open_tar() as fh:
        assert fh.read() == app
    # Layers were stored compressed (gzip), and the diff_id is still the tar's.
    assert img.layers[0].descriptor.media_type == mt.OCI_LAYER_GZIP
    with pytest.raises(ImageNotFoundError):
        store.resolve("app")  # only app:1 exists; a bare name means app:latest


def test_resolve_by_tag_digest_and_id_prefix(tmp_path: Path) -> None:
    store = Store(tmp_path)
    res = ingest(store, image_from_tars([make_tar({"a": b"1"})]), tags=["demo:v1"])
    assert store.resolve("demo:v1") == res.manifest_digest
    assert store.resolve(res.image_id[7:19]) == res.manifest_digest
    assert store.resolve(f"demo@{res.manifest_digest}") == res.manifest_digest
    with pytest.raises(ImageNotFoundError):
        store.resolve("demo:v2")


def test_gc_keeps_referenced_and_drops_the_rest(tmp_path: Path) -> None:
    store = Store(tmp_path)
    keep = ingest(store, image_from_tars([make_tar({"a": b"1"})]), tags=["keep:1"])
    drop = ingest(store, image_from_tars([make_tar({"b": b"2"})]), tags=["drop:1"])
    orphan = store.put_bytes(b"orphan")
    store.remove_image(drop.manifest_digest)
    report = store.gc()
    assert orphan in report.removed_blobs
    assert drop.manifest_digest in report.removed_blobs
    assert store.has_blob(keep.manifest_digest)
    assert open_image(store, "keep:1").layers[0].size == 1
    assert store.fsck().ok


def _tag_many(root: str, start: int) -> None:
    store = Store(root)
    digest = store.resolve("base:1")
    for i in range(start, start + 25):
        store.add_image(digest, tags=[f"t:{i}"])


def test_two_processes_updating_refs_lose_nothing(tmp_path: Path) -> None:
    store = Store(tmp_path)
    ingest(store, image_from_tars([make_tar({"a": b"1"})]), tags=["base:1"])
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_tag_many, args=(str(tmp_path), n * 100)) for n in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    refs = store.refs()
    assert sum(1 for name in refs if name.startswith("t:")) == 75


def test_assembler_appends_layers_and_empty_history(tmp_path: Path) -> None:
    store = Store(tmp_path)
    ingest(store, image_from_tars([make_tar({"base": b"b"})]), tags=["base:1"])
    asm = ImageAssembler(store, open_image(store, "base:1"))
    asm.add_layer(io.BytesIO(make_tar({"app/x": b"xyz"})), HistoryEntry(created_by="COPY x /app"))
    asm.runtime["Cmd"] = ["/app/x"]
    asm.add_history(HistoryEntry(created_by='CMD ["/app/x"]'))
    res = asm.commit(tags=["built:1"])
    img = open_image(store, "built:1")
    assert img.id == res.image_id
    assert len(img.layers) == 2
    assert [h.empty_layer for h in img.config.history] == [False, False, True]
    assert img.config.config["Cmd"] == ["/app/x"]
    assert img.config.layer_history()[2][1] is None


def _write_and_linger(root: str, ready, release) -> None:  # type: ignore[no-untyped-def]
    store = Store(root)
    store.put_bytes(b"in flight, no ref yet")
    ready.set()
    release.wait(30)


def test_gc_waits_for_a_process_that_is_still_writing(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    ready, release = ctx.Event(), ctx.Event()
    writer = ctx.Process(target=_write_and_linger, args=(str(tmp_path), ready, release))
    writer.start()
    assert ready.wait(30)
    store = Store(tmp_path)
    gc_proc = ctx.Process(target=lambda: Store(str(tmp_path)).gc())
    gc_proc.start()
    gc_proc.join(1.0)
    assert gc_proc.is_alive()  # blocked: the writer's blob may be about to get a ref
    assert store.has_blob(sha256_digest(b"in flight, no ref yet"))
    release.set()
    writer.join(30)
    gc_proc.join(30)
    assert not store.has_blob(sha256_digest(b"in flight, no ref yet"))  # collected after


def test_pins_keep_an_untagged_image_and_gc_prunes_unpacked_layers(tmp_path: Path) -> None:
    store = Store(tmp_path)
    kept = ingest(store, image_from_tars([make_tar({"k": b"1"})]), tags=["kept:1"])
    ran = ingest(store, image_from_tars([make_tar({"r": b"2"})]), tags=["ran:1"])
    gone = ingest(store, image_from_tars([make_tar({"g": b"3"})]), tags=["gone:1"])
    unpacked = tmp_path / "layers-unpacked"
    for name in ("kept:1", "ran:1", "gone:1"):
        (unpacked / open_image(store, name).layers[0].diff_id[7:]).mkdir(parents=True)
    (unpacked / "empty").mkdir()
    store.pin("container-abc", ran.manifest_digest)  # a container still uses it
    store.remove_image(ran.manifest_digest)
    store.remove_image(gone.manifest_digest)
    report = store.gc()
    assert store.has_blob(ran.manifest_digest) and store.has_blob(kept.manifest_digest)
    assert not store.has_blob(gone.manifest_digest)
    assert report.removed_unpacked == 1
    assert len(list(unpacked.iterdir())) == 3  # kept, ran and empty
    store.unpin("container-abc")
    assert store.gc().removed_unpacked == 1
    assert not store.has_blob(ran.manifest_digest)
    assert store.fsck().ok
