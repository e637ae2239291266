"""The streaming tar scanner agrees with tarfile and refuses broken archives."""

from __future__ import annotations

import io
import random
import tarfile

import pytest

from slimage.errors import InvalidImageError
from slimage.layers.tarscan import DockerSize, TarScanner, iter_entries, scan


def build_tar(fmt: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        d = tarfile.TarInfo("./usr/")
        d.type = tarfile.DIRTYPE
        d.mode = 0o755
        tf.addfile(d)
        long = "usr/share/" + "very-long-directory-name/" * 8 + "file.txt"
        for name, data in [("usr/a.txt", b"abc"), (long, b"x" * 1000), ("big", b"y" * 70000)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.uid = 3000000 if fmt == tarfile.GNU_FORMAT else 1000
            info.mode = 0o4755
            tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("usr/link")
        link.type = tarfile.SYMTYPE
        link.linkname = "a.txt"
        tf.addfile(link)
        hard = tarfile.TarInfo("usr/hard")
        hard.type = tarfile.LNKTYPE
        hard.linkname = "usr/a.txt"
        tf.addfile(hard)
        wh = tarfile.TarInfo("usr/.wh.gone")
        tf.addfile(wh, io.BytesIO(b""))
    return buf.getvalue()


@pytest.mark.parametrize("fmt", [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_matches_tarfile_in_any_chunking(fmt: int) -> None:
    data = build_tar(fmt)
    expected = [
        (
            m.name.removeprefix("./").strip("/"),
            m.size if m.isfile() else 0,
            m.uid,
            m.mode,
            m.linkname,
        )
        for m in tarfile.open(fileobj=io.BytesIO(data))
    ]
    rng = random.Random(fmt)
    for _ in range(5):
        got = []
        scanner = TarScanner(
            lambda e, got=got: got.append((e.name, e.size, e.uid, e.mode, e.linkname))
        )
        pos = 0
        while pos < len(data):
            step = rng.choice([1, 7, 511, 512, 513, 4096, 100000])
            scanner.feed(data[pos : pos + step])
            pos += step
        scanner.close()
        assert got == expected


def test_file_data_reaches_the_sink() -> None:
    data = build_tar(tarfile.PAX_FORMAT)
    seen: dict[str, bytearray] = {}

    def on_entry(entry):
        if entry.kind == "file":
            buf = seen.setdefault(entry.name, bytearray())
            return buf.extend
        return None

    scan(io.BytesIO(data), on_entry)
    assert bytes(seen["big"]) == b"y" * 70000
    assert bytes(seen["usr/a.txt"]) == b"abc"


def test_docker_size_rule() -> None:
    data = build_tar(tarfile.PAX_FORMAT)
    sizer = DockerSize()
    scan(io.BytesIO(data), sizer)
    # regular files 3 + 1000 + 70000, symlink target "a.txt" 5; hardlink, dir, whiteout 0
    assert sizer.total == 3 + 1000 + 70000 + 5


def test_truncated_tar_is_refused() -> None:
    data = build_tar(tarfile.PAX_FORMAT)
    with pytest.raises(InvalidImageError, match="truncated"):
        list(iter_entries(io.BytesIO(data[:2000]), name="cut.tar"))


def test_corrupt_header_is_refused() -> None:
    data = bytearray(build_tar(tarfile.PAX_FORMAT))
    data[600] ^= 0xFF  # inside the second header's name field
    with pytest.raises(InvalidImageError, match="bad checksum"):
        list(iter_entries(io.BytesIO(bytes(data)), name="bad.tar"))
