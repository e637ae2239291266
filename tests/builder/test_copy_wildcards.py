"""COPY/ADD sources that match nothing, side by side with BuildKit.

BuildKit (dockerfile2llb's AllowEmptyWildcard, for COPY and ADD alike) copies nothing
for a wildcard that matches nothing and goes on, with an empty layer; a plain path that
does not exist, or a wildcard under a directory that does not exist, still fails. Each
case is built by both from the same context: the same outcome, and when both succeed the
same layers, history and files. The stages are FROM scratch, so the trees stay small.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from slimage.store.store import Store
from tests.builder import fidelity
from tests.support import testbed

STAGE = "FROM scratch AS a\nCOPY sub /etc/\nCOPY a.txt /etc/hostname\n"
OK = {
    "copy-none": "COPY nomatch* /dst/",
    "add-none": "ADD nomatch* /dst/",
    "copy-none-qmark": "COPY nomatc? /dst/",
    "copy-none-in-dir": "COPY sub/nomatch* /dst/",
    "copy-none-mid": "COPY nodir*/a.txt /dst/",
    "copy-none-to-file": "COPY nomatch* /dstfile",
    "copy-none-escaping": "COPY ../nomatch* /dst/",
    "copy-none-then-some": "COPY nomatch* /dst/\nCOPY a.txt /dst/",
    "copy-some": "COPY nomatch* *.txt /dst/",
    "add-some": "ADD nomatch* *.txt /dst/",
    "copy-some-deep": "COPY */*.txt /dst/",
    "copy-via-link": "COPY link/*.txt /dst/",
    "copy-from-none": STAGE + "FROM scratch\nCOPY --from=a /etc/nomatch* /dst/",
    "copy-from-some": STAGE + "FROM scratch\nCOPY --from=a /etc/*.txt /dst/",
    "copy-from-under-file": STAGE + "FROM scratch\nCOPY --from=a /etc/hostname/x* /dst/",
}
FAIL = {
    "copy-missing": "COPY missing.txt /dst/",
    "add-missing": "ADD missing.txt /dst/",
    "copy-none-and-missing": "COPY nomatch* missing.txt /dst/",
    "copy-none-in-missing-dir": "COPY nodir/*.txt /dst/",
    "copy-none-under-file": "COPY a.txt/nomatch* /dst/",
    "copy-from-missing": STAGE + "FROM scratch\nCOPY --from=a /etc/nomatch /dst/",
    "copy-from-none-in-missing-dir": STAGE + "FROM scratch\nCOPY --from=a /nodir/*.txt /dst/",
}
# .dockerignore: an ignored dir is no dir for a glob, unless a `!` rule keeps some of it.
IGNORED = {
    "ignored-all-matches": ("*.txt\n", "COPY *.txt /dst/", True),
    "ignored-dir": ("sub\n", "COPY sub/*.txt /dst/", False),
    "ignored-dir-kept-file": ("sub\n!sub/s.txt\n", "COPY sub/*.txt /dst/", True),
}


def _context(tmp: Path, body: str, ignore: str | None = None) -> Path:
    ctx = tmp / "ctx"
    (ctx / "sub").mkdir(parents=True)
    (ctx / "a.txt").write_text("a\n")
    (ctx / "b.txt").write_text("b\n")
    (ctx / "x.log").write_text("x\n")
    (ctx / "sub" / "s.txt").write_text("s\n")
    (ctx / "sub" / "t.md").write_text("t\n")
    os.symlink("sub", ctx / "link")
    if not body.startswith("FROM"):
        body = "FROM scratch\n" + body
    (ctx / "Dockerfile").write_text(body + "\n")
    if ignore is not None:
        (ctx / ".dockerignore").write_text(ignore)
    return ctx


def _buildkit(ctx: Path, tag: str) -> subprocess.CompletedProcess[str]:
    # --no-cache: BuildKit's cache can hand back a layer made from another context.
    args = ["build", "--no-cache", "--network", "host", "-q", "-t", tag, str(ctx)]
    testbed.docker("rmi", "-f", tag, check=False, capture_output=True)
    return testbed.docker(*args, check=False, capture_output=True, text=True)


def _slimage(ctx: Path, tag: str, store: Store) -> str | None:
    """None when the build succeeds, else the one-line error."""
    from slimage.builder import BuildOptions, build
    from slimage.errors import SlimageError

    opts = BuildOptions(str(ctx), str(ctx / "Dockerfile"), tags=[tag], quiet=True)
    try:
        build(opts, store=store)
    except SlimageError as exc:
        return str(exc)
    return None


def _same_image(store: Store, tag: str) -> None:
    ours = fidelity.slimage_facts(store, tag)
    theirs = fidelity.docker_facts(tag)
    assert ours["layers"] == theirs["layers"], (ours["created_by"], theirs["created_by"])
    assert ours["created_by"] == theirs["created_by"]
    ours_tree = fidelity.slimage_tree(store, tag)
    diff = fidelity.tree_diff(ours_tree, fidelity.docker_tree(tag))
    assert not diff, "\n".join(diff[:40])


def _check(
    case: str, body: str, ok: bool, tmp: Path, store: Store, ignore: str | None = None
) -> None:
    ctx = _context(tmp, body, ignore)
    tag = f"slimage-test/copy-wildcard-{case}"
    theirs = _buildkit(ctx, tag)
    assert (theirs.returncode == 0) == ok, theirs.stderr[-600:]
    error = _slimage(ctx, tag, store)
    if ok:
        assert error is None, error
        _same_image(store, tag)
    else:
        assert error is not None and "\n" not in error, error
        assert "not found" in error or "not a directory" in error, error


@pytest.mark.usefixtures("docker_engine")
@pytest.mark.parametrize("case", sorted(OK))
def test_buildkit_and_slimage_both_build(case: str, build_store: Store, tmp_path: Path) -> None:
    _check(case, OK[case], True, tmp_path, build_store)


@pytest.mark.usefixtures("docker_engine")
@pytest.mark.parametrize("case", sorted(FAIL))
def test_buildkit_and_slimage_both_refuse(case: str, build_store: Store, tmp_path: Path) -> None:
    _check(case, FAIL[case], False, tmp_path, build_store)


@pytest.mark.usefixtures("docker_engine")
@pytest.mark.parametrize("case", sorted(IGNORED))
def test_dockerignore_with_wildcards_as_buildkit(
    case: str, build_store: Store, tmp_path: Path
) -> None:
    ignore, body, ok = IGNORED[case]
    _check(case, body, ok, tmp_path, build_store, ignore)


def test_matched_files_are_the_expected_ones(build_store: Store, tmp_path: Path) -> None:
    """Not only the same as BuildKit: the files a partly matching wildcard names, and
    nothing (not even /dst) for one that matches nothing."""
    from slimage.store.images import open_image

    ctx = _context(tmp_path, "COPY nomatch* *.txt link/*.txt /dst/\nCOPY nomatch* /none/")
    tag = "slimage-test/copy-wildcard-expected"
    assert _slimage(ctx, tag, build_store) is None
    tree = fidelity.slimage_tree(build_store, tag)
    assert sorted(p for p in tree if p.startswith(("dst", "none"))) == [
        "dst",
        "dst/a.txt",
        "dst/b.txt",
        "dst/s.txt",
    ]
    assert len(open_image(build_store, tag).config.diff_ids) == 2
