"""Reading .debs: real ones from Debian, and broken ones."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from slimage.bases.debfile import DebFile
from slimage.bases.errors import DebFormatError
from tests.bases import support


@pytest.fixture(scope="module")
def real_deb() -> Path:
    """busybox-static from Debian (verified into the shared cache)."""
    lock, _ = support.preset_lock("musl")
    from slimage.bases.cache import DebCache

    pkg = next(p for p in lock.packages if p.name == "busybox-static")
    return DebCache(support.CACHE).get(pkg)


def test_real_deb_entries_match_dpkg_deb(real_deb: Path) -> None:
    listing = subprocess.run(
        ["dpkg-deb", "--fsys-tarfile", str(real_deb)], capture_output=True, check=True
    ).stdout
    import io
    import tarfile

    want = {m.name: m.size for m in tarfile.open(fileobj=io.BytesIO(listing))}
    with DebFile(real_deb) as deb:
        assert "Package: busybox-static" in deb.control_text()
        got = {}
        for info, data in deb.data_entries():
            got[info.name] = info.size
            if data is not None and info.name == "./bin/busybox":
                assert data.read(4) == b"\x7fELF"
    assert got == want


def test_truncated_deb_is_refused_with_the_member_named(real_deb: Path, tmp_path: Path) -> None:
    data = real_deb.read_bytes()
    cut = tmp_path / "cut.deb"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(DebFormatError, match=r"truncated \.deb: member data\.tar\.xz"):
        DebFile(cut)


def _rewrite_member(data: bytes, name: bytes, new: bytes) -> bytes:
    """Replace ar member NAME with NEW, with a consistent ar header (a lying .deb)."""
    out = bytearray(data[:8])
    pos = 8
    while pos < len(data):
        header = data[pos : pos + 60]
        size = int(header[48:58])
        body = data[pos + 60 : pos + 60 + size]
        if header[:16].strip().rstrip(b"/") == name:
            body = new
            header = header[:48] + str(len(new)).encode().ljust(10) + header[58:]
        out += header + body + (b"\n" if len(body) & 1 else b"")
        pos += 60 + size + (size & 1)
    return bytes(out)


def test_cut_compressed_stream_inside_a_well_formed_ar_is_refused(
    real_deb: Path, tmp_path: Path
) -> None:
    with DebFile(real_deb) as deb:
        m = next(x for x in deb.members if x.name.startswith("data.tar"))
        raw = real_deb.read_bytes()[m.offset : m.offset + m.size]
    bad = tmp_path / "short.deb"
    bad.write_bytes(_rewrite_member(real_deb.read_bytes(), b"data.tar.xz", raw[: len(raw) // 3]))
    with DebFile(bad) as deb, pytest.raises(DebFormatError, match="truncated|corrupt"):
        for _info, data in deb.data_entries():
            if data is not None:
                data.read()


def test_not_a_deb(tmp_path: Path) -> None:
    p = tmp_path / "x.deb"
    p.write_bytes(b"hello world, not an archive")
    with pytest.raises(DebFormatError, match="not a .deb"):
        DebFile(p)
