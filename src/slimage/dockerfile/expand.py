"""Shell-style word processing and variable expansion, as BuildKit's `shell.Lex` does it.

BuildKit does not run a shell to expand `$VAR` in ENV, COPY, WORKDIR, ...; it uses a small
lexer with its own rules (quotes removed, `\\` escapes, `${V:-w}` and friends, no command
substitution). Using a real shell, or Python's `shlex`, would give different answers, so
this is a careful re-implementation of those rules. The same lexer also finds heredoc
words on RUN/COPY/ADD lines.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from slimage.errors import SlimageError

# Go's unicode.IsSpace: the Unicode White_Space property (Python's str.isspace() also
# counts U+001C..U+001F, which Go does not).
GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_GO_SPACE_SET = frozenset(GO_SPACE)
_SPECIAL_PARAMS = frozenset("@*#?-$!0")


class ExpansionError(SlimageError):
    """A word could not be processed (unbalanced quote, bad `${...}`)."""


@dataclass(slots=True)
class ExpandResult:
    result: str
    words: list[str]
    matched: set[str] = field(default_factory=set)
    unmatched: set[str] = field(default_factory=set)


class _Words:
    __slots__ = ("buf", "words", "in_word")

    def __init__(self) -> None:
        self.buf: list[str] = []
        self.words: list[str] = []
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if ch in _GO_SPACE_SET:
            if self.in_word and self.buf:
                self.words.append("".join(self.buf))
                self.buf.clear()
                self.in_word = False
        else:
            self.buf.append(ch)
            self.in_word = True

    def add_raw_char(self, ch: str) -> None:
        self.buf.append(ch)
        self.in_word = True

    def add_string(self, s: str) -> None:
        for ch in s:
            self.add_char(ch)

    def add_raw_string(self, s: str) -> None:
        if s:
            self.buf.append(s)
        self.in_word = True

    def get_words(self) -> list[str]:
        if self.buf:
            self.words.append("".join(self.buf))
            self.buf.clear()
            self.in_word = False
        return self.words


class _Scan:
    """One pass over one word; mirrors BuildKit's `shellWord`."""

    __slots__ = ("lex", "s", "pos", "n", "env", "raw_escapes", "matched", "unmatched")

    def __init__(self, lex: ShellLex, s: str, env: Mapping[str, str]) -> None:
        self.lex = lex
        self.s = s
        self.pos = 0
        self.n = len(s)
        self.env = env
        self.raw_escapes = lex.raw_escapes
        self.matched: set[str] = set()
        self.unmatched: set[str] = set()

    def peek(self) -> str:
        return self.s[self.pos] if self.pos < self.n else ""

    def next(self) -> str:
        if self.pos < self.n:
            ch = self.s[self.pos]
            self.pos += 1
            return ch
        return ""

    def get_env(self, name: str) -> tuple[str, bool]:
        value = self.env.get(name)
        if value is None:
            self.unmatched.add(name)
            return "", False
        self.matched.add(name)
        return value, True

    def process_stop_on(self, stop: str, raw_escapes: bool) -> tuple[str, list[str]]:
        saved = self.raw_escapes
        self.raw_escapes = raw_escapes
        try:
            return self._process_stop_on(stop)
        finally:
            self.raw_escapes = saved

    def _process_stop_on(self, stop: str) -> tuple[str, list[str]]:
        result: list[str] = []
        words = _Words()
        lex = self.lex
        esc = lex.escape
        quotes = not lex.skip_process_quotes
        s = self.s
        n = self.n
        while self.pos < n:
            ch = s[self.pos]
            if stop and ch == stop:
                self.pos += 1
                return "".join(result), words.get_words()
            if ch == "$":
                tmp = self.process_dollar()
                result.append(tmp)
                words.add_string(tmp)
            elif ch == "<":
                tmp = self.process_possible_heredoc()
                result.append(tmp)
                words.add_raw_string(tmp)
            elif quotes and ch == "'":
                tmp = self.process_single_quote()
                result.append(tmp)
                words.add_raw_string(tmp)
            elif quotes and ch == '"':
                tmp = self.process_double_quote()
                result.append(tmp)
                words.add_raw_string(tmp)
            else:
                self.pos += 1
                if ch == esc:
                    if self.raw_escapes:
                        words.add_raw_char(ch)
                        result.append(ch)
                    if self.pos >= n:
                        break
                    ch = s[self.pos]
                    self.pos += 1
                    words.add_raw_char(ch)
                else:
                    words.add_char(ch)
                result.append(ch)
        if stop:
            raise ExpansionError(f"unexpected end of statement while looking for matching {stop}")
        return "".join(result), words.get_words()

    def process_single_quote(self) -> str:
        raw = self.lex.raw_quotes
        out: list[str] = []
        ch = self.next()
        if raw:
            out.append(ch)
        end = self.s.find("'", self.pos)
        if end < 0:
            raise ExpansionError(
                "unexpected end of statement while looking for matching single-quote"
            )
        out.append(self.s[self.pos : end])
        self.pos = end + 1
        if raw:
            out.append("'")
        return "".join(out)

    def process_double_quote(self) -> str:
        raw = self.lex.raw_quotes
        esc = self.lex.escape
        out: list[str] = []
        ch = self.next()
        if raw:
            out.append(ch)
        while True:
            nxt = self.peek()
            if nxt == "":
                raise ExpansionError(
                    "unexpected end of statement while looking for matching double-quote"
                )
            if nxt == '"':
                self.pos += 1
                if raw:
                    out.append('"')
                return "".join(out)
            if nxt == "$":
                out.append(self.process_dollar())
                continue
            ch = self.next()
            if ch == esc:
                if self.raw_escapes:
                    out.append(ch)
                nxt = self.peek()
                if nxt == "":
                    continue
                if nxt in ('"', "$", esc):
                    ch = self.next()
            out.append(ch)

    def process_name(self) -> str:
        s = self.s
        start = self.pos
        n = self.n
        if start < n:
            ch = s[start]
            if ch.isdecimal():
                while self.pos < n and s[self.pos].isdecimal():
                    self.pos += 1
                return s[start : self.pos]
            if ch in _SPECIAL_PARAMS:
                self.pos += 1
                return ch
        while self.pos < n:
            ch = s[self.pos]
            if not (ch.isalpha() or ch.isdecimal() or ch == "_"):
                break
            self.pos += 1
        return s[start : self.pos]

    def process_possible_heredoc(self) -> str:
        self.pos += 1
        if self.peek() != "<":
            return "<"
        self.pos += 1
        start = self.pos
        while self.pos < self.n and self.s[self.pos] in "\t\r ":
            self.pos += 1
        return "<<" + self.s[start : self.pos]

    def process_dollar(self) -> str:
        self.pos += 1
        skip_unset = self.lex.skip_unset_env
        if self.peek() != "{":
            name = self.process_name()
            if not name:
                return "$"
            value, found = self.get_env(name)
            if not found and skip_unset:
                return "$" + name
            return value
        self.pos += 1
        nxt = self.peek()
        if nxt == "":
            raise ExpansionError("syntax error: missing '}'")
        if nxt in "{}:":
            raise ExpansionError("syntax error: bad substitution")
        name = self.process_name()
        ch = self.next()
        chs = ch if ch else "\ufffd"
        null_is_unset = False
        if ch == "}":
            value, found = self.get_env(name)
            if not found and skip_unset:
                return "${" + name + "}"
            return value
        if ch == ":":
            null_is_unset = True
            ch = self.next()
            chs += ch
        if ch in ("+", "-", "?", "#", "%") or null_is_unset:
            raw = ch in ("#", "%")
            if null_is_unset and raw:
                raise ExpansionError(f"unsupported modifier ({chs}) in substitution")
            try:
                word, _ = self.process_stop_on("}", raw)
            except ExpansionError:
                if self.peek() == "":
                    raise ExpansionError("syntax error: missing '}'") from None
                raise
            value, found = self.get_env(name)
            if skip_unset and not found:
                return "${" + name + chs + word + "}"
            if ch == "-":
                if not found or (null_is_unset and value == ""):
                    return word
                return value
            if ch == "+":
                if not found or (null_is_unset and value == ""):
                    return ""
                return word
            if ch == "?":
                if not found:
                    raise ExpansionError(f"{name}: {word or 'is not allowed to be unset'}")
                if null_is_unset and value == "":
                    raise ExpansionError(f"{name}: {word or 'is not allowed to be empty'}")
                return value
            if ch in ("%", "#"):
                greedy = False
                if word and word[0] == ch:
                    greedy = True
                    word = word[1:]
                if ch == "%":
                    return _trim_suffix(word, value, greedy)
                return _trim_prefix(word, value, greedy)
            raise ExpansionError(f"unsupported modifier ({chs}) in substitution")
        if ch == "/":
            replace_all = self.peek() == "/"
            if replace_all:
                self.pos += 1
            try:
                pattern, _ = self.process_stop_on("/", True)
            except ExpansionError:
                if self.peek() == "":
                    raise ExpansionError("syntax error: missing '/' in ${}") from None
                raise
            try:
                replacement, _ = self.process_stop_on("}", True)
            except ExpansionError:
                if self.peek() == "":
                    raise ExpansionError("syntax error: missing '}'") from None
                raise
            value, found = self.get_env(name)
            if skip_unset and not found:
                return "${" + name + "/" + pattern + "/" + replacement + "}"
            rx = _pattern_regex(pattern, greedy=True, anchored=False)
            if replace_all:
                return rx.sub(lambda _m: replacement, value)
            return rx.sub(lambda _m: replacement, value, count=1)
        raise ExpansionError(f"unsupported modifier ({chs}) in substitution")


def _pattern_regex(pattern: str, *, greedy: bool, anchored: bool) -> re.Pattern[str]:
    """Shell wildcard (`*`, `?`, `\\` escapes; no brackets) -> regex, as BuildKit does."""
    out = ["^"] if anchored else []
    star = ".*" if greedy else ".*?"
    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append(star)
        elif ch == "?":
            out.append(".")
        elif ch == "\\":
            nxt = pattern[i] if i < n else ""
            if nxt in ("}", "/"):
                continue
            i += 1
            if nxt not in ("*", "?", "\\"):
                raise ExpansionError(f"invalid pattern ({pattern}) in substitution")
            out.append("\\" + nxt)
        else:
            out.append(re.escape(ch))
    try:
        return re.compile("".join(out))
    except re.error as exc:  # pragma: no cover - escaped input always compiles
        raise ExpansionError(f"invalid pattern ({pattern}) in substitution: {exc}") from None


def _trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    m = _pattern_regex(pattern, greedy=greedy, anchored=True).search(value)
    return value[m.end() :] if m else value


def _reverse_pattern(pattern: str) -> str:
    """Reverse a pattern but keep `\\x` escapes in order (`a\\*c` -> `c\\*a`)."""
    tokens: list[str] = []
    i = 0
    n = len(pattern)
    while i < n:
        if pattern[i] == "\\" and i != n - 1:
            tokens.append(pattern[i : i + 2])
            i += 2
        else:
            tokens.append(pattern[i])
            i += 1
    return "".join(reversed(tokens))


def _trim_suffix(pattern: str, value: str, greedy: bool) -> str:
    return _trim_prefix(_reverse_pattern(pattern), value[::-1], greedy)[::-1]


class ShellLex:
    """BuildKit's word lexer. Options mirror `shell.Lex`:

    - `raw_quotes`: keep quote characters in the result;
    - `raw_escapes`: keep escape characters in the result;
    - `skip_process_quotes`: treat quotes as ordinary characters (heredoc bodies);
    - `skip_unset_env`: leave `$UNSET` as written instead of expanding it to "".
    """

    __slots__ = ("escape", "raw_quotes", "raw_escapes", "skip_process_quotes", "skip_unset_env")

    def __init__(
        self,
        escape: str = "\\",
        *,
        raw_quotes: bool = False,
        raw_escapes: bool = False,
        skip_process_quotes: bool = False,
        skip_unset_env: bool = False,
    ) -> None:
        self.escape = escape
        self.raw_quotes = raw_quotes
        self.raw_escapes = raw_escapes
        self.skip_process_quotes = skip_process_quotes
        self.skip_unset_env = skip_unset_env

    def process(self, word: str, env: Mapping[str, str] | None = None) -> ExpandResult:
        scan = _Scan(self, word, env if env is not None else {})
        try:
            result, words = scan.process_stop_on("", self.raw_escapes)
        except ExpansionError as exc:
            raise ExpansionError(f"failed to process {word!r}: {exc}") from None
        return ExpandResult(result, words, scan.matched, scan.unmatched)

    def process_word(self, word: str, env: Mapping[str, str] | None = None) -> str:
        """Expand one word: quotes removed, variables substituted, spaces kept."""
        return self.process(word, env).result

    def process_words(self, word: str, env: Mapping[str, str] | None = None) -> list[str]:
        """Expand, then split into words on unquoted whitespace (after substitution)."""
        return self.process(word, env).words


_DEFAULT_LEX = ShellLex()


def expand_word(word: str, env: Mapping[str, str], escape: str = "\\") -> str:
    """Expand one word the way BuildKit expands ENV/COPY/WORKDIR/... arguments."""
    lex = _DEFAULT_LEX if escape == "\\" else ShellLex(escape)
    return lex.process_word(word, env)


def expand_words(word: str, env: Mapping[str, str], escape: str = "\\") -> list[str]:
    """Expand and split (EXPOSE ports are processed this way)."""
    lex = _DEFAULT_LEX if escape == "\\" else ShellLex(escape)
    return lex.process_words(word, env)


def expand_heredoc(content: str, env: Mapping[str, str]) -> str:
    """Expand a COPY/ADD heredoc body whose delimiter was unquoted (quotes stay literal)."""
    return ShellLex("\\", skip_process_quotes=True).process_word(content, env)
