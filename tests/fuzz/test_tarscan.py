"""Fuzz the tar scanner, the layer check and the whiteout / path validators (issue 9).

Properties, for any input:
- only a `SlimageError` may escape (anything else fails the test);
- the scanner terminates, and fast: each example runs under a SIGALRM bound, so a
  loop like H2's (a negative PAX size) fails instead of hanging CI;
- an accepted entry carries values the extractor can hand to the kernel.

Inputs: mutated valid tars (byte flips, cuts, splices), headers with random fields
(octal, base-256, junk), random PAX records, and random whiteout / path names.
Budget: well under 30 s in all on this machine.
"""

from __future__ import annotations

import io
import math
import signal
from collections.abc import Iterator
from contextlib import contextmanager

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slimage.errors import SlimageError, UnsafeArchiveError
from slimage.layers import tarscan
from slimage.layers.safety import LayerChecker, xattr_problem
from slimage.layers.tarscan import TarEntry, TarScanner
from slimage.layers.whiteout import victim_problem, whiteout_victim
from tests.adversarial import rawtar as rt
from tests.fuzz import budget
from tests.transports import imagekit
from tests.transports.imagekit import E

SETTINGS = settings(
    max_examples=budget.examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=budget.DERANDOMIZE,
    database=budget.DATABASE,
)

SEED_TARS = [
    imagekit.layer_tar(
        [
            E("etc", "dir"),
            E("etc/a", data=b"hello" * 100),
            E("l", "symlink", linkname="etc/a"),
            E("h", "hardlink", linkname="etc/a"),
            E("etc/.wh.gone"),
            E("etc/.wh..wh..opq"),
            E("dev", "dir"),
            E("dev/null", "chardev", major=1, minor=3),
            E("x" * 150 + "/long", data=b"x", xattrs={"user.k": "v"}),
        ]
    ),
    rt.tar(
        rt.pax({"path": b"p/" + b"q" * 120, "uid": b"1000", "mtime": b"1700000000.5"}),
        rt.entry("p", b"data"),
        rt.entry("big", size=rt.base256(3, 12), data=b"abc"),
    ),
]


@contextmanager
def time_bound(seconds: int) -> Iterator[None]:
    def boom(signum: int, frame: object) -> None:
        raise TimeoutError(f"scanner still running after {seconds}s")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _check_entry(entry: TarEntry) -> None:
    """What the scanner hands out is always extractable."""
    assert 0 <= entry.size <= tarscan.MAX_FILE_SIZE
    assert 0 <= entry.uid <= tarscan.MAX_ID and 0 <= entry.gid <= tarscan.MAX_ID
    assert math.isfinite(entry.mtime) and abs(entry.mtime) <= tarscan.MAX_MTIME
    assert 0 <= entry.devmajor <= tarscan.MAX_DEV and 0 <= entry.devminor <= tarscan.MAX_DEV
    assert tarscan.path_problem(entry.name) is None
    assert "\0" not in entry.linkname


def scan_all_ways(data: bytes) -> None:
    """Feed DATA to the scanner whole, in odd-sized chunks and through scan_file, with the
    layer check on; only SlimageError may come out, and quickly."""
    for chunk in (len(data) or 1, 7, 511):
        checker = LayerChecker("fuzz")

        def on_entry(e: TarEntry, checker: LayerChecker = checker) -> None:
            _check_entry(e)
            checker.check(e)

        scanner = TarScanner(on_entry, name="fuzz")
        with time_bound(5):
            try:
                for i in range(0, len(data), chunk):
                    scanner.feed(data[i : i + chunk])
                scanner.close()
            except SlimageError:
                pass


def scan_file_way(data: bytes, tmp: str) -> None:
    import os

    with open(tmp, "wb") as fh:
        fh.write(data)
    fd = os.open(tmp, os.O_RDONLY)
    try:
        scanner = TarScanner(_check_entry, name="fuzz")
        with time_bound(5):
            try:
                scanner.scan_file(fd)
                scanner.close()
            except SlimageError:
                pass
    finally:
        os.close(fd)


mutation = st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255))


@SETTINGS
@given(
    seed=st.sampled_from(SEED_TARS),
    flips=st.lists(mutation, max_size=12),
    cut=st.none() | st.integers(min_value=0),
)
def test_mutated_tars(seed: bytes, flips: list[tuple[int, int]], cut: int | None) -> None:
    data = bytearray(seed)
    for pos, value in flips:
        data[pos % len(data)] = value
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    scan_all_ways(bytes(data))


def _num_field(width: int) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.integers(min_value=0, max_value=8 ** (width - 1) - 1).map(lambda v: rt.octal(v, width)),
        st.integers(min_value=-(1 << (8 * width - 2)), max_value=(1 << (8 * width - 2))).map(
            lambda v: rt.base256(v, width)
        ),
        st.binary(min_size=width, max_size=width),
    )


header = st.builds(
    rt.header,
    st.text(max_size=40).filter(lambda s: len(s.encode("utf-8", "surrogateescape")) <= 100)
    | st.sampled_from([".wh...", ".wh..", ".wh.", "a/.wh...", "a/../b", "/abs", "./", "dev/x"]),
    typeflag=st.sampled_from([b"0", b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"\0", b"Z"]),
    size=_num_field(12),
    mode=_num_field(8),
    uid=_num_field(8),
    gid=_num_field(8),
    mtime=_num_field(12),
    linkname=st.sampled_from(["", "a", "../x", "/etc/passwd", ".wh.."]),
    devmajor=_num_field(8),
    devminor=_num_field(8),
)

pax_value = st.one_of(
    st.binary(max_size=40),
    st.integers().map(lambda v: str(v).encode()),
    st.sampled_from([b"nan", b"inf", b"-inf", b"1e400", b"-1", b"0x10", b" 5", b"1_0", b"\0"]),
    st.just(b"a/" * 3000),
)
pax_key = st.sampled_from(
    [
        "path",
        "linkpath",
        "size",
        "uid",
        "gid",
        "mtime",
        "atime",
        "uname",
        "SCHILY.xattr.security.capability",
        "SCHILY.xattr.trusted.overlay.opaque",
        "SCHILY.xattr.user.x",
        "SCHILY.xattr.",
    ]
)
raw_pax = st.one_of(
    st.dictionaries(pax_key, pax_value, max_size=4).map(rt.pax),
    st.binary(max_size=200).map(rt.pax),
    st.tuples(st.integers(-100, 100000), pax_key, pax_value).map(
        lambda t: rt.pax(str(t[0]).encode() + b" " + t[1].encode() + b"=" + t[2] + b"\n")
    ),
)


@SETTINGS
@given(
    parts=st.lists(
        st.one_of(
            header,
            raw_pax,
            st.tuples(header, st.binary(max_size=600)).map(lambda t: t[0] + rt.pad(t[1])),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_random_headers_and_pax_records(parts: list[bytes]) -> None:
    scan_all_ways(rt.tar(*parts))


@settings(
    max_examples=budget.examples(60),
    deadline=None,
    derandomize=budget.DERANDOMIZE,
    database=budget.DATABASE,
)
@given(parts=st.lists(st.one_of(header, raw_pax), min_size=1, max_size=4))
def test_scan_file_path(parts: list[bytes]) -> None:
    import tempfile

    with tempfile.NamedTemporaryFile() as fh:
        scan_file_way(rt.tar(*parts), fh.name)


# ------------------------------------------------------------------- the validators

names = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", ".", "..", "...", "a/b", "a\0b", ".wh.", ".wh..wh..opq", "/"]),
)


@settings(
    max_examples=budget.examples(300),
    deadline=None,
    derandomize=budget.DERANDOMIZE,
    database=budget.DATABASE,
)
@given(directory=st.sampled_from(["", "a", "a/b/c"]), victim=names)
def test_whiteout_validator(directory: str, victim: str) -> None:
    """A victim that passes is one real name in the whiteout's own directory; the opaque
    marker and AUFS names delete nothing; anything else is an UnsafeArchiveError."""
    if "/" in victim:  # cannot come out of a path's last component: the rule still says no
        assert victim_problem(victim) is not None
        return
    base = ".wh." + victim
    name = f"{directory}/{base}" if directory else base
    try:
        got = whiteout_victim(name, where="fuzz")
    except UnsafeArchiveError as exc:
        assert str(exc).startswith("fuzz: ") and "\n" not in str(exc)
        assert victim_problem(victim) is not None
        return
    if base.startswith(".wh..wh."):
        assert got is None
        return
    assert got == victim
    assert got not in ("", ".", "..") and "/" not in got and "\0" not in got


@settings(
    max_examples=budget.examples(300),
    deadline=None,
    derandomize=budget.DERANDOMIZE,
    database=budget.DATABASE,
)
@given(
    path=st.one_of(
        st.text(max_size=300),
        st.lists(st.sampled_from(["a", "é" * 70, "b" * 255, "c" * 256]), max_size=600).map(
            "/".join
        ),
    )
)
def test_path_validator(path: str) -> None:
    problem = tarscan.path_problem(path)
    raw = path.encode("utf-8", "surrogateescape")
    ok = (
        b"\0" not in raw
        and len(raw) <= tarscan.PATH_MAX
        and len(raw.split(b"/")) <= tarscan.MAX_DEPTH
        and all(len(c) <= tarscan.NAME_MAX for c in raw.split(b"/"))
    )
    assert (problem is None) == ok, (problem, len(raw))


@settings(
    max_examples=budget.examples(200),
    deadline=None,
    derandomize=budget.DERANDOMIZE,
    database=budget.DATABASE,
)
@given(
    key=st.sampled_from(["security.capability", "trusted.overlay.x", "user.a", "", "a\0b"]),
    value=st.binary(max_size=30),
)
def test_xattr_validator(key: str, value: bytes) -> None:
    problem = xattr_problem(key, value)
    if key == "security.capability" and problem is None:
        assert len(value) in (12, 20, 24)
    if key in ("", "a\0b") or key.startswith("trusted.overlay."):
        assert problem is not None


def test_negative_pax_size_terminates() -> None:
    """The H2 reproducer itself, through every way of scanning."""
    data = rt.tar(rt.pax({"size": b"-1536"}), rt.entry("f", b"x" * 10_000))
    scan_all_ways(data)
    import tempfile

    with tempfile.NamedTemporaryFile() as fh:
        scan_file_way(data, fh.name)
    try:
        list(tarscan.iter_entries(io.BytesIO(data)))
    except SlimageError:
        pass
    else:
        raise AssertionError("a negative PAX size was accepted")
