"""The deterministic layer writer: same tree -> same bytes, Docker/OCI-conformant entries,
overlay upper dirs turned into changesets that reproduce the merged view."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from slimage.imageops import image_history
from slimage.layers.extract import extract_layer
from slimage.layers.tarscan import iter_entries
from slimage.layers.writer import LayerWriter, stream_layer, stream_tree, write_tree
from slimage.mutate import ImageAssembler
from slimage.oci.model import HistoryEntry
from slimage.store.store import Store
from slimage.transports.sources import open_source
from tests.images.conftest import tree_digest


def _make_tree(root: Path, mtime: int) -> None:
    (root / "b/deep").mkdir(parents=True)
    (root / "a").mkdir()
    (root / "a/file").write_bytes(b"hello")
    (root / "b/deep/x").write_bytes(b"x" * 5000)
    os.link(root / "a/file", root / "b/hard")
    (root / "link").symlink_to("a/file")
    long = "n" * 120
    (root / long).write_text("long name")
    (root / "ünï").write_text("unicode")
    (root / "a-b").write_text("sorts before a/ in bytes but not in walk order")
    for p in [*root.rglob("*"), root]:
        os.utime(p, (mtime, mtime), follow_symlinks=False)


def _tar_of(root: Path, **kw) -> bytes:  # type: ignore[no-untyped-def]
    buf = io.BytesIO()
    write_tree(root, buf, **kw)
    return buf.getvalue()


def test_same_tree_same_bytes_and_epoch_clamps(tmp_path: Path) -> None:
    t1, t2 = tmp_path / "t1", tmp_path / "t2"
    t1.mkdir()
    t2.mkdir()
    _make_tree(t1, 1_800_000_000)
    _make_tree(t2, 1_900_000_000)  # built "later"
    assert _tar_of(t1) == _tar_of(t1)
    assert _tar_of(t1) != _tar_of(t2)
    assert _tar_of(t1, epoch=1_700_000_000) == _tar_of(t2, epoch=1_700_000_000)
    entries = list(iter_entries(io.BytesIO(_tar_of(t1, epoch=1_700_000_000))))
    assert {e.mtime for e in entries} == {1_700_000_000}


def test_entries_are_ordered_numeric_and_linked(tmp_path: Path) -> None:
    root = tmp_path / "t"
    root.mkdir()
    _make_tree(root, 1_800_000_000)
    if os.geteuid() == 0:
        os.chown(root / "a/file", 1000, 1000)
    data = _tar_of(root)
    with tarfile.open(fileobj=io.BytesIO(data)) as tf:
        members = tf.getmembers()
    names = [m.name for m in members]
    assert names[:4] == ["a", "a/file", "a-b", "b"]  # parent before children, then siblings
    assert all(m.uname == "" and m.gname == "" for m in members)
    hard = next(m for m in members if m.name == "b/hard")
    assert hard.islnk() and hard.linkname == "a/file"
    assert next(m for m in members if m.name == "link").linkname == "a/file"
    assert "n" * 120 in names and "ünï" in names
    if os.geteuid() == 0:
        assert next(m for m in members if m.name == "a/file").uid == 1000


def test_roundtrip_through_extract(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    _make_tree(src, 1_800_000_000)
    os.setxattr(src / "a/file", "user.k", b"\x00\xffbinary")
    dest = tmp_path / "dest"
    extract_layer(io.BytesIO(_tar_of(src)), dest)
    assert tree_digest(dest) == tree_digest(src)
    assert os.getxattr(dest / "a/file", "user.k") == b"\x00\xffbinary"
    assert os.stat(dest / "b/hard").st_ino == os.stat(dest / "a/file").st_ino


def test_synthetic_entries_and_stream_into_the_store(tmp_path: Path) -> None:
    def fill(w: LayerWriter) -> None:
        w.add_dir("etc", mtime=0)
        w.add_bytes("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", mtime=0)
        w.add_symlink("etc/alias", "passwd", mtime=0)
        w.add_whiteout("etc/shadow", mtime=0)
        w.add_opaque("var", mtime=0)

    store = Store(tmp_path / "store")
    asm = ImageAssembler(store)
    info = asm.add_layer(stream_layer(fill), HistoryEntry(created_by="synthetic"))
    asm.commit(tags=["syn/thetic:1"])
    # Docker SIZE: regular-file bytes + symlink target bytes; whiteouts count 0
    assert info.size == len(b"root:x:0:0::/root:/bin/sh\n") + len("passwd")
    img = open_source("syn/thetic:1", store)
    assert image_history(img)[0].size == info.size
    names = [e.name for e in iter_entries(img.layers[0].open_tar())]
    assert names == ["etc", "etc/passwd", "etc/alias", "etc/.wh.shadow", "var/.wh..wh..opq"]
    # and again: byte-identical layer, so the same diff_id
    again = ImageAssembler(store).add_layer(stream_layer(fill), HistoryEntry())
    assert again.diff_id == info.diff_id


def test_writer_error_surfaces_to_the_reader(tmp_path: Path) -> None:
    def fill(w: LayerWriter) -> None:
        w.add_bytes("a", b"1")
        w.add_bytes("a", b"2")

    stream = stream_layer(fill)
    with pytest.raises(Exception, match="added twice"):
        while stream.read(1 << 16):
            pass


@pytest.mark.usefixtures("need_root")
def test_overlay_upper_becomes_a_changeset(tmp_path: Path) -> None:
    """Mount a real overlayfs, change things, and write the upper dir as a layer: applied
    on the lower tree it gives exactly the merged view."""
    lower, upper, work, mnt = (tmp_path / n for n in ("lower", "upper", "work", "mnt"))
    for d in (lower, upper, work, mnt):
        d.mkdir()
    (lower / "etc").mkdir()
    (lower / "etc/gone").write_text("delete me")
    (lower / "opq").mkdir()
    (lower / "opq/old").write_text("hidden by opaque")
    (lower / "keep").write_text("k")
    try:
        subprocess.run(
            [
                "mount",
                "-t",
                "overlay",
                "overlay",
                "-o",
                f"lowerdir={lower},upperdir={upper},workdir={work}",
                str(mnt),
            ],
            check=True,
            capture_output=True,
        )
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"cannot mount overlayfs: {exc.stderr.decode().strip()}")
    try:
        (mnt / "etc/gone").unlink()
        subprocess.run(["rm", "-rf", str(mnt / "opq")], check=True)
        (mnt / "opq").mkdir()
        (mnt / "opq/new").write_text("n")
        (mnt / "added").write_text("a")
        merged = tree_digest(mnt)
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
    layer = b"".join(iter(stream_tree(upper, overlay_upper=True).read, b""))
    names = [e.name for e in iter_entries(io.BytesIO(layer))]
    assert "etc/.wh.gone" in names and "opq/.wh..wh..opq" in names
    assert not any("trusted.overlay" in (e.xattrs or {}) for e in iter_entries(io.BytesIO(layer)))
    flat = tmp_path / "flat"
    extract_layer(io.BytesIO(_tar_of(lower)), flat)
    extract_layer(io.BytesIO(layer), flat)
    assert tree_digest(flat) == merged
    assert (
        hashlib.sha256(layer).digest()
        == hashlib.sha256(_tar_of(upper, overlay_upper=True)).digest()
    )


def test_archive_ends_like_go_archive_tar(tmp_path: Path) -> None:
    """Two zero blocks and no record padding, as Go's archive/tar (BuildKit, Docker) ends a
    layer: an empty layer then has Docker's well-known empty-layer diff_id."""
    import hashlib
    import io

    from slimage.layers.writer import LayerWriter

    empty = io.BytesIO()
    LayerWriter(empty).close()
    assert empty.getvalue() == b"\0" * 1024
    assert (
        "sha256:" + hashlib.sha256(empty.getvalue()).hexdigest()
        == "sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef"
    )
    one = io.BytesIO()
    with LayerWriter(one) as w:
        w.add_bytes("f.txt", b"x" * 600)
    # pax-free header 512 + data padded to 1024 + end 1024: no 10 KiB record padding
    assert len(one.getvalue()) == 512 + 1024 + 1024
