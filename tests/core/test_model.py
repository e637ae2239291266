"""Manifests, indexes, platforms, ChainIDs and the compression sniffer."""

from __future__ import annotations

import io
import json

import pytest

from slimage.errors import InvalidImageError, UnsafeArchiveError, UnsupportedMediaTypeError
from slimage.layers.compression import Compressor, open_decompressed, sniff
from slimage.oci import mediatypes as mt
from slimage.oci.digest import chain_ids, sha256_digest
from slimage.oci.model import Index, Manifest, Platform, parse_manifest_or_index

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def test_chain_id_follows_the_spec() -> None:
    ids = chain_ids([D1, D2])
    assert ids[0] == D1
    assert ids[1] == sha256_digest(f"{D1} {D2}".encode())


def test_index_selects_platform() -> None:
    raw = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mt.DOCKER_MANIFEST_LIST,
            "manifests": [
                {
                    "mediaType": mt.DOCKER_MANIFEST,
                    "digest": D1,
                    "size": 1,
                    "platform": {"os": "linux", "architecture": "amd64"},
                },
                {
                    "mediaType": mt.DOCKER_MANIFEST,
                    "digest": D2,
                    "size": 1,
                    "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
                },
            ],
        }
    ).encode()
    index = parse_manifest_or_index(raw)
    assert isinstance(index, Index)
    assert index.select(Platform.parse("linux/arm64")).digest == D2
    assert index.select(Platform.parse("linux/amd64")).digest == D1
    with pytest.raises(InvalidImageError, match="no manifest for platform linux/s390x"):
        index.select(Platform.parse("linux/s390x"))


def test_manifest_keeps_exact_bytes_and_refuses_unknown_layers() -> None:
    doc = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": D1, "size": 2},
        "layers": [{"mediaType": mt.OCI_LAYER_GZIP, "digest": D2, "size": 3}],
    }
    raw = json.dumps(doc, indent=7).encode()
    m = Manifest.parse(raw)
    assert m.raw == raw and m.digest == sha256_digest(raw)
    doc["layers"][0]["mediaType"] = "application/x-weird"
    with pytest.raises(UnsupportedMediaTypeError, match="unknown media type"):
        Manifest.parse(json.dumps(doc).encode())


def test_oversized_manifest_refused() -> None:
    with pytest.raises(InvalidImageError, match="4 MiB"):
        Manifest.parse(b" " * (4 * 1024 * 1024 + 1))


@pytest.mark.parametrize("kind", ["gzip", "zstd", "none"])
def test_sniff_and_roundtrip(kind: str) -> None:
    data = b"layer bytes " * 5000
    comp = Compressor(kind)
    blob = comp.compress(data) + comp.flush()
    assert sniff(blob[:8]) == kind
    stream, found = open_decompressed(io.BytesIO(blob))
    assert found == kind and stream.read() == data


def test_gzip_is_deterministic() -> None:
    data = b"x" * 100000
    a, b = Compressor("gzip"), Compressor("gzip")
    assert a.compress(data) + a.flush() == b.compress(data) + b.flush()
    c = Compressor("gzip")
    head = (c.compress(data) + c.flush())[:10]
    assert head[4:8] == b"\0\0\0\0"  # no mtime
    assert head[3] & 0x08 == 0  # no file name


def test_bomb_is_refused() -> None:
    comp = Compressor("gzip", level=3)
    chunk = b"\0" * (1 << 20)
    blob = b"".join(comp.compress(chunk) for _ in range(300)) + comp.flush()
    stream, _ = open_decompressed(io.BytesIO(blob), name="bomb.tar.gz", max_ratio=100)
    with pytest.raises(UnsafeArchiveError, match="bomb.tar.gz: compression ratio"):
        while stream.read(1 << 20):
            pass


def test_truncated_gzip_is_a_clear_error() -> None:
    comp = Compressor("gzip")
    blob = comp.compress(b"abc" * 100000) + comp.flush()
    stream, _ = open_decompressed(io.BytesIO(blob[: len(blob) // 2]), name="cut.gz")
    with pytest.raises(InvalidImageError, match="cut.gz: corrupt or truncated"):
        while stream.read(1 << 16):
            pass
