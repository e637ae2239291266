"""Safe layer extraction: OCI changeset semantics in `apply` mode, overlayfs form in
`overlay` mode, and no way out of the target directory."""

from __future__ import annotations

import io
import os
import stat
import subprocess
from pathlib import Path

import pytest

from slimage.errors import UnsafeArchiveError
from slimage.layers.extract import extract_image, extract_layer, extract_overlay_layers
from slimage.transports.sources import open_source
from tests.images.conftest import tree_digest
from tests.transports.imagekit import E, layer_tar

LOWER = layer_tar(
    [
        E("etc", "dir"),
        E("etc/gone", data=b"bye"),
        E("etc/keep", data=b"stay"),
        E("opq", "dir"),
        E("opq/old1", data=b"1"),
        E("opq/sub", "dir"),
        E("opq/sub/old2", data=b"2"),
        E("f2d", data=b"file becomes dir"),
        E("d2f", "dir"),
        E("d2f/child", data=b"dir becomes file"),
        E("lowerfile", data=b"linked from above"),
        E("lnk", "symlink", linkname="etc/keep"),
    ]
)
UPPER_ENTRIES = [
    E("etc", "dir"),
    E("etc/.wh.gone"),
    E("opq", "dir"),
    E("opq/early", data=b"same layer, before the marker"),
    E("opq/.wh..wh..opq"),
    E("opq/new", data=b"n"),
    E("f2d", "dir"),
    E("f2d/child", data=b"c"),
    E("d2f", data=b"now a file"),
    E("hl", "hardlink", linkname="lowerfile"),
    E("lnk", data=b"symlink replaced by a file"),
]
UPPER = layer_tar(UPPER_ENTRIES)


def test_apply_whiteouts_opaque_and_replacements(tmp_path: Path) -> None:
    dest = tmp_path / "root"
    extract_layer(io.BytesIO(LOWER), dest)
    stats = extract_layer(io.BytesIO(UPPER), dest)
    assert not (dest / "etc/gone").exists() and (dest / "etc/keep").read_bytes() == b"stay"
    assert sorted(os.listdir(dest / "opq")) == ["early", "new"]  # lower content hidden, own kept
    assert (dest / "f2d").is_dir() and (dest / "f2d/child").read_bytes() == b"c"
    assert (dest / "d2f").is_file() and (dest / "d2f").read_bytes() == b"now a file"
    assert os.stat(dest / "hl").st_ino == os.stat(dest / "lowerfile").st_ino
    assert not (dest / "lnk").is_symlink() and (dest / "lnk").read_bytes().startswith(b"symlink")
    assert not any(n.startswith(".wh.") for _, ds, fs in os.walk(dest) for n in ds + fs)
    assert stats.whiteouts == 2 and stats.hardlinks == 1


@pytest.mark.usefixtures("need_root")
def test_owner_mode_mtime_xattr_preserved(tmp_path: Path) -> None:
    layer = layer_tar(
        [
            E("bin", "dir", mode=0o751, uid=7, gid=8, mtime=1_000_000),
            E(
                "bin/su",
                data=b"x",
                mode=0o4755,
                uid=1234,
                gid=5678,
                mtime=1_234_567,
                xattrs={"user.note": "hi"},
            ),
            E("bin/sh", "symlink", linkname="su", uid=3, gid=4, mtime=1_111_111),
            E("dev", "dir"),
            E("dev/null", "chardev", major=1, minor=3, mode=0o666),
            E("fifo", "fifo", mode=0o600),
        ]
    )
    dest = tmp_path / "root"
    extract_layer(io.BytesIO(layer), dest)
    su = os.lstat(dest / "bin/su")
    assert (su.st_uid, su.st_gid, stat.S_IMODE(su.st_mode), int(su.st_mtime)) == (
        1234,
        5678,
        0o4755,
        1_234_567,
    )
    assert os.getxattr(dest / "bin/su", "user.note") == b"hi"
    sh = os.lstat(dest / "bin/sh")
    assert (sh.st_uid, sh.st_gid, int(sh.st_mtime)) == (3, 4, 1_111_111)
    d = os.lstat(dest / "bin")
    assert (stat.S_IMODE(d.st_mode), d.st_uid, int(d.st_mtime)) == (
        0o751,
        7,
        1_000_000,
    )  # set after its children
    null = os.lstat(dest / "dev/null")
    assert (
        stat.S_ISCHR(null.st_mode) and os.major(null.st_rdev) == 1 and os.minor(null.st_rdev) == 3
    )
    assert stat.S_ISFIFO(os.lstat(dest / "fifo").st_mode)


def test_lower_symlinks_are_followed_inside_the_root_only(tmp_path: Path, outside: Path) -> None:
    dest = tmp_path / "root"
    before = tree_digest(outside)
    lower = layer_tar(
        [
            E("abs", "symlink", linkname=str(outside)),  # absolute: means DEST/<outside>
            E("rel", "symlink", linkname="../../../../../.." + str(outside)),  # .. stops at DEST
            E("leaf", "symlink", linkname=str(outside / "secret")),
        ]
    )
    upper = layer_tar(
        [
            E("abs/pwned", data=b"1"),
            E("rel/pwned2", data=b"2"),
            E("leaf", data=b"overwrites the link, not its target"),
        ]
    )
    extract_layer(io.BytesIO(lower), dest)
    extract_layer(io.BytesIO(upper), dest)
    inner = dest / str(outside).lstrip("/")
    assert (inner / "pwned").read_bytes() == b"1"
    assert (inner / "pwned2").read_bytes() == b"2"
    assert not (dest / "leaf").is_symlink()
    assert tree_digest(outside) == before


def test_hardlink_through_lower_symlink_stays_inside(tmp_path: Path, outside: Path) -> None:
    dest = tmp_path / "root"
    before = tree_digest(outside)
    extract_layer(io.BytesIO(layer_tar([E("s", "symlink", linkname=str(outside))])), dest)
    with pytest.raises(UnsafeArchiveError, match="does not exist"):
        extract_layer(io.BytesIO(layer_tar([E("h", "hardlink", linkname="s/secret")])), dest)
    assert not (dest / "h").exists()
    assert tree_digest(outside) == before


@pytest.mark.parametrize(
    "entries, problem",
    [
        ([E("../escape", data=b"x")], "'..'"),
        ([E("/abs", data=b"x")], "absolute"),
        ([E("s", "symlink", linkname=".."), E("s/escape", data=b"x")], "through symlink"),
        ([E("h", "hardlink", linkname="../outside/secret")], "escapes"),
        ([E("x/mem", "chardev", major=1, minor=1)], "outside dev/"),
        ([E("a", data=b"1"), E("a", data=b"2")], "duplicate"),
    ],
)
def test_hostile_entries_refused_and_nothing_outside(
    tmp_path: Path, outside: Path, entries: list[E], problem: str
) -> None:
    dest = tmp_path / "root"
    dest.mkdir()
    before = tree_digest(outside)
    siblings = sorted(os.listdir(tmp_path))
    with pytest.raises(UnsafeArchiveError, match=problem):
        extract_layer(io.BytesIO(layer_tar(entries)), dest, mode="apply")
    assert tree_digest(outside) == before
    assert sorted(os.listdir(tmp_path)) == siblings
    assert not (tmp_path / "escape").exists()


@pytest.mark.usefixtures("need_root")
def test_overlay_mode_writes_overlayfs_whiteouts(tmp_path: Path) -> None:
    dest = tmp_path / "upper"
    # a hardlink to a lower layer's file cannot be expressed in an overlay lowerdir
    with pytest.raises(UnsafeArchiveError, match="not earlier in this layer"):
        extract_layer(io.BytesIO(UPPER), tmp_path / "refused", mode="overlay")
    no_cross_link = layer_tar([e for e in UPPER_ENTRIES if e.kind != "hardlink"])
    extract_layer(io.BytesIO(no_cross_link), dest, mode="overlay")
    wh = os.lstat(dest / "etc/gone")
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0
    assert os.getxattr(dest / "opq", "trusted.overlay.opaque") == b"y"
    assert (dest / "opq/new").read_bytes() == b"n"
    assert not (dest / "opq/.wh..wh..opq").exists()


def _mount_overlay(lowers: list[Path], mnt: Path) -> None:
    opts = "lowerdir=" + ":".join(str(p) for p in reversed(lowers))
    subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", opts, str(mnt)], check=True, capture_output=True
    )


@pytest.mark.usefixtures("need_root")
def test_overlay_layers_mount_to_the_same_tree_as_apply(
    tricky_legacy_archive: Path, tmp_path: Path
) -> None:
    """Real overlayfs: the tricky image (whiteouts, opaque dir, dir<->file) mounted from
    overlay-mode layers equals the apply-mode flattening."""
    image = open_source(str(tricky_legacy_archive))
    flat = tmp_path / "flat"
    extract_image(image, flat)
    lowers = extract_overlay_layers(image, tmp_path / "layers")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    try:
        _mount_overlay(lowers, mnt)
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"cannot mount overlayfs here: {exc.stderr.decode().strip()}")
    try:
        assert tree_digest(mnt) == tree_digest(flat)
        assert sorted(os.listdir(mnt / "data/opq")) == ["new"]
        assert not (mnt / "etc/issue").exists()
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


@pytest.mark.usefixtures("need_root")
def test_apply_matches_docker_export(
    tricky_buildkit: str, tricky_buildkit_archive: Path, tmp_path: Path
) -> None:
    """The flattened image equals the engine's own `docker export` of a container."""
    from tests.support import testbed

    flat = tmp_path / "flat"
    extract_image(open_source(str(tricky_buildkit_archive)), flat)
    cid = testbed.docker("create", tricky_buildkit, capture_output=True, text=True).stdout.strip()
    try:
        exported = tmp_path / "export"
        exported.mkdir()
        tar = testbed.docker("export", cid, capture_output=True).stdout
        extract_layer(io.BytesIO(tar), exported)
    finally:
        testbed.docker("rm", cid, capture_output=True)
    for f in (
        ".dockerenv",
        "etc/hosts",
        "etc/hostname",
        "etc/resolv.conf",
        "etc/mtab",
        "dev/console",
        "dev/pts",
        "dev/shm",
        "proc",
        "sys",
    ):
        for root in (flat, exported):
            p = root / f
            if p.is_symlink() or p.is_file() or (p.exists() and not p.is_dir()):
                p.unlink()
            elif p.is_dir():
                import shutil

                shutil.rmtree(p)
    assert tree_digest(flat) == tree_digest(exported)


def test_replacing_a_symlinked_dir_does_not_reuse_stale_resolution(tmp_path: Path) -> None:
    dest = tmp_path / "root"
    extract_layer(
        io.BytesIO(
            layer_tar(
                [E("usr", "dir"), E("usr/lib", "dir"), E("lib", "symlink", linkname="usr/lib")]
            )
        ),
        dest,
    )
    upper = layer_tar(
        [
            E("lib/a", data=b"through the symlink"),
            E(".wh.lib"),
            E("lib", "dir"),
            E("lib/b", data=b"in the new real dir"),
        ]
    )
    extract_layer(io.BytesIO(upper), dest)
    assert (dest / "usr/lib/a").read_bytes() == b"through the symlink"
    assert not (dest / "lib").is_symlink() and (dest / "lib/b").exists()
    assert not (dest / "usr/lib/b").exists()
