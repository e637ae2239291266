"""BuildKit's own parser test files: same tree for every positive case, rejection for
every negative one. Nothing here may be skipped; a missing directory is a failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from slimage.dockerfile import parse, parse_file
from slimage.dockerfile.dump import dump
from slimage.dockerfile.parser import read_text
from slimage.errors import DockerfileError
from tests.dockerfile.conftest import BUILDKIT_CASES


def _cases(sub: str) -> list[str]:
    d = BUILDKIT_CASES / sub
    return sorted(p.name for p in d.iterdir() if p.is_dir()) if d.is_dir() else []


POSITIVE = _cases("testfiles")
NEGATIVE = _cases("testfiles-negative")


def test_case_directories_are_present(buildkit_cases: Path) -> None:
    # Guards against the parametrized tests below collecting zero cases.
    assert len(POSITIVE) >= 30
    assert len(NEGATIVE) >= 4


@pytest.mark.parametrize("case", POSITIVE)
def test_tree_matches_buildkit_result(buildkit_cases: Path, case: str) -> None:
    case_dir = buildkit_cases / "testfiles" / case
    text = read_text(case_dir / "Dockerfile")
    expected = (case_dir / "result").read_bytes().decode("utf-8").replace("\r\n", "\n")
    tree = parse(text, path=str(case_dir / "Dockerfile"), strict=False)
    assert dump(tree) == expected


@pytest.mark.parametrize("case", NEGATIVE)
def test_negative_case_is_rejected(buildkit_cases: Path, case: str) -> None:
    path = buildkit_cases / "testfiles-negative" / case / "Dockerfile"
    with pytest.raises(DockerfileError) as info:
        parse_file(path, strict=False)
    # The one-line message names the file, as the CLI prints it.
    assert str(info.value).startswith(str(path))


@pytest.mark.parametrize("case", POSITIVE)
def test_every_instruction_has_lines_inside_the_file(buildkit_cases: Path, case: str) -> None:
    path = buildkit_cases / "testfiles" / case / "Dockerfile"
    df = parse_file(path, strict=False)
    nlines = len(df.lines)
    prev_end = 0
    for inst in df.instructions:
        assert prev_end < inst.start_line <= inst.end_line <= nlines
        prev_end = inst.end_line
        # The first source line of an instruction starts with its keyword.
        first = df.lines[inst.start_line - 1].lstrip()
        assert first.lower().startswith(inst.keyword.lower())
