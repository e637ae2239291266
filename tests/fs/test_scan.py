"""Scanning a layer in place (seeking over data) sees exactly what streaming sees, and the
digest check still catches a corrupted layer."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest

from slimage.errors import DigestMismatchError, InvalidImageError
from slimage.fs.scan import FileSlice, scan_layer
from slimage.image import Layer
from slimage.layers.tarscan import TarScanner, scan
from slimage.oci.model import Descriptor
from tests.fs.layertar import LayerTar


def sample(fmt: int) -> bytes:
    t = LayerTar(fmt).dir("usr").file("usr/a", b"abc").file("big", 70000)
    t.file("usr/share/" + "long-directory-name/" * 9 + "f", 1234)
    t.symlink("usr/" + "l" * 120, "target/" + "t" * 110).hardlink("usr/h", "usr/a")
    return t.dir("opt").opaque("opt").whiteout("usr/gone").bytes()


def entries_of(scanner_feed) -> list[tuple]:
    got: list[tuple] = []
    scanner_feed(lambda e: got.append((e.name, e.kind, e.size, e.mode, e.uid, e.linkname)))
    return got


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT])
def test_seek_scan_equals_stream_scan(tmp_path: Path, fmt: int) -> None:
    if fmt == tarfile.USTAR_FORMAT:
        data = LayerTar(fmt).dir("a").file("a/b", 5000).symlink("a/c", "b").bytes()
    else:
        data = sample(fmt)
    prefix = b"x" * 1536  # the layer sits inside a bigger file, as in a docker save
    path = tmp_path / "outer"
    path.write_bytes(prefix + data + b"trailing")
    streamed = entries_of(lambda cb: scan(io.BytesIO(data), cb))
    fd = os.open(path, os.O_RDONLY)
    try:

        def seek(cb):
            s = TarScanner(cb)
            s.scan_file(fd, len(prefix), len(data))
            s.close()

        assert entries_of(seek) == streamed
    finally:
        os.close(fd)


def layer_for(path: Path, data: bytes, offset: int) -> tuple[Layer, FileSlice]:
    diff_id = "sha256:" + hashlib.sha256(data).hexdigest()

    def opener():
        fh = open(path, "rb")
        fh.seek(offset)
        return io.BytesIO(fh.read(len(data)))

    layer = Layer(
        Descriptor("application/vnd.oci.image.layer.v1.tar", diff_id, len(data)), diff_id, opener
    )
    return layer, FileSlice(str(path), offset, len(data))


def test_in_place_scan_verifies_unless_told_not_to(tmp_path: Path) -> None:
    data = sample(tarfile.PAX_FORMAT)
    path = tmp_path / "layer.tar"
    path.write_bytes(data)
    layer, where = layer_for(path, data, 0)
    seen: list[str] = []
    assert scan_layer(layer, lambda e: seen.append(e.name), where=where) == "seek+verify"
    assert "big" in seen
    # flip one byte of file data: headers still parse, the digest does not match
    bad = bytearray(data)
    bad[data.index(b"abc")] ^= 1
    path.write_bytes(bytes(bad))
    with pytest.raises(DigestMismatchError, match="expected sha256:"):
        scan_layer(layer, lambda e: None, where=where)
    assert scan_layer(layer, lambda e: None, where=where, verify=False) == "seek"
    # streaming (no slice) verifies too
    with pytest.raises(DigestMismatchError):
        scan_layer(layer, lambda e: None)


def test_truncated_layer_in_place(tmp_path: Path) -> None:
    data = sample(tarfile.PAX_FORMAT)
    path = tmp_path / "cut.tar"
    path.write_bytes(data[:3000])
    layer, _ = layer_for(path, data, 0)
    with pytest.raises(InvalidImageError, match="truncated"):
        scan_layer(layer, lambda e: None, where=FileSlice(str(path), 0, 3000), verify=False)


def test_data_sinks_get_file_bytes_when_seeking(tmp_path: Path) -> None:
    data = sample(tarfile.GNU_FORMAT)
    path = tmp_path / "l.tar"
    path.write_bytes(data)
    layer, where = layer_for(path, data, 0)
    got: dict[str, bytearray] = {}

    def on_entry(e):
        if e.kind == "file":
            return got.setdefault(e.name, bytearray()).extend
        return None

    scan_layer(layer, on_entry, where=where)
    assert bytes(got["usr/a"]) == b"abc" and len(got["big"]) == 70000
