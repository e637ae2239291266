"""Heredoc words (`<<EOF`, `<<-'EOF'`, `3<<"E"`) as BuildKit's parser recognises them.

The parser needs them to find bodies, the typed layer to tell a COPY heredoc source from a
context path, and the builder to decide whether `RUN <<EOF` is a script or a command. One
rule for all three: a word is a heredoc when BuildKit's `ParseHeredoc` says so, and its
name is what BuildKit's lexer makes of the rest (quotes removed; quoted means "do not
expand the body").
"""

from __future__ import annotations

import re

from slimage.dockerfile.expand import GO_SPACE, ExpansionError, ShellLex
from slimage.dockerfile.model import Heredoc

_HEREDOC_RE = re.compile(r"([0-9]*)<<(-?)[\t\n\f\r ]*([^<]*)\Z")
_NEEDS_LEXER = re.compile("[\"'\\\\$<" + GO_SPACE + "]")
_NEEDS_LEXER_LINE = re.compile("[\"'\\\\$]")
_FAST_WORDS_RE = re.compile("(?:<<[\t\r ]*|[^" + GO_SPACE + "])+")
HEREDOC_LEX = ShellLex("\\", raw_quotes=True, raw_escapes=True, skip_unset_env=True)


def parse_heredoc(word: str) -> Heredoc | None:
    """`[fd]<<[-]NAME` -> Heredoc (content empty), None when `word` is not a heredoc.
    Raises ExpansionError for a word the lexer cannot read (an unbalanced quote)."""
    m = _HEREDOC_RE.match(word)
    if m is None:
        return None
    rest = m.group(3)
    if not rest:
        return None
    fd = int(m.group(1)) if m.group(1) else 0
    chomp = m.group(2) == "-"
    if not _NEEDS_LEXER.search(rest):
        # Nothing the lexer would change: the word is the name, unquoted.
        return Heredoc(name=rest, content="", expand=True, chomp=chomp, fd=fd)
    lex = ShellLex("\\", skip_unset_env=True)
    words = lex.process_words(rest, {})
    if len(words) != 1:
        return None
    lex.raw_quotes = True
    raw_words = lex.process_words(rest, {})
    if len(raw_words) != len(words):
        raise ExpansionError(f"internal lexing of heredoc produced inconsistent results: {rest}")
    name = words[0]
    raw = raw_words[0]
    expand = name.count("'") + name.count('"') == raw.count("'") + raw.count('"')
    return Heredoc(name=name, content="", expand=expand, chomp=chomp, fd=fd)


def heredoc_ref(word: str) -> Heredoc | None:
    """`parse_heredoc` for words that may not be heredocs at all (COPY sources, a RUN
    command line): a word the lexer cannot read is simply not a heredoc."""
    if "<<" not in word:
        return None
    try:
        return parse_heredoc(word)
    except ExpansionError:
        return None


def heredocs_from_line(line: str) -> list[Heredoc]:
    """Every heredoc word on a logical line, in order."""
    if _NEEDS_LEXER_LINE.search(line) is None:
        # Fast path, same words as the lexer: no quotes, escapes or `$`, so words are
        # split on blanks, except that `<<` keeps the blanks right after it.
        words = _FAST_WORDS_RE.findall(line)
    else:
        try:
            words = HEREDOC_LEX.process_words(line, {})
        except ExpansionError:
            return []
    docs: list[Heredoc] = []
    for word in words:
        if "<<" in word:
            doc = parse_heredoc(word)
            if doc is not None:
                docs.append(doc)
    return docs
