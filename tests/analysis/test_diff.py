"""`diff` between images a real engine built: added, removed and changed paths (content,
mode, owner) and the size delta, checked against what the Dockerfile did."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from slimage.analysis.diff import diff_images
from slimage.cli.main import main
from tests.analysis.layered import layered2_archive_path, layered_archive_path

pytestmark = pytest.mark.docker


@pytest.fixture(scope="session")
def pair(debian_image: str) -> tuple[Path, Path]:
    return layered_archive_path(), layered2_archive_path()


def test_diff_finds_each_kind_of_change(pair: tuple[Path, Path]) -> None:
    a, b = pair
    report = diff_images(str(a), str(b))
    by_path = {c.path: c for c in report.changes}
    assert by_path["/data/added"].change == "added" and by_path["/data/added"].size_after == 5000
    assert by_path["/data/sym"].change == "removed" and by_path["/data/sym"].kind == "symlink"
    assert by_path["/data/opq/new"].what == ["content"]  # "new\n" -> "changed\n"
    assert by_path["/data/keep"].what == ["mode"]
    assert by_path["/data/tofile/x"].what == ["owner"]
    # rewritten with the same bytes: copied up into the new layer, but not a change
    assert "/data/swap" not in by_path
    assert report.added == 1 and report.removed == 1
    assert report.size_delta == report.b.size_bytes - report.a.size_bytes > 0
    assert report.merged_delta == 5000 + len("changed\n") - len("new\n") - len("/data/over.bin")


def test_diff_of_an_image_with_itself_is_empty(pair: tuple[Path, Path]) -> None:
    report = diff_images(str(pair[0]), str(pair[0]))
    assert report.changes == [] and report.size_delta == 0


def test_diff_cli(pair: tuple[Path, Path]) -> None:
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["diff", "--json", str(pair[0]), str(pair[1])]) == 0
    data = json.loads(buf.getvalue())
    assert {"added", "removed", "changed", "size_delta", "changes"} <= set(data)
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["diff", str(pair[0]), str(pair[1])]) == 0
    assert "/data/added" in buf.getvalue() and "1 added" in buf.getvalue()
