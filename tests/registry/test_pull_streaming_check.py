"""Pull checks each layer while it streams in (`transports.registry.layercheck`): the same
refusals `load` makes, from a real registry that stores and serves whatever it is given,
with nothing tagged and no blob left behind; and a good pull records exactly what the
check of the stored blob used to record."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tarfile
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pytest
import zstandard

from slimage.errors import DigestMismatchError, InvalidImageError, UnsafeArchiveError
from slimage.oci import mediatypes as mt
from slimage.oci.model import Descriptor, Manifest
from slimage.store.images import index_stored_layer
from slimage.store.store import Store
from slimage.transports.registry import pull, push
from slimage.transports.registry.layercheck import PIPE_LIMIT
from slimage.transports.registry.report import DOWNLOADED, SKIPPED
from tests.registry.helpers import make_image, random_bytes, run_cli
from tests.registry.servers import Fault, FaultProxy


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Entry:
    name: str
    data: bytes = b""
    kind: bytes = tarfile.REGTYPE
    link: str = ""


def _tar(entries: list[Entry]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.type = e.kind
            info.mtime = 1700000000
            info.mode = 0o755 if e.kind == tarfile.DIRTYPE else 0o644
            info.linkname = e.link
            if e.kind == tarfile.REGTYPE:
                info.size = len(e.data)
                tf.addfile(info, io.BytesIO(e.data))
            else:
                tf.addfile(info)
    return buf.getvalue()


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=1, mtime=0)


def _busy_tar(files: int = 1500, big: int = 0) -> bytes:
    """A layer with many entries of every common kind, and BIG random bytes in one file."""
    entries = [Entry("usr/", kind=tarfile.DIRTYPE), Entry("usr/share/", kind=tarfile.DIRTYPE)]
    for i in range(files):
        entries.append(Entry(f"usr/share/f{i:05d}", data=f"file {i}\n".encode() * (i % 40)))
    entries.append(Entry("usr/share/link", kind=tarfile.SYMTYPE, link="f00001"))
    entries.append(Entry("usr/share/hard", kind=tarfile.LNKTYPE, link="usr/share/f00002"))
    if big:
        entries.append(Entry("usr/share/blob.bin", data=random_bytes(big)))
    return _tar(entries)


GOOD = _tar([Entry("etc/", kind=tarfile.DIRTYPE), Entry("etc/good", data=b"good\n")])
TRAVERSAL = _tar([Entry("etc/ok", data=b"x"), Entry("../../escaped-by-pull", data=b"pwned")])


def _config(diff_ids: list[str]) -> bytes:
    return json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": {"Cmd": ["/bin/true"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": f"layer {i}"} for i in range(len(diff_ids))],
        }
    ).encode()


def _upload(host: str, repo: str, blob: bytes) -> None:
    """One monolithic upload (POST, then PUT with the digest): the registry keeps and
    serves exactly these bytes, whatever they are."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    start = urllib.request.Request(f"http://{host}/v2/{repo}/blobs/uploads/", method="POST")
    with opener.open(start) as resp:
        location = urllib.parse.urljoin(f"http://{host}/", resp.headers["Location"])
    sep = "&" if "?" in location else "?"
    put = urllib.request.Request(
        f"{location}{sep}digest={_sha(blob)}",
        data=blob,
        method="PUT",
        headers={"Content-Type": "application/octet-stream"},
    )
    with opener.open(put) as resp:
        assert resp.status == 201


def _serve(
    host: str,
    layers: list[tuple[str, bytes]],
    diff_ids: list[str],
    name: str,
) -> tuple[str, Manifest]:
    """Put an image made of LAYERS (media type, blob bytes) and a config naming DIFF_IDS
    into the registry; returns (reference, manifest)."""
    repo = f"slimage-test/{name}-{uuid.uuid4().hex[:8]}"
    config = _config(diff_ids)
    for blob in [config, *(b for _, b in layers)]:
        _upload(host, repo, blob)
    manifest = Manifest.build(
        Descriptor(mt.OCI_CONFIG, _sha(config), len(config)),
        [Descriptor(media, _sha(blob), len(blob)) for media, blob in layers],
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    req = urllib.request.Request(
        f"http://{host}/v2/{repo}/manifests/1",
        data=manifest.raw,
        method="PUT",
        headers={"Content-Type": mt.OCI_MANIFEST},
    )
    with opener.open(req) as resp:
        assert resp.status == 201
    return f"{host}/{repo}:1", manifest


def _one_line(res: subprocess.CompletedProcess[str]) -> str:
    assert res.returncode != 0, res.stdout
    assert "Traceback" not in res.stderr, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    return lines[0]


def _nothing_left(root: Path) -> None:
    """No tag, no image, no blob, no layer record, no temp file: as if never pulled."""
    store = Store(root)
    assert store.refs() == {}
    assert store.images() == {}
    assert list(store.iter_blobs()) == []
    assert not store.layers_dir.exists() or list(store.layers_dir.iterdir()) == []
    assert not store.tmp_dir.exists() or list(store.tmp_dir.iterdir()) == []
    res = run_cli("fsck", store_root=root)
    assert res.returncode == 0, res.stdout + res.stderr


# ---------------------------------------------------------------------------- refusals


def test_traversal_entry_is_refused_and_nothing_stays(registry, tmp_path: Path) -> None:
    """The bad layer sits between two good ones, one of them large: those are downloaded
    (and committed) beside it and must go again with the config."""
    big = _busy_tar(files=300, big=PIPE_LIMIT + (2 << 20))
    layers = [
        (mt.OCI_LAYER_GZIP, _gzip(big)),
        (mt.OCI_LAYER_GZIP, _gzip(TRAVERSAL)),
        (mt.OCI_LAYER_GZIP, _gzip(GOOD)),
    ]
    ref, manifest = _serve(
        registry.host, layers, [_sha(big), _sha(TRAVERSAL), _sha(GOOD)], "traversal"
    )
    root = tmp_path / "store"
    line = _one_line(run_cli("pull", "-q", ref, store_root=root))
    bad = manifest.layers[1].digest
    assert line.startswith("slimage: "), line
    assert ref in line and f"layer {bad}" in line, line
    assert "escaped-by-pull" in line and "'..'" in line, line
    _nothing_left(root)
    assert not (tmp_path / "escaped-by-pull").exists()


def test_diff_id_not_matching_the_config_is_refused(registry, tmp_path: Path) -> None:
    tar = _busy_tar(files=200)
    liar = "sha256:" + "e" * 64
    ref, manifest = _serve(registry.host, [(mt.OCI_LAYER_GZIP, _gzip(tar))], [liar], "diffid")
    root = tmp_path / "store"
    line = _one_line(run_cli("pull", "-q", ref, store_root=root))
    layer = manifest.layers[0].digest
    assert f"{ref}: layer {layer} uncompresses to {_sha(tar)}, the config says {liar}" in line
    _nothing_left(root)


@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_broken_gzip_is_refused(registry, tmp_path: Path, damage: str) -> None:
    """The registry serves the damaged bytes under their own (correct) digest, so only
    decompressing the layer can tell."""
    blob = _gzip(_busy_tar(files=400, big=3 << 20))
    if damage == "truncated":
        blob = blob[: len(blob) * 2 // 3]
    else:
        middle = len(blob) // 2
        blob = (
            blob[:middle]
            + bytes(b ^ 0x5A for b in blob[middle : middle + 4096])
            + blob[middle + 4096 :]
        )
    ref, manifest = _serve(
        registry.host,
        [(mt.OCI_LAYER_GZIP, _gzip(GOOD)), (mt.OCI_LAYER_GZIP, blob)],
        [_sha(GOOD), "sha256:" + "0" * 64],
        damage,
    )
    root = tmp_path / "store"
    line = _one_line(run_cli("pull", "-q", ref, store_root=root))
    assert f"{ref}: layer {manifest.layers[1].digest}" in line, line
    assert "corrupt or truncated compressed data" in line or "truncated tar" in line, line
    _nothing_left(root)


def test_first_problem_in_the_stream_is_the_one_reported(registry, tmp_path: Path) -> None:
    """A traversal in a layer whose gzip is also cut short a little later: the inflating
    thread may meet the cut before the scanning thread meets the entry, but the check
    reports in stream order, as one pass over a stored blob did, so the entry is named."""
    tar = _tar(
        [
            Entry("filler-1", data=random_bytes(1 << 20)),
            Entry("../../escaped-by-pull", data=b"pwned"),
            Entry("filler-2", data=random_bytes(2 << 20)),
        ]
    )
    blob = _gzip(tar)
    blob = blob[: len(blob) - (1 << 20)]
    ref, _ = _serve(registry.host, [(mt.OCI_LAYER_GZIP, blob)], [_sha(tar)], "order")
    store = Store(tmp_path / "store")
    with pytest.raises(UnsafeArchiveError, match="escaped-by-pull"):
        pull(store, ref)
    _nothing_left(tmp_path / "store")


def test_bad_layer_already_in_the_store_is_still_checked(registry, tmp_path: Path) -> None:
    """A blob the store already holds takes the other path (checked from the store); a
    blob this pull did not write is not this pull's to remove."""
    blob = _gzip(TRAVERSAL)
    ref, _ = _serve(registry.host, [(mt.OCI_LAYER_GZIP, blob)], [_sha(TRAVERSAL)], "instore")
    store = Store(tmp_path / "store")
    store.put_bytes(blob)
    with pytest.raises(UnsafeArchiveError, match="escaped-by-pull"):
        pull(store, ref)
    assert store.refs() == {} and store.images() == {}
    assert list(store.iter_blobs()) == [_sha(blob)]


def test_bad_layer_across_a_dropped_connection(
    registry, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    """The check goes on across a resumed download (Range) and across one that starts
    over (the server ignores Range), and still refuses the layer."""
    tar = _tar(
        [Entry("filler", data=random_bytes(2 << 20)), Entry("../../escaped-by-pull", data=b"x")]
    )
    blob = _gzip(tar)
    ref, manifest = _serve(registry.host, [(mt.OCI_LAYER_GZIP, blob)], [_sha(tar)], "drop")
    layer = manifest.layers[0].digest
    proxied = ref.replace(registry.host, fault_proxy.host)
    for faults in (["reset_half"], ["reset_half", "ignore_range"]):
        fault_proxy.faults.clear()
        fault_proxy.seen.clear()
        for kind in faults:
            fault_proxy.add(_fault(layer, kind))
        root = tmp_path / "-".join(faults)
        with pytest.raises(UnsafeArchiveError, match="escaped-by-pull"):
            pull(Store(root), proxied)
        gets = fault_proxy.blob_gets(layer)
        assert len(gets) == 2 and gets[1].headers.get("Range"), gets
        _nothing_left(root)


def _fault(match: str, kind: str) -> Fault:
    return Fault(match=match, kind=kind, method="GET")


def test_wrong_bytes_are_reported_as_a_wrong_blob(
    registry, fault_proxy: FaultProxy, tmp_path: Path
) -> None:
    """Bytes that are not the blob the manifest names (here the gzip magic is flipped,
    so they do not even parse) are reported as that, not as a bad layer."""
    tar = _busy_tar(files=50)
    ref, manifest = _serve(registry.host, [(mt.OCI_LAYER_GZIP, _gzip(tar))], [_sha(tar)], "wrong")
    layer = manifest.layers[0].digest
    fault_proxy.add(_fault(layer, "corrupt"))
    root = tmp_path / "store"
    with pytest.raises(DigestMismatchError, match=f"refused blob {layer}"):
        pull(Store(root), ref.replace(registry.host, fault_proxy.host))
    _nothing_left(root)


def test_pipes_read_like_a_file_and_keep_errors_in_order() -> None:
    """The compressed side reads like a file: the format sniffer asks for 8 bytes and
    must get 8, however the network cut the stream. The tar side hands chunks over as
    they are, and an error of the inflating thread waits behind the bytes before it."""
    from slimage.transports.registry.layercheck import _Pipe

    blob = _Pipe(exact=True)
    for piece in (b"\x1f", b"\x8b\x08", b"\x00\x00\x00", b"\x00\x00\x04rest"):
        blob.put(piece)
    blob.end()
    assert blob.read(8) == b"\x1f\x8b\x08\x00\x00\x00\x00\x00"
    assert blob.read(100) == b"\x04rest"
    assert blob.read(100) == b""

    tar = _Pipe(exact=False)
    tar.put(b"abc")
    tar.put(b"defgh")
    tar.fail(InvalidImageError("cut short"))
    assert tar.read(2) == b"ab"
    assert tar.read(100) == b"c"
    assert tar.read(100) == b"defgh"
    with pytest.raises(InvalidImageError, match="cut short"):
        tar.read(100)


# ---------------------------------------------------------------------------- good pulls


def test_normal_pull_gives_the_same_image(registry, store: Store, tmp_path: Path) -> None:
    """An image made and pushed by slimage, pulled into an empty store: same digest, same
    diff_ids, same `images` row, and the layer records the streaming check wrote are the
    ones the check of the stored blob (`index_stored_layer`) computes."""
    ref = f"{registry.host}/slimage-test/same-{uuid.uuid4().hex[:8]}:1"
    files = {f"app/f{i:04d}": f"line {i}\n".encode() * (i % 50) for i in range(800)}
    files["app/big.bin"] = random_bytes(PIPE_LIMIT + (1 << 20))
    digest = make_image(store, ref, [{"etc/os": b"slimage-test\n"}, files, {"app/cfg": b"x"}])
    push(store, ref)

    root = tmp_path / "pulled"
    res = run_cli("pull", "-q", ref, store_root=root)
    assert res.returncode == 0, res.stderr
    pulled = Store(root)
    assert pulled.resolve(ref) == digest
    manifest = Manifest.parse(pulled.read_blob(digest))
    config = json.loads(pulled.read_blob(manifest.config.digest))
    source_config = json.loads(store.read_blob(manifest.config.digest))
    assert config["rootfs"]["diff_ids"] == source_config["rootfs"]["diff_ids"]

    def row(root_: Path) -> list[dict[str, object]]:
        res = run_cli("images", "--json", store_root=root_)
        assert res.returncode == 0 and not res.stderr, res.stderr
        return json.loads(res.stdout)

    assert row(root) == row(store.root)

    for desc, diff_id in zip(manifest.layers, config["rootfs"]["diff_ids"], strict=True):
        streamed = pulled.layer_info(diff_id)
        assert streamed is not None and streamed.blob == desc.digest
        assert streamed == store.layer_info(diff_id)
        fresh = Store(tmp_path / f"re-{diff_id[7:15]}")
        fresh.put_bytes(pulled.read_blob(desc.digest), desc.digest)
        assert index_stored_layer(fresh, desc, diff_id) == (streamed, True)
    assert pulled.fsck().ok


@pytest.mark.parametrize("compression", ["zstd", "none"])
def test_other_layer_formats_stream_through_the_same_check(
    registry, tmp_path: Path, compression: str
) -> None:
    tar = _busy_tar(files=300, big=1 << 20)
    if compression == "zstd":
        blob, media = zstandard.ZstdCompressor(level=3).compress(tar), mt.OCI_LAYER_ZSTD
    else:
        blob, media = tar, mt.OCI_LAYER
    ref, _ = _serve(registry.host, [(media, blob)], [_sha(tar)], compression)
    store = Store(tmp_path / "store")
    report = pull(store, ref)
    info = store.layer_info(_sha(tar))
    assert info is not None and info.blob == _sha(blob) and info.uncompressed_size == len(tar)
    assert store.resolve(ref) == report.digest

    traversal = (
        TRAVERSAL if compression == "none" else zstandard.ZstdCompressor().compress(TRAVERSAL)
    )
    bad_ref, _ = _serve(registry.host, [(media, traversal)], [_sha(TRAVERSAL)], "bad")
    root = tmp_path / "bad"
    with pytest.raises(UnsafeArchiveError, match="escaped-by-pull"):
        pull(Store(root), bad_ref)
    _nothing_left(root)


def test_layers_already_in_the_store_are_not_downloaded_or_read_again(
    registry, store: Store, tmp_path: Path
) -> None:
    base = f"{registry.host}/slimage-test/base-{uuid.uuid4().hex[:8]}:1"
    make_image(store, base, [{"base/big": random_bytes(2 << 20)}])
    app = base.replace("/base-", "/app-")
    make_image(store, app, [{"app/x": b"x"}], base=base)
    push(store, base)
    push(store, app)

    pulled = Store(tmp_path / "pulled")
    pull(pulled, base)
    opened: list[str] = []
    real_open = pulled.open_blob

    def spy(digest: str) -> BinaryIO:
        opened.append(digest)
        return real_open(digest)

    pulled.open_blob = spy  # type: ignore[method-assign]
    report = pull(pulled, app)
    layers = [b for b in report.blobs if b.kind == "layer"]
    assert [b.action for b in layers] == [SKIPPED, DOWNLOADED]
    manifest = Manifest.parse(pulled.read_blob(report.digest))
    assert not set(opened) & {d.digest for d in manifest.layers}  # indexed: the cheap path


def test_refusal_messages_are_invalid_image_errors(registry, tmp_path: Path) -> None:
    """In-process callers (FROM, docker:// sources) get the same typed errors as before."""
    tar = _busy_tar(files=20)
    ref, _ = _serve(registry.host, [(mt.OCI_LAYER_GZIP, _gzip(tar)[:-8])], [_sha(tar)], "typed")
    with pytest.raises(InvalidImageError, match="corrupt or truncated compressed data"):
        pull(Store(tmp_path / "s"), ref)
    _nothing_left(tmp_path / "s")
