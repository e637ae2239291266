"""Assembling bases: contents, determinism, options, and refusing bad input."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from slimage.bases.builder import BaseSpec, build, make_repository, plan
from slimage.bases.errors import DebFormatError, HashMismatchError
from slimage.bases.lockfile import Lockfile
from slimage.store.images import open_image
from slimage.store.store import Store
from tests.bases import support


def _files(store_root: Path, tag: str) -> dict[str, tuple]:
    return support.image_files(open_image(Store(store_root), tag))


# -- real Debian -------------------------------------------------------------------------


def test_static_preset_has_what_distroless_adds(tmp_path: Path) -> None:
    lock, _ = support.preset_lock("static")
    ca = tmp_path / "extra.crt"
    ca.write_bytes(support.host_ca_cert())
    root = tmp_path / "store"
    result = build(lock, Store(root), tags=["t/static"], cache_dir=support.CACHE, add_ca=[ca])
    files = _files(root, "t/static")
    passwd = bytes(files["etc/passwd"][5]).decode()
    assert (
        "root:x:0:0:" in passwd
        and "nobody:x:65534:65534:" in passwd
        and "nonroot:x:65532:65532:" in passwd
    )
    assert "nonroot:x:65532:" in bytes(files["etc/group"][5]).decode()
    assert files["tmp"][0] == "dir" and files["tmp"][1] == 0o1777
    assert files["home/nonroot"][:4] == ("dir", 0o700, 65532, 65532)
    assert b'ID="debian"' in bytes(files["etc/os-release"][5])
    assert b"hosts:" in bytes(files["etc/nsswitch.conf"][5])
    assert "usr/share/zoneinfo/Europe/Paris" in files  # tzdata
    bundle = bytes(files["etc/ssl/certs/ca-certificates.crt"][5])
    n_package = sum(1 for p in files if p.startswith("usr/share/ca-certificates/"))
    assert n_package == 0  # only the generated bundle, as distroless does
    assert bundle.count(b"BEGIN CERTIFICATE") > 100
    assert support.host_ca_cert().strip() in bundle  # --add-ca, once
    assert bundle.count(support.host_ca_cert().strip()) == 1
    assert not any(p.startswith("usr/share/man/") for p in files)
    assert "var/lib/dpkg/status.d/tzdata" in files
    assert [layer.group for layer in result.layers] == ["static"]


def test_building_twice_from_the_lockfile_gives_the_same_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock, _ = support.preset_lock("nodejs")
    path = tmp_path / "nodejs.lock.json"
    lock.write(path)
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    a = build(Lockfile.load(path), Store(tmp_path / "a"), tags=["t/n"], cache_dir=support.CACHE)
    b = build(Lockfile.load(path), Store(tmp_path / "b"), tags=["t/n"], cache_dir=support.CACHE)
    assert a.manifest_digest == b.manifest_digest and a.image_id == b.image_id
    assert [layer.group for layer in a.layers] == ["static", "base", "cc", "nodejs"]
    # SOURCE_DATE_EPOCH is honoured: a different epoch is a different (but again stable) image.
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    c = build(Lockfile.load(path), Store(tmp_path / "c"), tags=["t/n"], cache_dir=support.CACHE)
    assert c.manifest_digest != a.manifest_digest
    img = open_image(Store(tmp_path / "c"), "t/n")
    assert img.config.data["created"] == "2023-11-14T22:13:20Z"
    files = support.image_files(img)
    assert max(f[6] for f in files.values()) <= 1700000000


def test_nonroot_debug_and_single_layer_options(tmp_path: Path) -> None:
    support.need_debian()
    spec = BaseSpec(preset="static", nonroot=True, debug=True, single_layer=True)
    lock, _ = plan(spec, make_repository(spec, support.CACHE))
    assert lock.groups == ["static", "debug"]
    build(lock, Store(tmp_path), tags=["t/s"], cache_dir=support.CACHE)
    img = open_image(Store(tmp_path), "t/s")
    cfg = img.config.data["config"]
    assert cfg["User"] == "65532" and cfg["WorkingDir"] == "/home/nonroot"
    assert cfg["Entrypoint"] == ["/busybox/sh"]
    assert any(e.startswith("PATH=") and e.endswith(":/busybox") for e in cfg["Env"])
    assert len(img.layers) == 1
    files = support.image_files(img)
    assert files["busybox/sh"][0] == "symlink" and files["busybox/sh"][4] == "/bin/busybox"
    assert files["bin/busybox"][0] == "file"


def test_cli_lock_then_build_from_lock_and_json(tmp_path: Path) -> None:
    support.need_debian()
    env = {"SLIMAGE_HOME": str(tmp_path / "store"), "SLIMAGE_CACHE": str(support.CACHE)}
    import os

    env = dict(os.environ, **env)
    lockfile = tmp_path / "musl.lock"

    def run(*a: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "slimage.cli.main", *a]
        return subprocess.run(cmd, capture_output=True, text=True, env=env)

    r = run("base", "lock", "musl", "-o", str(lockfile))
    assert r.returncode == 0, r.stderr
    data = json.loads(lockfile.read_text())
    names = {p["name"] for p in data["packages"]}
    assert {"musl", "busybox-static", "tzdata"} <= names
    r = run("base", "build", "--lock", str(lockfile), "-t", "t/musl", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["preset"] == "musl" and out["packages"] == len(data["packages"])
    r2 = run("base", "build", "--lock", str(lockfile), "-t", "t/musl2", "--json")
    assert json.loads(r2.stdout)["manifest_digest"] == out["manifest_digest"]


@pytest.mark.parametrize(
    "args,message",
    [
        (["base", "build", "alpine3"], "unknown base preset 'alpine3'"),
        (
            ["base", "build", "--packages", "libc6,nosuchpkg-xyz"],
            "package 'nosuchpkg-xyz' not found",
        ),
        (["base", "build"], "name a preset"),
        (["base", "build", "debian"], "--full"),
        (["base", "build", "--lock", "/nonexistent/lock.json"], "no such lockfile"),
    ],
)
def test_cli_bad_input_is_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    if "nosuchpkg-xyz" in args:
        support.need_debian()
    import os

    env = dict(os.environ, SLIMAGE_HOME=str(tmp_path / "store"), SLIMAGE_CACHE=str(support.CACHE))
    r = subprocess.run(
        [sys.executable, "-m", "slimage.cli.main", *args], capture_output=True, text=True, env=env
    )
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in r.stderr


# -- faults on a local signed mirror ---------------------------------------------------


def _nothing_stored(root: Path) -> None:
    store = Store(root)
    assert store.refs() == {}
    assert not (root / "refs").exists() or store.images() == {}


def test_truncated_deb_is_an_error_and_no_image_is_written(tmp_path: Path) -> None:
    mirror = support.LocalMirror("truncated")
    mirror.add(
        "app",
        "1",
        files={"usr/bin/app": b"\x7fELF" + bytes(range(256)) * 400},
        mutate=lambda d: d[: len(d) - 2000],
    )
    mirror.publish()
    spec = mirror.spec(packages=["app"])
    lock, _ = plan(spec, make_repository(spec, tmp_path / "cache"))
    with pytest.raises(DebFormatError, match="app_1_amd64.deb"):
        build(lock, Store(tmp_path / "store"), tags=["t/broken"], cache_dir=tmp_path / "cache")
    _nothing_stored(tmp_path / "store")
    store = Store(tmp_path / "store")
    # No layer for the group that failed: the blobs present are complete layers of earlier groups.
    for digest in store.iter_blobs():
        assert (
            hashlib.sha256(store.blob_path(digest).read_bytes()).hexdigest() == digest.split(":")[1]
        )


def test_deb_not_matching_its_hash_is_refused_and_not_cached(tmp_path: Path) -> None:
    mirror = support.LocalMirror("liar")
    mirror.add("app", "1", listed_bytes=b"what the index promised")
    mirror.publish()
    spec = mirror.spec(packages=["app"])
    cache = tmp_path / "cache"
    lock, _ = plan(spec, make_repository(spec, cache))
    with pytest.raises(HashMismatchError, match="app 1: .*refused"):
        build(lock, Store(tmp_path / "store"), tags=["t/liar"], cache_dir=cache)
    _nothing_stored(tmp_path / "store")
    debs = cache / "debs"
    app = next(p for p in lock.packages if p.name == "app")
    assert not (debs / f"{app.sha256}.deb").exists()
    assert not any(p.name.startswith(".part-") for p in debs.iterdir())


def test_local_mirror_custom_packages_build(tmp_path: Path) -> None:
    mirror = support.LocalMirror("custom")
    mirror.add(
        "tool",
        "2.0",
        fields={"Depends": "libtool1 (>= 1.5)"},
        files={"usr/bin/tool": b"#!/bin/false\n"},
    )
    mirror.add("libtool1", "1.4")
    mirror.add("libtool1", "1.6", files={"usr/lib/libtool1.so.1": b"lib"})
    mirror.publish()
    spec = mirror.spec(packages=["tool"])
    lock, res = plan(spec, make_repository(spec, tmp_path / "cache"))
    assert res.packages["libtool1"].version == "1.6"  # the constraint picks the newer one
    assert "debconf" not in res.packages and "openssl" not in res.packages  # data-only static group
    build(lock, Store(tmp_path / "store"), tags=["t/tool"], cache_dir=tmp_path / "cache")
    files = _files(tmp_path / "store", "t/tool")
    assert "usr/bin/tool" in files and "usr/lib/libtool1.so.1" in files
    assert "usr/share/man/man1/x.1.gz" not in files  # docs are dropped by default
    assert b"Test_Root" not in bytes(files["etc/ssl/certs/ca-certificates.crt"][5])
    assert bytes(files["etc/ssl/certs/ca-certificates.crt"][5]).count(b"BEGIN CERTIFICATE") == 1


def test_rebuild_into_the_same_store_reuses_layers_only_for_the_same_inputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lock, _ = support.preset_lock("cc")
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    store = Store(tmp_path / "store")
    cache = tmp_path / "cache"
    (cache / "debs").mkdir(parents=True)
    for p in (support.CACHE / "debs").glob("*.deb"):
        (cache / "debs" / p.name).symlink_to(p)
    first = build(lock, store, tags=["t/cc"], cache_dir=cache)
    again = build(lock, store, tags=["t/cc2"], cache_dir=cache)
    assert first.reused_layers == 0 and again.reused_layers == 3
    assert again.manifest_digest == first.manifest_digest
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1600000000")
    other = build(lock, store, tags=["t/cc3"], cache_dir=cache)
    assert other.reused_layers == 0 and other.manifest_digest != first.manifest_digest
