"""Variable expansion and word splitting with BuildKit's shell-lexer rules, and which
instructions get expanded."""

from __future__ import annotations

import pytest

from slimage.dockerfile import command_of, expand_args, parse
from slimage.dockerfile.commands import CopyCommand, RunCommand
from slimage.dockerfile.expand import (
    ExpansionError,
    ShellLex,
    expand_heredoc,
    expand_word,
    expand_words,
)

ENV = {"PWD": "/home", "SHELL": "bash", "NULL": "", "SPACE": "abc  def", "LEAD": "  ab c"}


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("plain", "plain"),
        ("he'll'o", "hello"),
        ("he\\'llo", "he'llo"),
        ("abc\\tdef", "abctdef"),
        ('"abc\\tdef"', "abc\\tdef"),
        ("'abc\\tdef'", "abc\\tdef"),
        ("trailing\\", "trailing"),
        ("back\\\\", "back\\"),
        ('"it\'s"', "it's"),
        ("$PWD/x", "/home/x"),
        ("${PWD}x", "/homex"),
        ("$UNSET-x", "-x"),
        ("$.", "$."),
        ("he$1x", "hex"),
        ("\\$PWD", "$PWD"),
        ('"\\$PWD"', "$PWD"),
        ("'$PWD'", "$PWD"),
        ('"a${PWD}b"', "a/homeb"),
        ("${UNSET:-fallback}", "fallback"),
        ("${NULL:-fallback}", "fallback"),
        ("${NULL-fallback}", ""),
        ("${UNSET-fallback}", "fallback"),
        ("${PWD:-fallback}", "/home"),
        ("${PWD:+alt}", "alt"),
        ("${NULL:+alt}", ""),
        ("${NULL+alt}", "alt"),
        ("${UNSET+alt}", ""),
        ("${UNSET:-${PWD:-x}}", "/home"),
        ("${UNSET:-\\$PWD:}", "$PWD:"),
        ("${PWD:+${SHELL}}!", "bash!"),
        ("${PWD#/h}", "ome"),
        ("${PWD%me}", "/ho"),
        ("${PWD/o/0}", "/h0me"),
        ("${SHELL//a/A}", "bAsh"),
        ("${aaa}}", "}"),
        ("${aaa:-bbb {foo}", "bbb {foo"),
        ("$@x", "x"),
        ("${9:-nine}", "nine"),
        ("안녕$SHELL", "안녕bash"),
    ],
)
def test_expand_word(word: str, expected: str) -> None:
    assert expand_word(word, ENV) == expected


@pytest.mark.parametrize(
    "word",
    [
        "he'llo",
        '"unterminated',
        "${}",
        "${PWD",
        "${:-x}",
        "${{a}",
        "he${PWD:=000}xx",
        "${UNSET?}",
        "${NULL:?must be set}",
        "${aaa:-bbb ${foo}",
    ],
)
def test_expand_errors(word: str) -> None:
    with pytest.raises(ExpansionError):
        expand_word(word, ENV)


@pytest.mark.parametrize(
    ("word", "words"),
    [
        ("hello there", ["hello", "there"]),
        ("hello${SPACE}bye", ["helloabc", "defbye"]),
        ('hello"${SPACE}"bye', ["helloabc  defbye"]),
        ("x${LEAD}", ["x", "ab", "c"]),
        ("hello\\ there", ["hello there"]),
        ('hello\\" there', ['hello"', "there"]),
        ("it'$PWD'", ["it$PWD"]),
    ],
)
def test_expand_words_splits_after_substitution(word: str, words: list[str]) -> None:
    assert expand_words(word, ENV) == words


def test_backtick_escape() -> None:
    lex = ShellLex("`")
    assert lex.process_word("C:\\path`$PWD", ENV) == "C:\\path$PWD"
    assert expand_word("a`b", ENV, escape="`") == "ab"


def test_skip_unset_keeps_unknown_variables() -> None:
    lex = ShellLex(skip_unset_env=True)
    assert (
        lex.process_word("$PWD $NOPE ${NOPE:-x} ${NOPE}", ENV) == "/home $NOPE ${NOPE:-x} ${NOPE}"
    )


def test_matches_are_reported() -> None:
    res = ShellLex().process("$PWD ${NOPE:-x}", ENV)
    assert res.matched == {"PWD"} and res.unmatched == {"NOPE"}


def test_heredoc_expansion_keeps_quotes() -> None:
    assert expand_heredoc("echo '$PWD' \"$SHELL\"\n", ENV) == "echo '/home' \"bash\"\n"


def test_which_instructions_are_expanded() -> None:
    df = parse(
        "FROM a\n"
        'ENV A=$PWD B="x $SHELL" C\\ D=1\n'
        "LABEL v=${SHELL:-none}\n"
        "ARG X=$PWD Y\n"
        "EXPOSE ${PORT:-80} $PORTS\n"
        "WORKDIR $PWD/app\n"
        "USER ${NULL:-nobody}\n"
        "VOLUME $PWD/data\n"
        "STOPSIGNAL ${SIG:-SIGTERM}\n"
        "COPY --chown=$U:$U --from=build $PWD/a <<EOF /dst/$SHELL/\nbody $PWD\nEOF\n"
        "RUN --mount=type=cache,target=$PWD/.cache echo $PWD\n"
        "CMD echo $PWD\n"
        'ENTRYPOINT ["$PWD"]\n'
        "ONBUILD WORKDIR $PWD\n"
    )
    env = dict(ENV, PORTS="443 8443", U="app")
    got = [expand_args(i, env) for i in df.instructions[1:]]
    assert got == [
        ["A", "/home", "=", "B", "x bash", "=", "C D", "1", "="],
        ["v", "bash", "="],
        ["X=/home", "Y"],
        ["80", "443", "8443"],
        ["/home/app"],
        ["nobody"],
        ["/home/data"],
        ["SIGTERM"],
        ["/home/a", "<<EOF", "/dst/bash/"],
        ["echo $PWD"],
        ["echo $PWD"],
        ["$PWD"],
        ["$PWD"],
    ]
    copy, run = df.instructions[9], df.instructions[10]
    # Flag values are expanded where the typed commands use them.
    copy_cmd, run_cmd = command_of(copy, df), command_of(run, df)
    assert isinstance(copy_cmd, CopyCommand) and isinstance(run_cmd, RunCommand)
    assert expand_word(copy_cmd.chown or "", env) == "app:app" and copy_cmd.from_ == "build"
    (mount,) = run_cmd.mounts(lambda v: expand_word(v, env))
    assert (mount.type, mount.target) == ("cache", "/home/.cache")
    assert copy.heredocs[0].expand
    assert expand_heredoc(copy.heredocs[0].content, env) == "body /home\n"
