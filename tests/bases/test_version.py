"""Debian version ordering, checked against the real `dpkg --compare-versions`."""

from __future__ import annotations

import itertools
import shutil
import subprocess

import pytest

from slimage.bases.version import compare_versions, satisfies

VERSIONS = [
    "1.0",
    "1.0-1",
    "1.0-2",
    "1.0~rc1",
    "1.0~rc1-1",
    "1.0+b1",
    "1:0.9",
    "0:1.0",
    "2.36-9+deb12u4",
    "2.36-9+deb12u14",
    "2.31-13",
    "18.20.4+dfsg-1~deb12u2",
    "18.20.4+dfsg-1",
    "1.0a",
    "1.0.1",
    "1.00",
    "1.0-0",
    "10",
    "9",
    "1.2.3~~",
    "1.2.3~",
    "3.0.20-1~deb12u2",
    "1:1.2.13.dfsg-1",
]


def _dpkg(a: str, op: str, b: str) -> bool:
    return subprocess.run(["dpkg", "--compare-versions", a, op, b]).returncode == 0


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="needs dpkg as the reference")
def test_ordering_matches_dpkg_for_every_pair() -> None:
    mismatches = []
    for a, b in itertools.combinations(VERSIONS, 2):
        ours = compare_versions(a, b)
        if _dpkg(a, "lt", b):
            want = -1
        elif _dpkg(a, "eq", b):
            want = 0
        else:
            want = 1
        if ours != want:
            mismatches.append((a, b, ours, want))
    assert mismatches == []


def test_tilde_sorts_before_release_and_epoch_wins() -> None:
    assert compare_versions("1.0~rc1", "1.0") < 0
    assert compare_versions("1:0.1", "9.9") > 0
    assert compare_versions("1.0", "1.0-0") == 0


@pytest.mark.parametrize(
    "version,op,wanted,ok",
    [
        ("2.36-9+deb12u4", ">=", "2.34", True),
        ("2.31-13", ">=", "2.34", False),
        ("1.0", "<<", "1.0", False),
        ("1.0", "<=", "1.0", True),
        ("1.1", ">>", "1.0", True),
        ("1.0", "=", "1.0", True),
    ],
)
def test_satisfies(version: str, op: str, wanted: str, ok: bool) -> None:
    assert satisfies(version, op, wanted) is ok
