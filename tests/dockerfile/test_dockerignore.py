""".dockerignore rules: reading the file, matching, precedence, walking a real context,
and a differential check against what the real Docker engine actually sends."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest

from slimage.dockerfile.dockerignore import (
    DockerIgnore,
    DockerignoreError,
    context_files,
    find_ignore_file,
    go_clean,
    load_ignore_patterns,
    read_patterns,
    walk_context,
)


def test_read_patterns_cleans_and_skips_comments() -> None:
    text = "\ufeff# comment\n\n  /build/  \n!  ./keep/../keep.txt\n   # not a comment\nx//y/\n"
    assert read_patterns(text) == ["build", "!keep.txt", "# not a comment", "x/y"]


def test_go_clean() -> None:
    assert go_clean("") == "."
    assert go_clean("//a/./b/../c/") == "/a/c"
    assert go_clean("../../x") == "../../x"
    assert go_clean("/../x") == "/x"


@pytest.mark.parametrize(
    ("pattern", "path", "excluded"),
    [
        ("**", "any/thing", True),
        ("**/*.pyc", "a.pyc", True),
        ("**/*.pyc", "deep/er/a.pyc", True),
        ("*.pyc", "deep/a.pyc", False),  # `*` stays in one directory
        ("*.md", "README.md", True),
        ("node_modules", "node_modules/x/y.js", True),  # a parent directory matches
        ("dir/**", "dir", False),
        ("dir/**", "dir/a/b", True),
        ("**/dir2/*", "dir/dir2/file", True),
        ("a?c", "abc", True),
        ("a?c", "a/c", False),
        ("a[b-d]e", "ace", True),
        ("a[^b-d]e", "ace", False),
        ("abc.def", "abcXdef", False),  # `.` is literal
        ("a(b)c/d+e", "a(b)c/d+e", True),
        ("a\\*b", "a*b", True),
        ("a\\*b", "axb", False),
        ("**/.git", ".git/HEAD", True),
        ("/secret.env", "secret.env", True),
    ],
)
def test_single_pattern(pattern: str, path: str, excluded: bool) -> None:
    assert DockerIgnore(read_patterns(pattern)).matches(path) is excluded


def test_exceptions_and_last_match_wins() -> None:
    m = DockerIgnore(["*.md", "!README.md", "docs", "!docs/keep", "docs/keep/tmp"])
    assert m.matches("CHANGES.md")
    assert not m.matches("README.md")
    assert m.matches("docs/a.txt")
    assert not m.matches("docs/keep/a.txt")
    assert m.matches("docs/keep/tmp/x")
    assert m.exclusions
    # Order matters: an exception before the exclusion it means to undo does nothing.
    assert DockerIgnore(["!README.md", "*.md"]).matches("README.md")


def test_context_root_is_never_excluded() -> None:
    assert not DockerIgnore(["**"]).matches(".")


@pytest.mark.parametrize("bad", ["!", "[abc", "abc\\"])
def test_malformed_patterns_are_errors(bad: str) -> None:
    with pytest.raises(DockerignoreError):
        DockerIgnore([bad])


def _tree(root: Path, files: list[str]) -> None:
    for rel in files:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(rel + "\n")


FILES = [
    "Dockerfile",
    "README.md",
    "NOTES.md",
    "docs/a/x.md",
    "src/a.py",
    "src/a.pyc",
    "src/sub/b.pyc",
    "src/sub/c.txt",
    "node_modules/keep/k.js",
    "node_modules/drop/d.js",
    ".git/HEAD",
    "secret.env",
    "app.tmp",
]
IGNORE = (
    "# comment\n**/*.pyc\nnode_modules\n!node_modules/keep\n*.md\n!README.md\n.git\n"
    "/secret.env\n  app.tmp  \n"
)
EXPECTED = [
    ".dockerignore",
    "Dockerfile",
    "README.md",
    "docs",
    "docs/a",
    "docs/a/x.md",
    "node_modules",
    "node_modules/keep",
    "node_modules/keep/k.js",
    "src",
    "src/a.py",
    "src/sub",
    "src/sub/c.txt",
]


def test_walk_context_keeps_parents_of_reincluded_files(tmp_path: Path) -> None:
    _tree(tmp_path, FILES)
    (tmp_path / ".dockerignore").write_text(IGNORE)
    assert context_files(tmp_path) == EXPECTED
    # Without exceptions an excluded directory is not even entered.
    rels = [rel for rel, _ in walk_context(tmp_path, ["node_modules", "src/sub"])]
    assert "node_modules" not in rels and "src/sub/c.txt" not in rels and "src/a.py" in rels


def test_walk_context_does_not_follow_symlinked_directories(tmp_path: Path) -> None:
    _tree(tmp_path, ["real/f"])
    os.symlink("real", tmp_path / "link")
    rels = [rel for rel, _ in walk_context(tmp_path, [])]
    assert rels == ["link", "real", "real/f"]


def test_dockerfile_specific_ignore_file_takes_precedence(tmp_path: Path) -> None:
    _tree(tmp_path, ["build/Dockerfile", "a.txt", "b.txt"])
    (tmp_path / ".dockerignore").write_text("a.txt\n")
    dockerfile = tmp_path / "build" / "Dockerfile"
    assert find_ignore_file(tmp_path, dockerfile) == tmp_path / ".dockerignore"
    assert load_ignore_patterns(tmp_path, dockerfile) == ["a.txt"]
    (tmp_path / "build" / "Dockerfile.dockerignore").write_text("b.txt\n")
    assert find_ignore_file(tmp_path, dockerfile) == tmp_path / "build/Dockerfile.dockerignore"
    assert context_files(tmp_path, dockerfile) == [
        ".dockerignore",
        "a.txt",
        "build",
        "build/Dockerfile",
        "build/Dockerfile.dockerignore",
    ]
    assert load_ignore_patterns(tmp_path / "nowhere") == []


def test_bad_pattern_in_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text("ok\n[broken\n")
    with pytest.raises(DockerignoreError, match=r"\.dockerignore"):
        load_ignore_patterns(tmp_path)


@pytest.mark.docker
def test_same_files_as_the_docker_engine_sends(tmp_path: Path, docker_engine: str) -> None:
    """Build `FROM scratch` + `COPY . /ctx/` with the real engine and compare the copied
    tree with walk_context. (The engine here has no buildx, so this is the classic
    builder's context upload, which uses the same pattern matcher.)"""
    _tree(tmp_path, FILES)
    (tmp_path / ".dockerignore").write_text(IGNORE)
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY . /ctx/\n")
    tag = f"slimage-test/ctx-{uuid.uuid4().hex[:12]}"
    env = dict(os.environ, DOCKER_BUILDKIT="0")
    run = lambda *a: subprocess.run(  # noqa: E731
        [docker_engine, *a], check=True, capture_output=True, env=env
    )
    run("build", "-q", "--network", "host", "-t", tag, str(tmp_path))
    cid = run("create", tag, "/none").stdout.decode().strip()
    try:
        exported = run("export", cid).stdout
    finally:
        run("rm", cid)
        run("rmi", tag)
    with tarfile.open(fileobj=io.BytesIO(exported)) as tar:
        names = sorted(
            m.name.rstrip("/")[len("ctx/") :] for m in tar.getmembers() if m.name.startswith("ctx/")
        )
    assert names == context_files(tmp_path) == EXPECTED
