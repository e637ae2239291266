"""Hostile and broken input: each case gets a one-line error naming the file and the
problem, a non-zero exit, and leaves the store exactly as it was (no blob, no layer record,
no ref, nothing in tmp/). Every malicious archive is built here, in the test.

Each archive has a good layer *before* the bad one, so these tests also prove that a
blob already committed for the good layer is rolled back.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from tests.transports import imagekit
from tests.transports.conftest import slimage
from tests.transports.imagekit import E

GOOD = imagekit.layer_tar([E("etc", "dir"), E("etc/hostname", data=b"good\n"), E("dev", "dir")])


def _state(root: Path) -> dict[str, list[str]]:
    out = {}
    for sub in ("blobs/sha256", "layers", "tmp"):
        d = root / sub
        out[sub] = sorted(p.name for p in d.iterdir()) if d.exists() else []
    refs = root / "refs.json"
    out["refs"] = sorted(json.loads(refs.read_text())["refs"]) if refs.exists() else []
    return out


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A store that already holds one unrelated image, to show it is left untouched."""
    root = tmp_path / "store"
    other = imagekit.legacy_archive(
        tmp_path / "other.tar", [imagekit.layer_tar([E("keep.txt", data=b"k")])], tag="keep/me:1"
    )
    slimage("load", "-i", str(other), root=root, check=True)
    return root


def assert_refused(
    store: Path, archive: Path, *needles: str, env: dict[str, str] | None = None
) -> str:
    before = _state(store)
    if env:
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
    try:
        res = slimage("load", "-i", str(archive), root=store)
    finally:
        if env:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
    err = res.stderr.decode()
    assert res.returncode != 0, res.stdout
    assert err.count("\n") == 1 and err.startswith("slimage: error: "), err
    assert "Traceback" not in err
    assert str(archive) in err, err
    for n in needles:
        assert n in err, (n, err)
    assert _state(store) == before  # nothing new: no blob, no layer record, no ref, tmp empty
    assert not _state(store)["tmp"]
    return err


def _archive(tmp_path: Path, bad: bytes, **kw) -> Path:  # type: ignore[no-untyped-def]
    return imagekit.legacy_archive(tmp_path / "bad.tar", [GOOD, bad], **kw)


def test_absolute_path(store: Path, tmp_path: Path) -> None:
    bad = imagekit.layer_tar([E("/etc/cron.d/evil", data=b"* * * * * root sh\n")])
    assert_refused(store, _archive(tmp_path, bad), "/etc/cron.d/evil", "absolute path")


def test_dotdot_component(store: Path, tmp_path: Path) -> None:
    bad = imagekit.layer_tar([E("usr", "dir"), E("usr/../../escape.txt", data=b"x")])
    assert_refused(store, _archive(tmp_path, bad), "usr/../../escape.txt", "'..'")


def test_write_through_symlink(store: Path, tmp_path: Path) -> None:
    bad = imagekit.layer_tar(
        [E("cfg", "symlink", linkname="/etc"), E("cfg/shadow", data=b"root::0:0")]
    )
    assert_refused(store, _archive(tmp_path, bad), "cfg/shadow", "through symlink 'cfg'")


def test_hardlink_escape(store: Path, tmp_path: Path) -> None:
    bad = imagekit.layer_tar([E("h", "hardlink", linkname="../../../etc/shadow")])
    assert_refused(store, _archive(tmp_path, bad), "'h'", "escapes")


def test_hardlink_to_file_not_in_layer(store: Path, tmp_path: Path) -> None:
    bad = imagekit.layer_tar([E("h", "hardlink", linkname="etc/shadow")])
    assert_refused(store, _archive(tmp_path, bad), "'h'", "not earlier in this layer")


def test_hardlink_through_symlink(store: Path, tmp_path: Path) -> None:
    bad = imagekit.layer_tar(
        [E("s", "symlink", linkname="/"), E("h", "hardlink", linkname="s/etc/shadow")]
    )
    assert_refused(store, _archive(tmp_path, bad), "'h'", "through symlink 's'")


def test_device_outside_dev(store: Path, tmp_path: Path) -> None:
    bad = imagekit.layer_tar([E("tmp", "dir"), E("tmp/mem", "chardev", major=1, minor=1)])
    assert_refused(store, _archive(tmp_path, bad), "tmp/mem", "chardev device outside dev/")


def test_device_inside_dev_is_fine(store: Path, tmp_path: Path) -> None:
    ok = imagekit.layer_tar([E("dev", "dir"), E("dev/null", "chardev", major=1, minor=3)])
    res = slimage("load", "-i", str(_archive(tmp_path, ok)), root=store)
    assert res.returncode == 0, res.stderr


def test_duplicate_entry(store: Path, tmp_path: Path) -> None:
    bad = imagekit.layer_tar([E("a.txt", data=b"1"), E("a.txt", data=b"2")])
    assert_refused(store, _archive(tmp_path, bad), "a.txt", "duplicate entry")


def _bomb_layer(size: int) -> tuple[bytes, str]:
    """(gzip bytes, diff_id) of a tar holding SIZE zero bytes, made without holding it."""
    info = tarfile.TarInfo("zeros.bin")
    info.size = size
    header = info.tobuf(format=tarfile.PAX_FORMAT)
    h = hashlib.sha256()
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9, mtime=0) as gz:

        def put(b: bytes) -> None:
            h.update(b)
            gz.write(b)

        put(header)
        zero = bytes(1 << 20)
        left = size
        while left:
            n = min(left, len(zero))
            put(zero[:n])
            left -= n
        put(bytes((512 - size % 512) % 512))
        put(bytes(1024))
    return out.getvalue(), "sha256:" + h.hexdigest()


def _archive_with_blob(tmp_path: Path, blob: bytes, diff_id: str) -> Path:
    """Legacy archive: GOOD, then a pre-compressed layer whose diff_id is given."""
    diff_ids = [imagekit.sha(GOOD), diff_id]
    cfg = imagekit.config_for(diff_ids)
    path = tmp_path / "bomb.tar"
    with tarfile.open(path, "w") as tf:
        for name, data in (("l1/layer.tar", GOOD), ("l2/layer.tar", blob), ("c.json", cfg)):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
        man = json.dumps(
            [
                {
                    "Config": "c.json",
                    "RepoTags": ["b/omb:1"],
                    "Layers": ["l1/layer.tar", "l2/layer.tar"],
                }
            ]
        ).encode()
        ti = tarfile.TarInfo("manifest.json")
        ti.size = len(man)
        tf.addfile(ti, io.BytesIO(man))
    return path


def test_gzip_bomb_ratio(store: Path, tmp_path: Path) -> None:
    blob, diff_id = _bomb_layer(300 << 20)  # 300 MB of zeros -> ~300 kB
    assert len(blob) * 200 < (300 << 20)
    assert_refused(
        store, _archive_with_blob(tmp_path, blob, diff_id), "compression ratio over", "bomb"
    )


def test_gzip_total_cap(store: Path, tmp_path: Path) -> None:
    data = os.urandom(3 << 20)  # incompressible: only the total cap can stop it
    layer = imagekit.layer_tar([E("random.bin", data=data)])
    blob = imagekit.compress(layer, "gzip")
    assert_refused(
        store,
        _archive_with_blob(tmp_path, blob, imagekit.sha(layer)),
        "decompresses to more than",
        env={"SLIMAGE_MAX_LAYER_BYTES": str(1 << 20)},
    )


def test_truncated_archive(store: Path, tmp_path: Path) -> None:
    big = imagekit.layer_tar([E("big.bin", data=os.urandom(200_000))])
    full = imagekit.legacy_archive(tmp_path / "full.tar", [GOOD, big])
    cut = tmp_path / "cut.tar"
    data = full.read_bytes()
    # cut inside the big layer.tar member
    cut.write_bytes(data[: data.index(b"big.bin") + 100_000])
    assert_refused(store, cut, "truncated")


def test_truncated_compressed_layer(store: Path, tmp_path: Path) -> None:
    layer = imagekit.layer_tar([E("f.bin", data=os.urandom(100_000))])
    blob = imagekit.compress(layer, "gzip")[:50_000]
    assert_refused(store, _archive_with_blob(tmp_path, blob, imagekit.sha(layer)), "truncated")


def test_wrong_layer_digest(store: Path, tmp_path: Path) -> None:
    layer = imagekit.layer_tar([E("f.txt", data=b"real")])
    lie = "sha256:" + "ab" * 32
    assert_refused(store, _archive_with_blob(tmp_path, layer, lie), lie)


def test_wrong_config_digest(store: Path, tmp_path: Path) -> None:
    good = imagekit.legacy_archive(tmp_path / "g.tar", [GOOD])
    bad = tmp_path / "renamed.tar"
    with tarfile.open(good) as src, tarfile.open(bad, "w") as dst:
        for m in src.getmembers():
            f = src.extractfile(m) if m.isfile() else None
            if m.name.endswith(".json") and m.name != "manifest.json":
                m.name = "cd" * 32 + ".json"
            elif m.name == "manifest.json":
                man = json.loads(f.read())  # type: ignore[union-attr]
                man[0]["Config"] = "cd" * 32 + ".json"
                raw = json.dumps(man).encode()
                m.size = len(raw)
                f = io.BytesIO(raw)
            dst.addfile(m, f)
    assert_refused(store, bad, "expected sha256:" + "cd" * 32)


def _pack_layout(layout: Path, out: Path) -> Path:
    with tarfile.open(out, "w") as tf:
        for p in sorted(layout.rglob("*")):
            tf.add(p, arcname=str(p.relative_to(layout)), recursive=False)
    return out


def test_missing_blob(store: Path, tmp_path: Path) -> None:
    layer = imagekit.layer_tar([E("x", data=b"x")])
    layout = imagekit.oci_layout_dir(tmp_path / "lay", [GOOD, layer], drop_blob=1)
    assert_refused(
        store, _pack_layout(layout, tmp_path / "oci.tar"), imagekit.sha(layer), "missing"
    )


def test_unknown_media_type(store: Path, tmp_path: Path) -> None:
    layout = imagekit.oci_layout_dir(
        tmp_path / "lay", [GOOD], layer_media_type="application/vnd.example.mystery"
    )
    assert_refused(
        store, _pack_layout(layout, tmp_path / "oci.tar"), "application/vnd.example.mystery"
    )


def test_not_an_archive(store: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not a tar file at all" * 100)
    assert_refused(store, junk)


def test_import_refuses_a_hostile_rootfs(store: Path, tmp_path: Path) -> None:
    before = _state(store)
    bad = tmp_path / "rootfs.tar"
    bad.write_bytes(imagekit.layer_tar([E("etc", "dir"), E("etc/../../x", data=b"x")]))
    res = slimage("import", str(bad), "evil/rootfs:1", root=store)
    err = res.stderr.decode()
    assert res.returncode != 0 and err.count("\n") == 1
    assert str(bad) in err and "etc/../../x" in err
    assert _state(store) == before


def test_random_corruption_never_escapes_as_a_traceback(tmp_path: Path) -> None:
    """Flip bytes / cut a small archive (gzip and plain layers) at random, with fixed seeds:
    every load either succeeds or fails with one SlimageError line. (This found isal's
    IsalError escaping the decompressor.)"""
    import contextlib
    import random

    from slimage.cli.main import main

    layers = [
        imagekit.layer_tar(
            [E("etc", "dir"), E("etc/a", data=b"hello" * 100), E("l", "symlink", linkname="etc/a")]
        ),
        imagekit.layer_tar([E("b", data=bytes(range(256)) * 12), E("h", "hardlink", linkname="b")]),
    ]
    data = imagekit.legacy_archive(
        tmp_path / "base.tar", layers, compressions=["gzip", "none"]
    ).read_bytes()
    rng = random.Random(20261127)
    for i in range(150):
        d = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            d[rng.randrange(len(d))] = rng.randrange(256)
        if rng.random() < 0.2:
            d = d[: rng.randrange(len(d))]
        path = tmp_path / f"f{i}.tar"
        path.write_bytes(bytes(d))
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = main(["--root", str(tmp_path / f"s{i}"), "load", "-i", str(path)])
        if rc:
            assert len(err.getvalue().splitlines()) == 1, err.getvalue()
            assert not _state(tmp_path / f"s{i}")["blobs/sha256"]
