"""`slimage images/history/inspect/tag/rmi/gc/fsck` against what the real engine says
about the same images (built by the engine, saved, loaded into slimage's store)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import testbed
from tests.transports import imagekit
from tests.transports.conftest import slimage

IMAGES = [
    "slimage-test/node-vanilla:latest",
    "slimage-test/tricky:legacy",
    "slimage-test/tricky:buildkit",
]


def _lines(res) -> list[str]:  # type: ignore[no-untyped-def]
    assert res.returncode == 0, res.stderr.decode()
    return res.stdout.decode().splitlines()


def _symlink_bytes_per_layer(ref: str, root: Path) -> list[int]:
    """Bytes of symlink targets per layer (what Docker 20.10 leaves out for BuildKit)."""
    from slimage.layers.tarscan import iter_entries
    from slimage.store.store import Store
    from slimage.transports.sources import open_source

    img = open_source(ref, Store(root))
    out = []
    for layer in img.layers:
        out.append(
            sum(
                len(e.linkname.encode())
                for e in iter_entries(layer.open_tar())
                if e.kind == "symlink"
            )
        )
    return out


@pytest.mark.parametrize("ref", IMAGES)
def test_history_size_column_matches_docker(ref: str, loaded_store: Path) -> None:
    ours = [
        json.loads(line)
        for line in _lines(slimage("history", "--format", "json", ref, root=loaded_store))
    ]
    theirs = imagekit.docker_history_rows(ref)
    assert [r["Size"] for r in ours] == [r["Size"] for r in theirs]
    assert [r["CreatedBy"] for r in ours] == [r["CreatedBy"] for r in theirs]
    assert [r["Comment"] for r in ours] == [r["Comment"] for r in theirs]
    assert [r["CreatedAt"] for r in ours] == [r["CreatedAt"] for r in theirs]
    assert ours[0]["ID"] == theirs[0]["ID"]  # the image itself; rows below depend on the builder
    assert all(r["ID"] == "<missing>" for r in ours[1:])


# The tiny BuildKit tricky image is left out here: its 300 kB layer differs from Docker 20.10
# by exactly its 34 symlink bytes (0.011%), which the next test checks to the byte.
@pytest.mark.parametrize("ref", IMAGES[:2])
def test_history_bytes_within_a_hundredth_of_a_percent(ref: str, loaded_store: Path) -> None:
    ours = [
        json.loads(line)
        for line in _lines(
            slimage("history", "--human=false", "--format", "json", ref, root=loaded_store)
        )
    ]
    theirs = imagekit.docker_history_rows(ref, human=False)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        mine, docker = int(a["Size"]), int(b["Size"])
        assert abs(mine - docker) <= max(docker, 1) * 0.0001, (a, b)
        assert mine >= docker  # never under: the only difference is BuildKit symlink bytes


def test_history_rule_symlinks_explain_the_buildkit_gap(loaded_store: Path) -> None:
    """For BuildKit layers the gap to Docker is exactly the symlink target bytes; for the
    legacy builder there is no gap at all."""
    for ref, buildkit in (
        ("slimage-test/tricky:buildkit", True),
        ("slimage-test/tricky:legacy", False),
    ):
        ours = [
            json.loads(x)
            for x in _lines(
                slimage("history", "--human=false", "--format", "json", ref, root=loaded_store)
            )
        ]
        theirs = imagekit.docker_history_rows(ref, human=False)
        links = _symlink_bytes_per_layer(ref, loaded_store)
        nonempty = [
            (int(a["Size"]), int(b["Size"]))
            for a, b in zip(ours, theirs, strict=True)
            if a["Size"] != "0"
        ]
        nonempty.reverse()  # bottom-up, like the layers
        # the base layer was `docker import`ed: Docker counts its symlinks
        for i, (mine, docker) in enumerate(nonempty):
            expected_gap = links[i] if buildkit and i > 0 else 0
            assert mine - docker == expected_gap, (ref, i, mine, docker, links[i])


def test_history_table_matches_docker_text(loaded_store: Path) -> None:
    """The whole table, byte for byte (BuildKit image: every row below the top is
    <missing> in Docker too). CREATED is relative, so retry once across a boundary."""
    ref = "slimage-test/node-vanilla:latest"
    for args in ((), ("--no-trunc",), ("--human=false",)):
        for _attempt in range(2):
            ours = _lines(slimage("history", *args, ref, root=loaded_store))
            theirs = testbed.docker(
                "history", *args, ref, capture_output=True, text=True
            ).stdout.splitlines()
            if args == ("--human=false",):
                # SIZE in bytes differs by the BuildKit symlink bytes (see the test above)
                ours = [line[:60] for line in ours]
                theirs = [line[:60] for line in theirs]
            if ours == theirs:
                break
        assert ours == theirs, args


def test_history_quiet_and_json(loaded_store: Path) -> None:
    ref = "slimage-test/tricky:legacy"
    quiet = _lines(slimage("history", "-q", ref, root=loaded_store))
    assert quiet[0] == imagekit.docker_history_rows(ref)[0]["ID"]
    assert set(quiet[1:]) == {"<missing>"}
    data = json.loads(slimage("history", "--json", ref, root=loaded_store).stdout)
    assert sum(r["size"] for r in data) > 199_000_000
    assert [r["empty_layer"] for r in data][:2] == [True, True]  # CMD and ENV


def test_history_of_an_archive_without_loading(
    tricky_buildkit_archive: Path, store_root: Path
) -> None:
    rows = [
        json.loads(x)
        for x in _lines(slimage("history", "--format", "json", str(tricky_buildkit_archive)))
    ]
    assert [r["Size"] for r in rows] == [
        r["Size"] for r in imagekit.docker_history_rows("slimage-test/tricky:buildkit")
    ]
    assert not any(store_root.glob("blobs/sha256/*"))  # nothing was imported


def test_images_matches_docker(loaded_store: Path) -> None:
    ours = {
        tuple(x.split()[:3]) + (x.split()[-1],)
        for x in _lines(slimage("images", root=loaded_store))[1:]
    }
    for ref in IMAGES:
        repo, tag = ref.rsplit(":", 1)
        row = testbed.docker(
            "images",
            "--format",
            "{{.Repository}} {{.Tag}} {{.ID}} {{.Size}}",
            ref,
            capture_output=True,
            text=True,
        ).stdout.split()
        assert tuple(row) in ours
    header = _lines(slimage("images", root=loaded_store))[0]
    assert header.split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    q = _lines(slimage("images", "-q", root=loaded_store))
    assert len(q) == 3 and all(len(x) == 12 for x in q)
    full = _lines(slimage("images", "--no-trunc", "-q", root=loaded_store))
    assert all(x.startswith("sha256:") and len(x) == 71 for x in full)
    js = json.loads(slimage("images", "--json", root=loaded_store).stdout)
    assert {f"{r['repository']}:{r['tag']}" for r in js} == set(IMAGES)
    fmt = _lines(slimage("images", "--format", "json", root=loaded_store))
    keys = set(json.loads(fmt[0]))
    theirs = set(
        json.loads(
            testbed.docker(
                "images", "--format", "{{json .}}", capture_output=True, text=True
            ).stdout.splitlines()[0]
        )
    )
    assert keys == theirs
    dig = _lines(slimage("images", "--digests", root=loaded_store))
    assert "DIGEST" in dig[0] and "sha256:" in dig[1]


def test_inspect_fields(loaded_store: Path) -> None:
    ref = "slimage-test/node-vanilla:latest"
    ours = json.loads(slimage("inspect", ref, root=loaded_store).stdout)[0]
    theirs = json.loads(testbed.docker("inspect", ref, capture_output=True, text=True).stdout)[0]
    assert ours["RepoTags"] == [ref] and ref in theirs["RepoTags"]
    for key in ("Id", "Created", "Architecture", "Os", "Config"):
        assert ours[key] == theirs[key], key
    assert ours["RootFS"]["Layers"] == theirs["RootFS"]["Layers"]
    assert abs(ours["Size"] - theirs["Size"]) <= theirs["Size"] * 0.0001
    assert ours["Manifest"]["config"]["digest"] == ours["Id"]
    fmt = _lines(slimage("inspect", "--format", "{{.Id}}", ref, root=loaded_store))
    assert fmt == [theirs["Id"]]


def test_tag_rmi_gc_fsck(tmp_path: Path) -> None:
    root = tmp_path / "store"
    layer = imagekit.layer_tar([imagekit.E("f.txt", data=b"content" * 100)])
    archive = imagekit.legacy_archive(tmp_path / "a.tar", [layer], tag="t/a:1")
    assert _lines(slimage("load", "-i", str(archive), root=root)) == ["Loaded image: t/a:1"]
    assert slimage("tag", "t/a:1", "t/b:2", root=root).returncode == 0
    names = {tuple(x.split()[:2]) for x in _lines(slimage("images", root=root))[1:]}
    assert names == {("t/a", "1"), ("t/b", "2")}
    assert _lines(slimage("rmi", "t/a:1", root=root)) == ["Untagged: t/a:1"]
    out = _lines(slimage("rmi", "t/b:2", root=root))
    assert out[0] == "Untagged: t/b:2" and out[1].startswith("Deleted: sha256:")
    assert len(_lines(slimage("images", root=root))) == 1
    gc = slimage("gc", "--json", root=root)
    assert len(json.loads(gc.stdout)["removed_blobs"]) == 3  # layer, config, manifest
    assert not list((root / "blobs" / "sha256").iterdir())
    # fsck: fine, then a flipped byte is found and reported with exit 1
    slimage("load", "-i", str(archive), root=root, check=True)
    assert slimage("fsck", root=root).returncode == 0
    blob = max((root / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)
    data = bytearray(blob.read_bytes())
    data[-1] ^= 1
    blob.write_bytes(bytes(data))
    res = slimage("fsck", root=root)
    assert res.returncode == 1 and blob.name in res.stdout.decode()
    rm = slimage("rmi", "no/such:image", root=root)
    assert rm.returncode != 0 and b"No such image" in rm.stderr


def test_rmi_by_id_with_two_tags_needs_force(tmp_path: Path) -> None:
    root = tmp_path / "store"
    archive = imagekit.legacy_archive(
        tmp_path / "a.tar", [imagekit.layer_tar([imagekit.E("x")])], tag="t/a:1"
    )
    slimage("load", "-i", str(archive), root=root, check=True)
    slimage("tag", "t/a:1", "t/a:2", root=root, check=True)
    image_id = _lines(slimage("images", "-q", root=root))[0]
    res = slimage("rmi", image_id, root=root)
    assert res.returncode != 0 and b"must be forced" in res.stderr
    out = _lines(slimage("rmi", "-f", image_id, root=root))
    assert out[:2] == ["Untagged: t/a:1", "Untagged: t/a:2"] and out[2].startswith("Deleted:")
