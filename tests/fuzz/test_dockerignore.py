"""Fuzzing the .dockerignore reader and matcher (slimage.dockerfile.dockerignore).

Issue 9 asks that every input class be a fuzzed guarantee. For .dockerignore that is:
any file text and any path give either an answer or a `SlimageError` (never another
exception), and the answers obey properties an oracle can check: a literal pattern
excludes exactly that path and what is under it, `*`/`?` never cross a `/` (checked
against `fnmatch` component by component), and `P` followed by `!P` excludes nothing.
"""

from __future__ import annotations

import fnmatch

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slimage.dockerfile.dockerignore import DockerIgnore, go_clean, read_patterns
from slimage.errors import SlimageError
from tests.fuzz import budget

FUZZ = settings(
    max_examples=budget.examples(400),
    deadline=None,
    derandomize=budget.DERANDOMIZE,
    database=budget.DATABASE,
    suppress_health_check=[HealthCheck.too_slow],
)

# Characters that mean something to the matcher, plus a few plain ones and oddities.
_META = st.sampled_from(list("*?[]^!\\/.-{}()|$+ \t#\ufeff\x00é"))
_PLAIN = st.sampled_from(list("abc"))
_TEXT = st.text(st.one_of(_META, _PLAIN), max_size=40)
_PATH = st.text(st.sampled_from(list("abc./*?[]\\")), max_size=20)

_NAME = st.text(st.sampled_from(list("ab.-")), min_size=1, max_size=3).filter(
    lambda s: s not in (".", "..")
)
_REL = st.lists(_NAME, min_size=1, max_size=4).map("/".join)


def _answer(patterns: list[str], paths: list[str]) -> list[bool] | None:
    """The matcher's answers, or None when it refused the patterns with a SlimageError."""
    try:
        ign = DockerIgnore(patterns)
    except SlimageError:
        return None
    return [ign.matches(p) for p in paths]


@FUZZ
@given(text=_TEXT, paths=st.lists(_PATH, max_size=5))
def test_any_ignore_file_gives_an_answer_or_a_slimage_error(text: str, paths: list[str]) -> None:
    patterns = read_patterns(text)  # reading never fails
    _answer(patterns, paths)  # anything but a SlimageError fails the test


@FUZZ
@given(patterns=st.lists(_TEXT, max_size=4), paths=st.lists(_PATH, max_size=5))
def test_raw_pattern_lists_give_an_answer_or_a_slimage_error(
    patterns: list[str], paths: list[str]
) -> None:
    _answer(patterns, paths)


@FUZZ
@given(literal=_REL, path=_REL)
def test_a_literal_pattern_excludes_that_path_and_what_is_under_it(literal: str, path: str) -> None:
    pattern = go_clean(literal)
    path = go_clean(path)
    expect = path == pattern or path.startswith(pattern + "/")
    assert DockerIgnore([literal]).matches(path) is expect


_GLOB_COMP = st.text(st.sampled_from(list("ab*?")), min_size=1, max_size=4).filter(
    lambda s: "**" not in s
)


@FUZZ
@given(comps=st.lists(_GLOB_COMP, min_size=1, max_size=3), path=_REL)
def test_star_and_question_never_cross_a_slash(comps: list[str], path: str) -> None:
    """Oracle: the path, or one of its parent dirs, has as many components as the
    pattern and each matches its pattern component (fnmatch within one component)."""
    pattern = "/".join(comps)
    parts = go_clean(path).split("/")
    expect = len(parts) >= len(comps) and all(
        fnmatch.fnmatchcase(parts[i], comps[i]) for i in range(len(comps))
    )
    assert DockerIgnore([pattern]).matches(path) is expect


@FUZZ
@given(
    text=st.text(st.sampled_from(list("ab*?/.[]!")), min_size=1, max_size=12),
    path=_REL,
)
def test_a_pattern_then_its_negation_excludes_nothing(text: str, path: str) -> None:
    patterns = read_patterns(f"{text}\n!{text.lstrip('!')}\n")
    got = _answer(patterns, [path])
    assert got in (None, [False])


@FUZZ
@given(patterns=st.lists(st.text(st.sampled_from(list("ab*?/")), max_size=8), max_size=4))
def test_the_context_root_is_never_excluded(patterns: list[str]) -> None:
    # Context-relative spellings of the root (the walker never produces "/").
    assert _answer(patterns, [".", "", "./", "a/.."]) in (None, [False] * 4)
