"""load / import / save round trips through the real engine, skopeo and umoci."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from slimage.store.store import Store
from slimage.transports.docker_engine import load_into_engine
from slimage.transports.sources import open_source
from tests.support import testbed
from tests.transports import imagekit
from tests.transports.conftest import slimage


@pytest.fixture
def engine_tag(docker_engine: str):  # type: ignore[no-untyped-def]
    """A tag in the engine that this test owns and removes afterwards."""
    tag = f"slimage-test/roundtrip:{os.getpid()}"
    yield tag
    testbed.docker("rmi", tag, check=False, capture_output=True)


def _docker_id(ref: str) -> str:
    return testbed.docker(
        "image", "inspect", "-f", "{{.Id}}", ref, capture_output=True, text=True
    ).stdout.strip()


def test_load_prints_docker_lines_and_from_stdin(
    tricky_legacy_archive: Path, tmp_path: Path
) -> None:
    root = tmp_path / "s"
    res = slimage("load", "-i", str(tricky_legacy_archive), root=root)
    assert res.returncode == 0, res.stderr
    assert res.stdout.decode() == "Loaded image: slimage-test/tricky:legacy\n"
    root2 = tmp_path / "s2"
    res = slimage("load", "--json", root=root2, input=tricky_legacy_archive.read_bytes())
    data = json.loads(res.stdout)
    assert data[0]["tags"] == ["slimage-test/tricky:legacy"]
    assert data[0]["id"] == _docker_id("slimage-test/tricky:legacy")
    assert not list((root2 / "tmp").iterdir())  # the spooled copy is gone
    # loading again adds no layer
    again = json.loads(
        slimage("load", "--json", "-i", str(tricky_legacy_archive), root=root2).stdout
    )
    assert again[0]["layers_added"] == 0 and again[0]["layers_skipped"] == 2 + 1


def test_save_is_accepted_by_docker_load_and_runs(
    tricky_buildkit_archive: Path, tmp_path: Path, engine_tag: str
) -> None:
    root = tmp_path / "s"
    slimage("load", "-i", str(tricky_buildkit_archive), root=root, check=True)
    slimage("tag", "slimage-test/tricky:buildkit", engine_tag, root=root, check=True)
    out = tmp_path / "out.tar"
    res = slimage("save", "-o", str(out), engine_tag, root=root)
    assert res.returncode == 0, res.stderr
    load = testbed.docker("load", "-i", str(out), capture_output=True, text=True)
    assert f"Loaded image: {engine_tag}" in load.stdout
    assert _docker_id(engine_tag) == _docker_id("slimage-test/tricky:buildkit")
    run = testbed.docker(
        "run",
        "--rm",
        "--network",
        "host",
        engine_tag,
        "cat",
        "/data/opq/new",
        capture_output=True,
        text=True,
    )
    assert run.stdout == "n\n"
    # the saved archive is also readable by us, in both roles
    assert open_source(str(out)).id == _docker_id(engine_tag)


def test_save_to_stdout_pipes_into_docker_load(
    tricky_legacy_archive: Path, tmp_path: Path, engine_tag: str
) -> None:
    root = tmp_path / "s"
    slimage("load", "-i", str(tricky_legacy_archive), root=root, check=True)
    slimage("tag", "slimage-test/tricky:legacy", engine_tag, root=root, check=True)
    env = dict(os.environ, SLIMAGE_HOME=str(root))
    import sys

    save = subprocess.Popen(
        [sys.executable, "-m", "slimage.cli.main", "save", engine_tag],
        stdout=subprocess.PIPE,
        env=env,
    )
    load = subprocess.run(
        [testbed.DOCKER, "load"], stdin=save.stdout, capture_output=True, text=True
    )
    assert save.wait() == 0
    assert load.returncode == 0 and engine_tag in load.stdout
    run = testbed.docker("run", "--rm", "--network", "host", engine_tag, capture_output=True)
    assert run.returncode == 0  # CMD ["/bin/true"]


def test_load_into_engine_api(
    tricky_legacy_archive: Path, store_root: Path, engine_tag: str
) -> None:
    image = open_source(str(tricky_legacy_archive))
    lines = load_into_engine(image, [engine_tag])
    assert lines == [f"Loaded image: {engine_tag}"]
    assert _docker_id(engine_tag) == image.id


@pytest.mark.skipif(
    shutil.which("skopeo") is None or shutil.which("umoci") is None, reason="needs skopeo and umoci"
)
def test_save_oci_layout_passes_skopeo_and_umoci(
    tricky_legacy_archive: Path, tmp_path: Path
) -> None:
    root = tmp_path / "s"
    slimage("load", "-i", str(tricky_legacy_archive), root=root, check=True)
    out = tmp_path / "layout"
    res = slimage(
        "save", "--format", "oci", "-o", str(out), "slimage-test/tricky:legacy", root=root
    )
    assert res.returncode == 0, res.stderr
    assert json.loads((out / "oci-layout").read_text())["imageLayoutVersion"] == "1.0.0"
    index = json.loads((out / "index.json").read_text())
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "legacy"
    sk = subprocess.run(["skopeo", "inspect", f"oci:{out}:legacy"], capture_output=True, text=True)
    assert sk.returncode == 0, sk.stderr
    info = json.loads(sk.stdout)
    image = open_source(str(tricky_legacy_archive))
    assert len(info["Layers"]) == len(image.layers)
    assert info["Env"] == image.config.config["Env"]
    um = subprocess.run(
        ["umoci", "stat", "--image", f"{out}:legacy"], capture_output=True, text=True
    )
    assert um.returncode == 0, um.stderr
    assert "/bin/sh -c #(nop)  ENV TRICKY=1" in um.stdout
    # skopeo can copy it on (verifying every blob) and it reads back as the same image
    copy = subprocess.run(
        [
            "skopeo",
            "copy",
            f"oci:{out}:legacy",
            f"docker-archive:{tmp_path / 'via-skopeo.tar'}:x/y:z",
        ],
        capture_output=True,
        text=True,
    )
    assert copy.returncode == 0, copy.stderr
    assert open_source(str(tmp_path / "via-skopeo.tar")).config.diff_ids == image.config.diff_ids
    assert open_source(f"oci:{out}:legacy").id == image.id


def test_save_oci_archive_and_several_images(
    tricky_legacy_archive: Path, tricky_buildkit_archive: Path, tmp_path: Path
) -> None:
    root = tmp_path / "s"
    for a in (tricky_legacy_archive, tricky_buildkit_archive):
        slimage("load", "-i", str(a), root=root, check=True)
    both = tmp_path / "both.tar"
    res = slimage(
        "save",
        "-o",
        str(both),
        "slimage-test/tricky:legacy",
        "slimage-test/tricky:buildkit",
        root=root,
    )
    assert res.returncode == 0, res.stderr
    root2 = tmp_path / "s2"
    out = slimage("load", "-i", str(both), root=root2).stdout.decode().splitlines()
    assert sorted(out) == [
        "Loaded image: slimage-test/tricky:buildkit",
        "Loaded image: slimage-test/tricky:legacy",
    ]
    ociar = tmp_path / "img.oci.tar"
    assert (
        slimage(
            "save",
            "--format",
            "oci-archive",
            "-o",
            str(ociar),
            "slimage-test/tricky:legacy",
            root=root,
        ).returncode
        == 0
    )
    if shutil.which("skopeo"):
        sk = subprocess.run(
            ["skopeo", "inspect", f"oci-archive:{ociar}:legacy"], capture_output=True, text=True
        )
        assert sk.returncode == 0, sk.stderr


def test_save_of_missing_image_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "never.tar"
    res = slimage("save", "-o", str(out), "no/such:image", root=tmp_path / "s")
    assert res.returncode != 0
    assert res.stderr.decode().count("\n") == 1 and "No such image" in res.stderr.decode()
    assert not out.exists() and not list(tmp_path.glob(".never.tar*"))


def test_import_matches_docker_import(debian_image: str, tmp_path: Path) -> None:
    rootfs = testbed.bookworm_rootfs_tar()
    root = tmp_path / "s"
    res = slimage("import", str(rootfs), "mydebian:bookworm", "--json", root=root)
    assert res.returncode == 0, res.stderr
    ours = open_source("mydebian:bookworm", Store(root))
    theirs = json.loads(
        testbed.docker("inspect", debian_image, capture_output=True, text=True).stdout
    )[0]
    # debian:bookworm was made by `docker import` of this very tar: same diff_id, same SIZE
    assert ours.config.diff_ids == theirs["RootFS"]["Layers"]
    hist = [
        json.loads(x)
        for x in slimage(
            "history", "--human=false", "--format", "json", "mydebian:bookworm", root=root
        ).stdout.splitlines()
    ]
    assert hist[0]["Size"] == str(theirs["Size"])
    assert hist[0]["Comment"] == f"Imported from {rootfs}"


def test_import_stdin_with_changes_and_message(tmp_path: Path) -> None:
    layer = imagekit.layer_tar(
        [imagekit.E("bin", "dir"), imagekit.E("bin/app", data=b"#!/bin/sh\n", mode=0o755)]
    )
    root = tmp_path / "s"
    res = slimage(
        "import",
        "-c",
        'CMD ["/bin/app"]',
        "-c",
        "ENV A=1 B=two",
        "--change",
        "WORKDIR /srv",
        "-c",
        "EXPOSE 8080",
        "-",
        "imp/app:v1",
        root=root,
        input=imagekit.compress(layer, "gzip"),
    )
    assert res.returncode == 0, res.stderr
    cfg = open_source("imp/app:v1", Store(root)).config
    assert cfg.config["Cmd"] == ["/bin/app"]
    assert cfg.config["Env"] == ["A=1", "B=two"]
    assert cfg.config["WorkingDir"] == "/srv" and "8080/tcp" in cfg.config["ExposedPorts"]
    assert cfg.history[0].comment == "Imported from -"
    assert cfg.diff_ids == [imagekit.sha(layer)]
    res = slimage("import", "-m", "my message", "-", "imp/app:v2", root=root, input=layer)
    assert open_source("imp/app:v2", Store(root)).config.history[0].comment == "my message"
    bad = slimage("import", "-c", "RUN rm -rf /", "-", root=root, input=layer)
    assert bad.returncode != 0 and b"RUN" in bad.stderr


def test_load_gzipped_archive_like_docker(tricky_legacy_archive: Path, tmp_path: Path) -> None:
    """`docker save | gzip > x.tar.gz; docker load -i x.tar.gz` works, so must ours, from a
    file, a redirected file and a pipe."""
    gz = tmp_path / "x.tar.gz"
    gz.write_bytes(imagekit.compress(tricky_legacy_archive.read_bytes(), "gzip"))
    want = "Loaded image: slimage-test/tricky:legacy\n"
    assert slimage("load", "-i", str(gz), root=tmp_path / "a").stdout.decode() == want
    assert slimage("load", root=tmp_path / "b", input=gz.read_bytes()).stdout.decode() == want
    import sys

    with open(gz, "rb") as fh:
        res = subprocess.run(
            [sys.executable, "-m", "slimage.cli.main", "load"],
            stdin=fh,
            capture_output=True,
            env=dict(os.environ, SLIMAGE_HOME=str(tmp_path / "c")),
        )
    assert res.stdout.decode() == want, res.stderr


@pytest.mark.skipif(shutil.which("skopeo") is None, reason="needs skopeo")
def test_save_oci_adds_to_an_existing_layout(
    tricky_legacy_archive: Path, tricky_buildkit_archive: Path, tmp_path: Path
) -> None:
    root = tmp_path / "s"
    for a in (tricky_legacy_archive, tricky_buildkit_archive):
        slimage("load", "-i", str(a), root=root, check=True)
    out = tmp_path / "layout"
    slimage(
        "save",
        "--format",
        "oci",
        "-o",
        str(out),
        "slimage-test/tricky:legacy",
        root=root,
        check=True,
    )
    slimage(
        "save",
        "--format",
        "oci",
        "-o",
        str(out),
        "slimage-test/tricky:buildkit",
        root=root,
        check=True,
    )
    refs = sorted(
        m["annotations"]["org.opencontainers.image.ref.name"]
        for m in json.loads((out / "index.json").read_text())["manifests"]
    )
    assert refs == ["buildkit", "legacy"]
    for ref in refs:
        sk = subprocess.run(
            ["skopeo", "inspect", f"oci:{out}:{ref}"], capture_output=True, text=True
        )
        assert sk.returncode == 0, sk.stderr
    # both images share the debian base layer: its blob is stored once
    base = open_source(f"oci:{out}:legacy").manifest.layers[0].digest
    assert open_source(f"oci:{out}:buildkit").manifest.layers[0].digest == base
    # saving the same ref again replaces the entry instead of duplicating it
    slimage(
        "save",
        "--format",
        "oci",
        "-o",
        str(out),
        "slimage-test/tricky:legacy",
        root=root,
        check=True,
    )
    assert len(json.loads((out / "index.json").read_text())["manifests"]) == 2
    # a directory that is not a layout is refused, not clobbered
    other = tmp_path / "notalayout"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    res = slimage(
        "save", "--format", "oci", "-o", str(other), "slimage-test/tricky:legacy", root=root
    )
    assert res.returncode != 0 and b"not an OCI layout" in res.stderr
    assert sorted(os.listdir(other)) == ["keep.txt"]
