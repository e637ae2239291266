"""The CLI verbs end to end (as subprocesses), and `copy` between docker://, oci: and
docker-archive:, checked with skopeo and umoci as independent readers."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest

from slimage.oci.model import Manifest
from slimage.store.store import Store
from tests.registry.helpers import make_image, random_bytes


def _ref(registry, name: str = "cli") -> str:  # type: ignore[no-untyped-def]
    return f"{registry.host}/c{uuid.uuid4().hex[:8]}/{name}:1"


def test_push_pull_output_speaks_docker(cli, registry, store_root: Path, tmp_path: Path) -> None:
    ref = _ref(registry)
    digest = make_image(Store(store_root), ref, [{"a": random_bytes(100_000)}])
    res = cli("push", ref)
    assert res.returncode == 0, res.stderr
    assert f"The push refers to repository [{ref.rsplit(':', 1)[0]}]" in res.stdout
    assert "Pushed" in res.stdout
    assert f"1: digest: {digest} size:" in res.stdout
    res = cli("push", ref)
    assert "Layer already exists" in res.stdout
    other = tmp_path / "other"
    pulled = cli("pull", ref, env={"SLIMAGE_HOME": str(other)})
    assert pulled.returncode == 0, pulled.stderr
    lines = pulled.stdout.splitlines()
    assert lines[0] == f"1: Pulling from {ref.split('/', 1)[1].rsplit(':', 1)[0]}"
    assert any(line.endswith(": Pull complete") for line in lines)
    assert f"Digest: {digest}" in lines
    assert lines[-2] == f"Status: Downloaded newer image for {ref}"
    assert lines[-1] == ref
    quiet = cli("pull", "-q", ref, env={"SLIMAGE_HOME": str(other)})
    assert quiet.stdout == ref + "\n"


def test_json_reports_every_blob(cli, registry, store_root: Path) -> None:
    ref = _ref(registry)
    digest = make_image(Store(store_root), ref, [{"a": random_bytes(150_000)}, {"b": b"bb"}])
    res = cli("push", "--json", ref)
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    manifest = Manifest.parse(Store(store_root).read_blob(digest))
    assert report["digest"] == digest
    blobs = {b["digest"]: b for b in report["blobs"]}
    assert set(blobs) == {manifest.config.digest, *(d.digest for d in manifest.layers)}
    for d in manifest.layers:
        b = blobs[d.digest]
        assert b["size"] == d.size and b["action"] == "uploaded" and b["bytes_sent"] == d.size
        assert b["bytes_received"] == 0
    assert report["bytes_sent"] == sum(b["bytes_sent"] for b in report["blobs"])


def test_copy_registry_to_oci_and_archive(cli, registry, store_root: Path, tmp_path: Path) -> None:
    ref = _ref(registry, "copy")
    make_image(Store(store_root), ref, [{"a": random_bytes(80_000)}], cmd=["/a"])
    assert cli("push", "-q", ref).returncode == 0
    fresh = {"SLIMAGE_HOME": str(tmp_path / "fresh")}
    oci_dir = tmp_path / "layout"
    res = cli("copy", f"docker://{ref}", f"oci:{oci_dir}:v1", env=fresh)
    assert res.returncode == 0, res.stderr
    index = json.loads((oci_dir / "index.json").read_text())
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "v1"
    if shutil.which("umoci"):
        ls = subprocess.run(
            ["umoci", "ls", "--layout", str(oci_dir)], capture_output=True, text=True
        )
        assert ls.stdout.split() == ["v1"], ls.stderr
    if shutil.which("skopeo"):
        insp = subprocess.run(
            ["skopeo", "inspect", f"oci:{oci_dir}:v1"], capture_output=True, text=True
        )
        assert insp.returncode == 0, insp.stderr
        assert json.loads(insp.stdout)["Layers"]
    archive = tmp_path / "img.tar"
    res = cli("copy", "--json", f"docker://{ref}", f"docker-archive:{archive}:{ref}", env=fresh)
    assert res.returncode == 0, res.stderr
    with tarfile.open(archive) as tf:
        manifest_json = json.load(tf.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest_json[0]["RepoTags"] == [ref]
    if shutil.which("skopeo"):
        insp = subprocess.run(
            ["skopeo", "inspect", f"docker-archive:{archive}"], capture_output=True, text=True
        )
        assert insp.returncode == 0, insp.stderr


def test_copy_archive_to_registry_and_between_registries(
    cli, registry, store_root: Path, tmp_path: Path
) -> None:
    ref = _ref(registry, "src")
    make_image(Store(store_root), ref, [{"z": random_bytes(60_000)}])
    archive = tmp_path / "src.tar"
    assert cli("push", "-q", ref).returncode == 0
    assert cli("copy", f"docker://{ref}", f"docker-archive:{archive}:{ref}").returncode == 0
    dest = _ref(registry, "fromarchive")
    fresh = {"SLIMAGE_HOME": str(tmp_path / "fresh2")}
    res = cli("copy", "--json", f"docker-archive:{archive}", f"docker://{dest}", env=fresh)
    assert res.returncode == 0, res.stderr
    if shutil.which("skopeo"):
        insp = subprocess.run(
            ["skopeo", "inspect", "--tls-verify=false", f"docker://{dest}"],
            capture_output=True,
            text=True,
        )
        assert insp.returncode == 0, insp.stderr
    # Registry to registry (same registry, other repo): the store remembers where the
    # blobs came from, so they are mounted, not uploaded again.
    third = _ref(registry, "mirror")
    res = cli("copy", "--json", f"docker://{dest}", f"docker://{third}", env=fresh)
    assert res.returncode == 0, res.stderr
    steps = json.loads(res.stdout)["steps"]
    assert {b["action"] for b in steps[-1]["blobs"]} == {"mounted"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("copy", "docker://x/y:1", "nowhere:abc"), "unknown destination"),
        (("push", "not/in/store:1"), "No such image"),
        (("push", "--chunk-size", "abc", "x:1"), "invalid size"),
    ],
)
def test_cli_errors_are_one_line(cli, args, message) -> None:  # type: ignore[no-untyped-def]
    res = cli(*args)
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    assert message in res.stderr


def test_unreachable_registry_fails_fast(cli) -> None:  # type: ignore[no-untyped-def]
    import time

    from tests.registry.servers import free_port

    started = time.monotonic()
    res = cli("pull", f"127.0.0.1:{free_port()}/nobody/home:1")
    assert res.returncode != 0
    assert "connection refused" in res.stderr and "Traceback" not in res.stderr
    assert time.monotonic() - started < 5
