"""Just enough POSIX shell to see the simple commands inside a RUN.

Lint rules ask questions such as "does this RUN call `apt-get install` without
`--no-install-recommends`?" and the fixer needs the exact offset of `install` to insert a
flag. Both need the script cut into simple commands (words with quotes removed, plus the
operator that ends each command) while keeping every word's span in the original text.
A full shell grammar is not needed and would be slow; this splitter understands quoting,
escapes, `$(...)`/backquote nesting, comments, redirections and the control operators,
which is what the rules look at. Anything it does not understand stays inside a word, so a
rule sees less, never something that is not there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Runs of characters that cannot start quoting, expansion, an operator or whitespace.
_PLAIN = re.compile(r"[^\s'\"\\$`|&;()<>]+")
_BLANK = re.compile(r"[ \t\r\f\v]+")
_OPERATORS = ("&&", "||", ";;", "|&", ";", "|", "&", "(", ")")
_REDIR = re.compile(r"[0-9]*(?:&>>|&>|>>|>&|<&|<<<|<<-|<<|<>|>\||>|<)")
_ASSIGN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
# Words that open or continue a compound command; the real command follows them.
_KEYWORDS = frozenset({"if", "then", "else", "elif", "do", "while", "until", "!", "{", "time"})
_CLOSERS = frozenset({"fi", "done", "}", "esac"})
# Wrappers that run their arguments as a command.
_WRAPPERS = frozenset({"sudo", "env", "nice", "nohup", "exec", "command", "su-exec", "gosu"})
_VALUE_OPTS = frozenset({"-u", "-g", "-n", "-C", "-D", "-h", "-p", "-U"})
# Fast path: scripts without command substitution (the common case) are tokenised by one
# regular expression; anything else goes through the careful character loop.
_FAST_TOKEN = re.compile(
    r"""(?P<blank>[ \t\r\f\v]+|\\\n)"""
    r"""|(?P<nl>\n)"""
    r"""|(?P<comment>\#[^\n]*)"""
    r"""|(?P<redir>[0-9]*(?:&>>|&>|>>|>&|<&|<<<|<<-|<<|<>|>\||>|<))"""
    r"""|(?P<op>&&|\|\||;;|\|&|;|\||&|\(|\))"""
    r"""|(?P<word>(?:[^\s'"\\|&;()<>]+|'[^']*'|"(?:[^"\\]|\\.)*"|\\.)+)""",
    re.S,
)


@dataclass(slots=True)
class SimpleCommand:
    """One simple command: its words (quotes removed) and where each sits in the script.

    `op` is the control operator that ends the command ("&&", "||", ";", "|", "&",
    "\\n", "(", ")" or "" at the end of the script); `prev_op` the one before it.
    """

    words: list[str] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)
    quoted: list[bool] = field(default_factory=list)
    op: str = ""
    prev_op: str = ""
    redirects: list[str] = field(default_factory=list)
    _argv_at: int = -1
    _unwrap_at: int = -1

    @property
    def start(self) -> int:
        return self.spans[0][0] if self.spans else 0

    @property
    def end(self) -> int:
        return self.spans[-1][1] if self.spans else 0

    def _locate(self) -> None:
        words = self.words
        n = len(words)
        i = 0
        while i < n and (words[i] in _KEYWORDS or _ASSIGN.match(words[i])):
            i += 1
        self._argv_at = i
        while i < n and words[i] in _WRAPPERS:
            i += 1
            while i < n and (words[i].startswith("-") or _ASSIGN.match(words[i])):
                # `sudo -u user cmd`, `nice -n 5 cmd`: options that take a value.
                if words[i] in _VALUE_OPTS:
                    i += 1
                i += 1
        self._unwrap_at = min(i, n)

    def argv(self) -> list[str]:
        """Words without leading `VAR=x` assignments and shell keywords (`then`, `!`...)."""
        if self._argv_at < 0:
            self._locate()
        return self.words[self._argv_at :]

    def argv_index(self) -> int:
        """Index in `words` of the first word of `argv()`."""
        if self._argv_at < 0:
            self._locate()
        return self._argv_at

    def unwrapped(self) -> list[str]:
        """`argv()` with wrappers (`sudo -E`, `env X=1`, `nice -n 5`) peeled off."""
        if self._unwrap_at < 0:
            self._locate()
        return self.words[self._unwrap_at :]

    def unwrap_index(self) -> int:
        """Index in `words` of the first word of `unwrapped()`."""
        if self._unwrap_at < 0:
            self._locate()
        return self._unwrap_at

    @property
    def name(self) -> str:
        argv = self.argv()
        return argv[0] if argv else ""


@dataclass(slots=True)
class Script:
    """A parsed shell script: its simple commands and a few whole-script facts."""

    text: str
    commands: list[SimpleCommand]
    has_comment: bool = False
    background: bool = False
    ok: bool = True  # False when quoting was unbalanced (the rules then see less)

    def find(self, *names: str) -> list[SimpleCommand]:
        """Commands whose (unwrapped) program is one of `names` (basename compared)."""
        out = []
        for cmd in self.commands:
            argv = cmd.unwrapped()
            if argv and argv[0].rsplit("/", 1)[-1] in names:
                out.append(cmd)
        return out

    @property
    def operators(self) -> set[str]:
        return {c.op for c in self.commands}


def _scan_subst(text: str, pos: int, n: int) -> int:
    """End of a `$(...)` or `$((...))` starting at `pos` (which is at `$`); -1 when the
    parentheses never close."""
    depth = 0
    i = pos + 1
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "'":
            j = text.find("'", i + 1)
            if j < 0:
                return -1
            i = j + 1
            continue
        if ch == '"':
            end, _content, closed = _scan_dquote(text, i, n)
            if not closed:
                return -1
            i = end
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return -1


def _scan_dquote(text: str, pos: int, n: int) -> tuple[int, str, bool]:
    """End of a double-quoted string starting at `pos`, its content with the `\\` escapes
    that are special inside double quotes removed (expansions kept as written), and
    whether the closing quote was found."""
    out: list[str] = []
    i = pos + 1
    while i < n:
        ch = text[i]
        if ch == '"':
            return i + 1, "".join(out), True
        if ch == "\\" and i + 1 < n:
            nxt = text[i + 1]
            if nxt in '"\\$`':
                out.append(nxt)
            elif nxt != "\n":
                out.append("\\" + nxt)
            i += 2
            continue
        if ch == "$" and i + 1 < n and text[i + 1] == "(":
            j = _scan_subst(text, i, n)
            if j < 0:
                return n, "".join(out), False
            out.append(text[i:j])
            i = j
            continue
        if ch == "`":
            j = text.find("`", i + 1)
            if j < 0:
                return n, "".join(out), False
            out.append(text[i : j + 1])
            i = j + 1
            continue
        out.append(ch)
        i += 1
    return n, "".join(out), False


def split(text: str) -> Script:
    """Cut a shell script into simple commands (see the module docstring)."""
    if "$(" not in text and "`" not in text:
        fast = _split_fast(text)
        if fast is not None:
            return fast
    return _split_slow(text)


def _unquote(word: str) -> str:
    """Quote removal for a word without expansions in it (fast path only)."""
    out: list[str] = []
    i = 0
    n = len(word)
    while i < n:
        ch = word[i]
        if ch == "'":
            end = word.index("'", i + 1)
            out.append(word[i + 1 : end])
            i = end + 1
        elif ch == '"':
            end, content, _closed = _scan_dquote(word, i, n)
            out.append(content)
            i = end
        elif ch == "\\" and i + 1 < n:
            if word[i + 1] != "\n":
                out.append(word[i + 1])
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _split_fast(text: str) -> Script | None:
    commands: list[SimpleCommand] = []
    cur = SimpleCommand()
    has_comment = False
    background = False
    prev_op = ""
    pending_redirect = False
    pos = 0
    n = len(text)
    match = _FAST_TOKEN.match
    while pos < n:
        m = match(text, pos)
        if m is None:
            return None
        kind = m.lastgroup
        end = m.end()
        if kind == "word":
            raw = m.group()
            quoted = "'" in raw or '"' in raw or "\\" in raw
            word = _unquote(raw) if quoted else raw
            if pending_redirect:
                pending_redirect = False
                cur.redirects.append(word)
            elif cur.words or word not in _CLOSERS:
                cur.words.append(word)
                cur.spans.append((pos, end))
                cur.quoted.append(quoted)
        elif kind == "blank":
            pass
        elif kind == "op" or kind == "nl":
            op = m.group() if kind == "op" else "\n"
            if op == "&":
                background = True
            if cur.words or cur.redirects:
                cur.op = op
                cur.prev_op = prev_op
                commands.append(cur)
                cur = SimpleCommand()
            prev_op = op
        elif kind == "redir":
            cur.redirects.append(m.group())
            pending_redirect = True
        else:  # comment
            has_comment = True
        pos = end
    if cur.words or cur.redirects:
        cur.prev_op = prev_op
        commands.append(cur)
    return Script(text, commands, has_comment, background, True)


def _split_slow(text: str) -> Script:
    commands: list[SimpleCommand] = []
    cur = SimpleCommand()
    n = len(text)
    pos = 0
    has_comment = False
    ok = True
    background = False
    prev_op = ""
    pending_redirect = False

    def finish(op: str) -> None:
        nonlocal cur, prev_op
        if cur.words or cur.redirects:
            cur.op = op
            cur.prev_op = prev_op
            commands.append(cur)
        cur = SimpleCommand()
        prev_op = op

    while pos < n:
        m = _BLANK.match(text, pos)
        if m:
            pos = m.end()
            continue
        ch = text[pos]
        if ch == "\n":
            finish("\n")
            pos += 1
            continue
        if ch == "#":
            end = text.find("\n", pos)
            pos = n if end < 0 else end
            has_comment = True
            continue
        if ch == "\\" and pos + 1 < n and text[pos + 1] == "\n":
            pos += 2
            continue
        m = _REDIR.match(text, pos)
        if m and (ch in "<>" or text[m.end() - 1] in "<>&|"):
            cur.redirects.append(m.group())
            pending_redirect = True
            pos = m.end()
            continue
        op = next((o for o in _OPERATORS if text.startswith(o, pos)), None)
        if op is not None:
            if op == "&":
                background = True
            finish(op)
            pos += len(op)
            continue
        # A word: concatenated plain runs, quotes, escapes and expansions.
        start = pos
        parts: list[str] = []
        quoted = False
        while pos < n:
            m = _PLAIN.match(text, pos)
            if m:
                parts.append(m.group())
                pos = m.end()
                continue
            ch = text[pos]
            if ch == "'":
                quoted = True
                end = text.find("'", pos + 1)
                if end < 0:
                    ok = False
                    parts.append(text[pos + 1 :])
                    pos = n
                    break
                parts.append(text[pos + 1 : end])
                pos = end + 1
            elif ch == '"':
                quoted = True
                end, content, closed = _scan_dquote(text, pos, n)
                if not closed:
                    ok = False
                parts.append(content)
                pos = end
            elif ch == "\\":
                quoted = True
                if pos + 1 < n:
                    if text[pos + 1] != "\n":
                        parts.append(text[pos + 1])
                    pos += 2
                else:
                    pos += 1
            elif ch == "$":
                if pos + 1 < n and text[pos + 1] == "(":
                    end = _scan_subst(text, pos, n)
                    if end < 0:
                        ok = False
                        end = n
                elif pos + 1 < n and text[pos + 1] == "{":
                    end = text.find("}", pos)
                    if end < 0:
                        ok = False
                        end = n
                    else:
                        end += 1
                else:
                    end = pos + 1
                parts.append(text[pos:end])
                pos = end
            elif ch == "`":
                end = text.find("`", pos + 1)
                if end < 0:
                    ok = False
                    end = n
                else:
                    end += 1
                parts.append(text[pos:end])
                pos = end
            else:
                break
        word = "".join(parts)
        if pending_redirect:
            pending_redirect = False
            cur.redirects.append(word)
            continue
        if not cur.words and word in _CLOSERS:
            # `fi`, `done`: ends a compound command; not a program.
            continue
        cur.words.append(word)
        cur.spans.append((start, pos))
        cur.quoted.append(quoted)
    finish("")
    return Script(text, commands, has_comment, background, ok)


_SAFE_WORD = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")


def exec_form_words(text: str) -> list[str] | None:
    """The argv a shell would build from `text`, when that needs no shell at all.

    Returns None as soon as anything would make `sh -c text` differ from exec-ing the
    words: expansions, globs, operators, redirections, comments, escapes, `~`, newlines,
    or an assignment in front. Quotes are fine when they only group plain characters.
    """
    words: list[str] = []
    pos = 0
    n = len(text)
    while pos < n:
        m = _BLANK.match(text, pos)
        if m:
            pos = m.end()
            continue
        parts: list[str] = []
        while pos < n and text[pos] not in " \t":
            ch = text[pos]
            m = _SAFE_WORD.match(text, pos)
            if m:
                parts.append(m.group())
                pos = m.end()
                continue
            if ch in "'\"":
                end = text.find(ch, pos + 1)
                if end < 0:
                    return None
                inner = text[pos + 1 : end]
                if inner and not re.fullmatch(r"[A-Za-z0-9_@%+=:,./ -]+", inner):
                    return None
                parts.append(inner)
                pos = end + 1
                continue
            return None
        words.append("".join(parts))
    if not words:
        return None
    first = words[0]
    if _ASSIGN.match(first) or first in _KEYWORDS or first in _CLOSERS:
        return None
    if first in {"cd", "export", "set", "exit", "source", ".", "exec", "eval", "trap"}:
        return None
    return words
