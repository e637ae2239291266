"""Attacks on the writing side (`slimage copy`/`save` into every sink), as a user would
run them: the real CLI against a temporary store, with hostile archives made here.

Each must fail with a one-line message naming what and where, exit non-zero, leave no
partial output (no file, no temp file, no half layout, no tag in the registry), and leave
the store passing `slimage fsck`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.registry import servers
from tests.transports import imagekit
from tests.transports.conftest import slimage
from tests.transports.imagekit import E

LAYER = imagekit.layer_tar([E("etc", "dir"), E("etc/hello", data=b"hello world\n" * 100)])


def _tampered_archive(path: Path) -> Path:
    """A legacy archive whose layer bytes no longer hash to the config's diff_id (same
    size, one byte flipped inside the file data)."""
    imagekit.legacy_archive(path, [LAYER], tag="slimage-test/evil:1")
    data = bytearray(path.read_bytes())
    at = data.find(b"hello world")
    assert at > 0
    data[at] ^= 0x20
    path.write_bytes(bytes(data))
    return path


def _fails_cleanly(res: subprocess.CompletedProcess, *words: str) -> str:
    err = res.stderr.decode()
    assert res.returncode != 0, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    for w in words:
        assert w in err, err
    return err


def _fsck_ok(root: Path) -> None:
    res = slimage("fsck", root=root)
    assert res.returncode == 0, res.stdout.decode() + res.stderr.decode()


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.RegistryProc]:
    if servers.REGISTRY_BIN is None:
        pytest.skip("needs Debian's docker-registry")
    reg = servers.RegistryProc(tmp_path_factory.mktemp("sinks-registry"), name="sinks")
    yield reg
    reg.stop()


@pytest.mark.parametrize("kind", ["docker-archive", "oci-archive", "oci", "store"])
def test_tampered_layer_writes_nothing(kind: str, tmp_path: Path) -> None:
    archive = _tampered_archive(tmp_path / "evil.tar")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    root = tmp_path / "store"
    dest = {
        "docker-archive": f"docker-archive:{out_dir}/x.tar",
        "oci-archive": f"oci-archive:{out_dir}/x.tar",
        "oci": f"oci:{out_dir}/layout",
        "store": "store:slimage-test/evil:copied",
    }[kind]
    res = slimage("copy", f"docker-archive:{archive}", dest, root=root)
    _fails_cleanly(res, "sha256:")
    assert list(out_dir.iterdir()) == [], "no output, no temp file, no half layout"
    if root.exists():
        _fsck_ok(root)
        assert "slimage-test/evil" not in slimage("images", root=root).stdout.decode()


def test_failed_copy_into_an_empty_layout_dir_can_be_retried(tmp_path: Path) -> None:
    bad = _tampered_archive(tmp_path / "evil.tar")
    good = imagekit.legacy_archive(tmp_path / "good.tar", [LAYER], tag="slimage-test/ok:1")
    layout = tmp_path / "layout"
    layout.mkdir()
    _fails_cleanly(slimage("copy", f"docker-archive:{bad}", f"oci:{layout}:v1"), "sha256:")
    assert list(layout.iterdir()) == []
    res = slimage("copy", f"docker-archive:{good}", f"oci:{layout}:v1")
    assert res.returncode == 0, res.stderr.decode()
    if shutil.which("skopeo"):
        insp = subprocess.run(["skopeo", "inspect", f"oci:{layout}:v1"], capture_output=True)
        assert insp.returncode == 0, insp.stderr


def test_tampered_layer_never_becomes_a_registry_tag(
    registry: servers.RegistryProc, tmp_path: Path
) -> None:
    """The layer goes from the archive to the registry by offset, unverified locally: the
    registry's digest check must refuse it, and no manifest may be put."""
    archive = _tampered_archive(tmp_path / "evil.tar")
    remote = f"{registry.host}/adversarial/evil:1"
    res = slimage("copy", f"docker-archive:{archive}", f"docker://{remote}", root=tmp_path / "s")
    _fails_cleanly(res, registry.host)
    tags = subprocess.run(
        ["curl", "-s", f"http://{registry.host}/v2/adversarial/evil/tags/list"],
        capture_output=True,
        text=True,
        env=servers.env_without_proxies(),
    )
    assert '"1"' not in tags.stdout


@pytest.mark.parametrize(
    ("dest", "words"),
    [
        ("docker-archive:{tmp}/no/such/dir/x.tar", ["does not exist"]),
        ("oci:{tmp}/afile", ["not a directory"]),
        ("docker-archive:{tmp}/x.tar:Bad Name!", ["docker-archive:"]),
        ("store:Bad Name!", ["store:"]),
        ("docker-daemon:", []),
        ("nowhere:x", ["unknown destination"]),
        ("docker://", ["missing image reference"]),
    ],
)
def test_bad_destinations_are_one_line(dest: str, words: list[str], tmp_path: Path) -> None:
    good = imagekit.legacy_archive(tmp_path / "good.tar", [LAYER], tag="")
    (tmp_path / "afile").write_text("keep me")
    spec = dest.format(tmp=tmp_path)
    res = slimage("copy", f"docker-archive:{good}", spec, root=tmp_path / "s")
    if dest == "docker-daemon:":
        # An untagged image and no name: loaded by ID (as `docker load` does), not refused.
        if res.returncode == 0:
            return
        pytest.skip("no Docker engine")
    _fails_cleanly(res, *words)
    assert (tmp_path / "afile").read_text() == "keep me"


def test_symlink_at_the_destination_is_replaced_not_followed(tmp_path: Path) -> None:
    """`save -o LINK` where LINK points outside: the link itself is replaced by the
    archive; the file it pointed to is untouched."""
    good = imagekit.legacy_archive(tmp_path / "good.tar", [LAYER], tag="slimage-test/ok:1")
    victim = tmp_path / "victim"
    victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    link = out / "x.tar"
    os.symlink(victim, link)
    res = slimage("copy", f"docker-archive:{good}", f"docker-archive:{link}")
    assert res.returncode == 0, res.stderr.decode()
    assert victim.read_text() == "precious"
    assert not link.is_symlink()
    with open(link, "rb") as fh:
        import tarfile

        with tarfile.open(fileobj=fh) as tf:
            manifest = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest[0]["RepoTags"] == ["slimage-test/ok:1"]
