"""`analyze` against the real engine: the merged filesystem is what `docker export` shows,
layer sizes are what `docker history` says, and the waste is found where it was made."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from slimage.analysis.diff import build_tree
from slimage.analysis.efficiency import analyze_image
from slimage.analysis.target import open_target
from slimage.cli.main import main
from slimage.fs.tree import DIR
from slimage.layers.tarscan import iter_entries
from tests.analysis.layered import LAYERED, exported_fs, history_sizes, layered_archive_path

pytestmark = pytest.mark.docker


@pytest.fixture(scope="session")
def layered_archive(debian_image: str) -> Path:
    return layered_archive_path()


def symlink_bytes(target, i: int) -> int:
    fh = target.image.layers[i].open_tar()
    try:
        return sum(len(e.linkname.encode()) for e in iter_entries(fh) if e.kind == "symlink")
    finally:
        fh.close()


def test_merged_filesystem_matches_docker_export(layered_archive: Path) -> None:
    tree, _, _ = build_tree(open_target(str(layered_archive)))
    ours = {
        p: (n.kind, n.size)
        for p, n in tree.walk()
        if not p.startswith(("dev/", "proc/", "sys/")) and p not in ("dev", "proc", "sys")
    }
    theirs = exported_fs(LAYERED)
    # Docker creates these mount points in every container; the image may or may not.
    for p in ("etc/hostname", "etc/hosts", "etc/resolv.conf", "etc/mtab", ".dockerenv"):
        ours.pop(p, None)
    assert set(ours) == set(theirs), set(ours) ^ set(theirs)
    assert ours == theirs
    # the interesting cases, spelled out
    assert tree.get("data/opq/old1") is None and tree.get("data/opq/sub") is None
    assert tree.get("data/swap").kind == "file" and tree.get("data/tofile").kind == DIR
    assert tree.get("data/hl-link").size == 4000 and tree.get("data/gone") is None


@pytest.mark.parametrize("which", ["layered", "vanilla"])
def test_layer_sizes_match_docker_history(which: str, request: pytest.FixtureRequest) -> None:
    archive = request.getfixturevalue(
        "layered_archive" if which == "layered" else "vanilla_archive"
    )
    ref = LAYERED if which == "layered" else "slimage-test/node-vanilla:latest"
    target = open_target(str(archive))
    report = analyze_image(target, verify=True)
    docker = history_sizes(ref)
    pairs = target.image.config.layer_history()
    assert len(docker) == len(pairs)
    for (_, idx), dsize in zip(pairs, docker, strict=True):
        if idx is None:
            assert dsize == 0
            continue
        ours = report.layers[idx].size_bytes
        if ours != dsize:
            # BuildKit-exported layers: Docker 20.10 leaves out symlink target bytes.
            assert ours - dsize == symlink_bytes(target, idx), (idx, ours, dsize)
        assert abs(ours - dsize) <= max(1, dsize) * 1e-4 or ours - dsize == symlink_bytes(
            target, idx
        )
    assert report.total_bytes == sum(lay.size_bytes for lay in report.layers)


def test_waste_is_found_where_it_was_made(layered_archive: Path) -> None:
    report = analyze_image(str(layered_archive), top=50)
    by_path = {p.path: p for p in report.top_reclaimable}
    layers = report.layers
    base = 1  # debian:bookworm
    over = by_path["/data/over.bin"]
    # written by the first RUN and by the overwrite, hidden by the overwrite and the chown
    assert over.reclaimable_bytes == 100_000 + 120_000 and over.copies == 2
    assert over.written_by == [base, base + 1] and over.removed_by == [base + 1, base + 6]
    assert "chown" in over.removed_by_instructions[-1]
    gone = by_path["/data/gone/a.bin"]
    assert gone.removed_by == [base + 2] and "rm -rf /data/gone" in gone.removed_by_instructions[0]
    assert by_path["/data/opq/sub/old2"].removed_by == [base + 3]  # the opaque directory
    assert by_path["/data/swap/inner"].removed_by == [base + 4]  # dir replaced by a file
    assert by_path["/data/tofile"].removed_by == [base + 5]  # file replaced by a dir
    # a deleted name whose data another hardlink still shows is not reclaimable
    # (/usr/bin/perl5.36.0 is a hardlink of /usr/bin/perl in Debian)
    assert "/data/hl-target" not in by_path and "/data/hl-link" not in by_path
    assert "/usr/bin/perl5.36.0" not in by_path and layers[base + 2].removed >= 4
    assert report.reclaimable_bytes == report.total_bytes - report.merged_bytes
    assert report.reclaimable_bytes == sum(lay.wasted_bytes for lay in layers)
    assert report.reclaimable_bytes == sum(p.reclaimable_bytes for p in report.top_reclaimable)
    assert layers[base + 2].removed >= 4 and layers[base + 1].modified == 1
    assert report.base_layers == base


def test_store_and_archive_give_the_same_report(layered_archive: Path, store_root: Path) -> None:
    from slimage.store.images import ingest
    from slimage.store.store import Store
    from slimage.transports.sources import open_source

    store = Store(store_root)
    ingest(store, open_source(str(layered_archive)), tags=["layered:test"])
    from_store = analyze_image(open_target("layered:test", store=store))
    from_archive = analyze_image(str(layered_archive))
    assert from_store.read_mode == "stream" and from_archive.read_mode == "seek+verify"
    for key in ("total_bytes", "merged_bytes", "reclaimable_bytes", "files", "directories"):
        assert getattr(from_store, key) == getattr(from_archive, key), key
    assert [lay.size_bytes for lay in from_store.layers] == [
        lay.size_bytes for lay in from_archive.layers
    ]


def run(argv: list[str]) -> tuple[int, str]:
    buf = io.StringIO()
    with redirect_stdout(buf):
        rc = main(argv)
    return rc, buf.getvalue()


def test_cli_json_and_ci(
    layered_archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rc, out = run(["analyze", "--json", str(layered_archive)])
    data = json.loads(out)
    assert rc == 0
    for key in ("total_bytes", "merged_bytes", "reclaimable_bytes", "efficiency", "layers"):
        assert key in data
    for key in ("size_bytes", "created_by", "added", "modified", "removed"):
        assert key in data["layers"][0]
    eff = data["efficiency"]
    rc, out = run(
        ["analyze", "--ci", "--lowest-efficiency", str(eff + 0.001), str(layered_archive)]
    )
    assert rc == 1 and "FAIL: lowest-efficiency" in out and "Result:FAIL" in out
    rc, out = run(
        [
            "analyze",
            "--ci",
            "--lowest-efficiency",
            f"{eff * 100 - 1:.2f}%",
            "--highest-user-reclaimable-percent",
            "off",
            str(layered_archive),
        ]
    )
    assert rc == 0 and "Result:PASS" in out and "SKIP: highest-user" in out
    # thresholds from .slimage.toml in the working directory, and from a .dive-ci file
    monkeypatch.chdir(tmp_path)
    reclaim = data["reclaimable_bytes"]
    (tmp_path / ".slimage.toml").write_text(
        f"[analyze]\nhighest-reclaimable-bytes = {reclaim - 1}\n"
    )
    rc, out = run(["analyze", "--ci", "--lowest-efficiency", "0", str(layered_archive)])
    assert rc == 1 and "FAIL: highest-reclaimable-bytes" in out
    (tmp_path / "ci.yaml").write_text(
        f"rules:\n  lowestEfficiency: 0\n  highestWastedBytes: {reclaim}\n  highestUserWastedPercent: disabled\n"
    )
    rc, out = run(["analyze", "--ci", "--ci-config", "ci.yaml", str(layered_archive)])
    assert rc == 0 and "SKIP: highest-user-reclaimable-percent" in out
    rc, out = run(["analyze", "--ci", "--lowest-efficiency", "lots", str(layered_archive)])
    assert rc == 2


def test_bad_input_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], layered_archive: Path
) -> None:
    cut = tmp_path / "cut.tar"
    cut.write_bytes(layered_archive.read_bytes()[:1_000_000])
    assert main(["analyze", str(cut)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cut.tar" in err and "truncated" in err


def test_oci_layout_is_read_in_place(layered_archive: Path, tmp_path: Path) -> None:
    from slimage.transports.oci_layout import write_layout
    from slimage.transports.sources import open_source

    layout = tmp_path / "oci"
    write_layout(layout, [(open_source(str(layered_archive)), "layered:oci")])
    from_layout = analyze_image(str(layout))
    from_archive = analyze_image(str(layered_archive))
    assert from_layout.read_mode == "seek+verify"
    for key in ("total_bytes", "merged_bytes", "reclaimable_bytes", "files"):
        assert getattr(from_layout, key) == getattr(from_archive, key), key


def test_a_corrupted_layer_is_refused(
    layered_archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from slimage.analysis.target import index_archive

    target = open_target(str(layered_archive))
    biggest = max((s for s in target.slices if s is not None), key=lambda s: s.length)
    data = bytearray(layered_archive.read_bytes())
    data[biggest.offset + biggest.length // 2] ^= 0xFF
    bad = tmp_path / "bad.tar"
    bad.write_bytes(bytes(data))
    assert index_archive(str(bad))  # the outer archive is still readable
    assert main(["analyze", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ("expected sha256:" in err or "bad checksum" in err)


def test_docker25_archive_is_read_in_place(layered_archive: Path, tmp_path: Path) -> None:
    from slimage.transports.docker_archive import write_archive
    from slimage.transports.sources import open_source

    out = tmp_path / "d25.tar"
    with open(out, "wb") as fh:
        write_archive(fh, [(open_source(str(layered_archive)), ["layered:d25"])])
    from_new = analyze_image(str(out))
    from_old = analyze_image(str(layered_archive))
    assert from_new.read_mode == "seek+verify"
    for key in ("total_bytes", "merged_bytes", "reclaimable_bytes", "files"):
        assert getattr(from_new, key) == getattr(from_old, key), key


def test_two_process_parsing_gives_the_same_report(
    layered_archive: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLIMAGE_ANALYZE_JOBS", "1")
    single = analyze_image(str(layered_archive))
    monkeypatch.setenv("SLIMAGE_ANALYZE_JOBS", "2")  # force the worker despite the small size
    double = analyze_image(str(layered_archive))
    assert single.layers == double.layers
    assert single.top_reclaimable == double.top_reclaimable
    assert (single.total_bytes, single.merged_bytes) == (double.total_bytes, double.merged_bytes)


def test_unchanged_archive_is_not_hashed_twice_but_any_change_is_caught(
    layered_archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from slimage.fs import scan

    monkeypatch.setenv("SLIMAGE_HOME", str(tmp_path / "store"))
    archive = tmp_path / "copy.tar"
    archive.write_bytes(layered_archive.read_bytes())
    hashed: list[int] = []  # layers each analysis hashes
    real_start = scan.Verifier.start

    def counting_start(self: scan.Verifier, workers: int = 2) -> None:
        hashed.append(self.pending)
        real_start(self, workers)

    monkeypatch.setattr(scan.Verifier, "start", counting_start)
    first = analyze_image(str(archive))
    assert hashed[-1] == len(first.layers) and first.read_mode == "seek+verify"
    again = analyze_image(str(archive))
    assert hashed[-1] == 0  # same inode, size, mtime and ctime: verified before
    assert again.total_bytes == first.total_bytes

    # Flip a byte inside the biggest layer and put the mtime back: ctime still moves.
    target = open_target(str(archive))
    biggest = max((s for s in target.slices if s is not None), key=lambda s: s.length)
    st = archive.stat()
    with open(archive, "r+b") as fh:
        fh.seek(biggest.offset + biggest.length // 2)
        byte = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([byte[0] ^ 0xFF]))
    os.utime(archive, ns=(st.st_atime_ns, st.st_mtime_ns))
    with pytest.raises(Exception, match="expected sha256:|bad checksum"):
        analyze_image(str(archive))


def test_two_process_parsing_with_a_compressed_layer_between_plain_ones(
    layered_archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The helper process parses the plain layers read in place; a gzip layer among them
    is streamed by the main one. Each layer must still reach the tree from its own bytes
    (the helper once picked layer N+1's slice for layer N after a compressed layer)."""
    import gzip
    import tarfile

    mixed = tmp_path / "mixed.tar"
    with tarfile.open(layered_archive) as src, tarfile.open(mixed, "w") as dst:
        manifest = json.loads(src.extractfile("manifest.json").read())  # type: ignore[union-attr]
        layers = manifest[0]["Layers"]
        squeezed = layers[1]
        for member in src.getmembers():
            if member.name == "manifest.json":
                continue
            data = src.extractfile(member) if member.isfile() else None
            if member.name == squeezed:
                body = gzip.compress(data.read(), compresslevel=1)  # type: ignore[union-attr]
                member = tarfile.TarInfo(squeezed + ".gz")
                member.size = len(body)
                dst.addfile(member, io.BytesIO(body))
                continue
            dst.addfile(member, data)
        layers[1] = squeezed + ".gz"
        body = json.dumps(manifest).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(body)
        dst.addfile(info, io.BytesIO(body))
    monkeypatch.setenv("SLIMAGE_ANALYZE_JOBS", "1")
    single = analyze_image(str(layered_archive))
    monkeypatch.setenv("SLIMAGE_ANALYZE_JOBS", "2")
    double = analyze_image(str(mixed))
    assert "stream" in double.read_mode and "seek" in double.read_mode
    assert single.layers == double.layers
    assert (single.total_bytes, single.merged_bytes) == (double.total_bytes, double.merged_bytes)
