"""Fuzzing the Dockerfile frontend: whatever text comes in, parsing, typing, the stage
view, the builder's plan and lint end in a result or a `SlimageError`, never another exception.

The text is built from Dockerfile pieces (instructions, flags, quotes, continuations,
heredocs, variables, directives) so the fuzzer reaches deep into the parser instead of
failing on the first character, plus raw unicode noise for the tokenizer."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slimage.builder.planner import plan
from slimage.dockerfile.frontend import parse
from slimage.dockerfile.lint import lint_text
from slimage.dockerfile.stages import stages
from slimage.errors import SlimageError
from tests.fuzz import budget

SETTINGS = settings(
    max_examples=budget.examples(300),
    deadline=None,
    derandomize=budget.DERANDOMIZE,
    database=budget.DATABASE,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

KEYWORDS = [
    "FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
    "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL", "MAINTAINER",
    "from", "run", "NOTANINSTRUCTION",
]  # fmt: skip
PIECES = [
    "alpine", "scratch", "debian:12 AS b", "--platform=$BUILDPLATFORM", "${X:-y}", "$Y", "AS",
    "--from=b", "--chmod=755", "--chmod=xyz", "--chown=1:1", "--link", "--mount=type=cache,target=/c",
    "--mount=type=bind,source=a,target=/a,rw", "--mount=type=secret,id=s", "--network=none",
    "--interval=5s", "--start-interval=1s", "--retries=x", "--checksum=sha256:00", "NONE",
    '["a", "b"]', '["unterminated', "'q'", '"dq"', "a=b", "a=", "=b", "k=\"v w\"", "\\", "&&",
    "<<EOF", "<<-'EOF'", "3<<E", "EOF", "$(echo x)", "`id`", "#", "# syntax=docker/dockerfile:1",
    "# escape=`", "\t", " ", "80/tcp", "0", "-1", "99999999999999999999", "\x00", "é",
]  # fmt: skip

line = st.builds(
    lambda kw, parts, cont: kw + " " + " ".join(parts) + (" \\" if cont else ""),
    st.sampled_from(KEYWORDS),
    st.lists(st.sampled_from(PIECES), max_size=6),
    st.booleans(),
)
dockerfile_text = st.one_of(
    st.lists(st.one_of(line, st.sampled_from(PIECES)), max_size=14).map("\n".join),
    st.text(max_size=300),
)


def _survives(fn, *args, **kw):  # type: ignore[no-untyped-def]
    try:
        return fn(*args, **kw)
    except SlimageError as err:
        message = str(err)
        assert message and "\n" not in message.strip(), repr(message)
        return None


@SETTINGS
@given(dockerfile_text)
def test_parse_type_and_lint_raise_only_slimage_errors(text: str) -> None:
    tree = _survives(parse, text, path="Dockerfile")
    if tree is not None:
        _survives(stages, tree)
        _survives(stages, tree, strict=False)
        _survives(plan, tree)
    _survives(lint_text, text)


@SETTINGS
@given(dockerfile_text)
def test_lenient_parse_accepts_what_strict_parse_accepts(text: str) -> None:
    """Lint reads with the lenient parser: anything a build accepts, lint must read too."""
    strict = _survives(parse, text, path="Dockerfile")
    if strict is not None:
        assert _survives(parse, text, path="Dockerfile", strict=False) is not None
