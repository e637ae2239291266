"""Fuzz: an image's history is input from whoever built the image. Turning it back into
Dockerfile lines for `dive`'s fix hint must never crash the browser, whatever the text."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from slimage.oci.model import HistoryEntry
from slimage.tui.hint import _KEYWORDS, hints, instruction_of
from tests.fuzz import budget

PIECES = st.sampled_from(
    [
        "RUN ",
        "/bin/sh -c ",
        "#(nop) ",
        " # buildkit",
        "|1 ",
        "|3 A=1 ",
        "CMD ",
        '["a" "b\\"c"]',
        "EXPOSE map[",
        ":{}]",
        "COPY ",
        " in ",
        "apt-get install -y x",
        "npm install",
        "\\",
        "\n",
        "<<EOF",
        "$",
        "${X:-y}",
        "'",
        '"',
        " && ",
        "ONBUILD ",
        "HEALTHCHECK ",
        "FROM x",
    ]
)
CREATED_BY = st.one_of(st.text(max_size=60), st.lists(PIECES, max_size=8).map("".join))


@settings(
    max_examples=budget.examples(400),
    deadline=None,
    derandomize=budget.DERANDOMIZE,
    database=budget.DATABASE,
)
@given(CREATED_BY)
def test_instruction_of_never_raises(created_by: str) -> None:
    line = instruction_of(created_by)
    assert line is None or line.split(" ", 1)[0] in _KEYWORDS


@settings(
    max_examples=budget.examples(60),
    deadline=None,
    derandomize=budget.DERANDOMIZE,
    database=budget.DATABASE,
)
@given(st.lists(st.tuples(CREATED_BY, st.booleans()), max_size=6))
def test_hints_never_raise(entries: list[tuple[str, bool]]) -> None:
    steps: list[tuple[HistoryEntry, int | None]] = []
    layer = 0
    for text, empty in entries:
        steps.append((HistoryEntry(created_by=text, empty_layer=empty), None if empty else layer))
        layer += 0 if empty else 1
    found = hints(steps)
    assert set(found) <= {i for _, i in steps if i is not None}
