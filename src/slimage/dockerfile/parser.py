"""Dockerfile text -> `Dockerfile` model, following BuildKit's parser line for line.

BuildKit's behaviour has many quirks that real Dockerfiles rely on (comment lines inside a
continuation, JSON that silently falls back to shell form, `ENV key value` keeping quotes,
heredoc words found by its own lexer). Users expect `slimage build` to read a Dockerfile
exactly as `docker build` does, so the quirks are reproduced rather than "fixed". The
conformance test runs BuildKit's own parser test files through `dump.dump()`.

Two layers, as in BuildKit: this module is `frontend/dockerfile/parser` (text -> tree) and
imports nothing above it. The checks of BuildKit's `instructions` package (known
instruction, known flags and their values, argument counts) run while the tree is typed,
in `slimage.dockerfile.commands`; `slimage.dockerfile.parse()` does both.
"""

from __future__ import annotations

import json as _json
import re
from pathlib import Path

from slimage.dockerfile.expand import GO_SPACE, ExpansionError
from slimage.dockerfile.heredoc import heredocs_from_line
from slimage.dockerfile.model import Directives, Dockerfile, Instruction, ParseWarning
from slimage.errors import DockerfileError

# BuildKit's reWhitespace: only these five, not Unicode spaces.
_WS_RE = re.compile(r"[\t\v\f\r ]+")
# Go's \s is [\t\n\f\r ]; `$` without (?m) is end of text.
_DIRECTIVE_RE = re.compile(r"([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*\Z")
_SPACE = frozenset(GO_SPACE)
_WORD_RE = re.compile("[^" + GO_SPACE + "]+")
_VALID_DIRECTIVES = frozenset({"syntax", "escape", "check"})
_HEREDOC_CMDS = frozenset({"add", "copy", "run"})

# Which line parser each instruction uses (BuildKit's dispatch table).
_MAYBE_JSON = "maybe_json"
_MAYBE_JSON_LIST = "maybe_json_list"
_WS_LIST = "ws_list"
_STRING = "string"
_NAME_VAL = "name_val"
_NAME_OR_NAME_VAL = "name_or_name_val"
_HEALTH = "health"
_SUB = "sub"
_DISPATCH: dict[str, str] = {
    "add": _MAYBE_JSON_LIST,
    "arg": _NAME_OR_NAME_VAL,
    "cmd": _MAYBE_JSON,
    "copy": _MAYBE_JSON_LIST,
    "entrypoint": _MAYBE_JSON,
    "env": _NAME_VAL,
    "expose": _WS_LIST,
    "from": _WS_LIST,
    "healthcheck": _HEALTH,
    "label": _NAME_VAL,
    "maintainer": _STRING,
    "onbuild": _SUB,
    "run": _MAYBE_JSON,
    "shell": _MAYBE_JSON,
    "stopsignal": _STRING,
    "user": _STRING,
    "volume": _MAYBE_JSON_LIST,
    "workdir": _STRING,
}
KNOWN_INSTRUCTIONS = frozenset(_DISPATCH)

_NOT_STRING_ARRAY = "when using JSON array syntax, arrays must be comprised of strings only"


class _LineError(Exception):
    """Raised inside the line parsers; turned into a DockerfileError with a location."""

    def __init__(self, message: str, needle: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.needle = needle


def split_lines(text: str) -> list[str]:
    """Split on `\\n` only, keeping endings (BuildKit's scanner; not str.splitlines())."""
    parts = text.split("\n")
    last = parts.pop()
    out = [p + "\n" for p in parts]
    if last:
        out.append(last)
    return out


_GO_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def go_quote(s: str) -> str:
    """Go's strconv.Quote, used by BuildKit's `Node.Dump()` and its error messages."""
    out = ['"']
    for ch in s:
        esc = _GO_ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
        elif ch.isprintable():
            out.append(ch)
        else:
            c = ord(ch)
            if c < 0x20 or c == 0x7F:
                out.append(f"\\x{c:02x}")
            elif 0xDC80 <= c <= 0xDCFF:  # an undecodable byte (surrogateescape)
                out.append(f"\\x{c - 0xDC00:02x}")
            elif c < 0x10000:
                out.append(f"\\u{c:04x}")
            else:
                out.append(f"\\U{c:08x}")
    out.append('"')
    return "".join(out)


# ---------------------------------------------------------------------------------------
# Line parsers (BuildKit's line_parsers.go)


def extract_flags(line: str, esc: str) -> tuple[str, list[str]]:
    """Leading `--flag[=value]` words (quotes and escapes removed) and the rest of the line."""
    stripped = line.lstrip(GO_SPACE)
    if not stripped.startswith("--"):
        return stripped, []
    if esc not in line and "'" not in line and '"' not in line:
        # No quoting: flags are plain blank-separated words.
        found: list[str] = []
        for m in _WORD_RE.finditer(line):
            word = m.group()
            if not word.startswith("--"):
                return line[m.start() :], found
            if word == "--":
                return line[m.end() :], found
            found.append(word)
        return "", found
    return _extract_flags_slow(line, esc)


def _extract_flags_slow(line: str, esc: str) -> tuple[str, list[str]]:
    """BuildKit's extractBuilderFlags state machine (quotes and escapes)."""
    words: list[str] = []
    n = len(line)
    pos = 0
    phase = 0  # 0 spaces, 1 word, 2 quote
    buf: list[str] = []
    quote = ""
    blank_ok = False
    while True:
        at_end = pos == n
        ch = "" if at_end else line[pos]
        if phase == 0:
            if at_end:
                break
            if ch in _SPACE:
                pos += 1
                continue
            if ch != "-" or pos + 1 == n or line[pos + 1] != "-":
                return line[pos:], words
            phase = 1
        if at_end:
            word = "".join(buf)
            if word != "--" and (blank_ok or word):
                words.append(word)
            break
        if phase == 1:
            if ch in _SPACE:
                word = "".join(buf)
                phase = 0
                if word == "--":
                    return line[pos:], words
                if blank_ok or word:
                    words.append(word)
                buf = []
                blank_ok = False
                pos += 1
                continue
            if ch == "'" or ch == '"':
                quote = ch
                blank_ok = True
                phase = 2
                pos += 1
                continue
            if ch == esc:
                if pos + 1 == n:
                    pos += 1
                    continue
                pos += 1
                ch = line[pos]
            buf.append(ch)
            pos += 1
            continue
        # phase == 2 (inside quotes)
        if ch == quote:
            phase = 1
            pos += 1
            continue
        if ch == esc:
            if pos + 1 == n:
                phase = 1
                pos += 1
                continue
            pos += 1
            ch = line[pos]
        buf.append(ch)
        pos += 1
    return "", words


def parse_words(rest: str, esc: str) -> list[str]:
    """Split on whitespace outside quotes, keeping quotes and escapes (ENV/LABEL/ARG)."""
    if esc not in rest and "'" not in rest and '"' not in rest:
        return _WORD_RE.findall(rest)
    return _parse_words_slow(rest, esc)


def _parse_words_slow(rest: str, esc: str) -> list[str]:
    """BuildKit's parseWords state machine (quotes and escapes kept in the words)."""
    words: list[str] = []
    n = len(rest)
    pos = 0
    phase = 0
    quote = ""
    blank_ok = False
    buf: list[str] = []
    while True:
        if phase == 0:
            if pos == n:
                break
            if rest[pos] in _SPACE:
                pos += 1
                continue
            phase = 1
        if pos == n:
            if blank_ok or buf:
                words.append("".join(buf))
            break
        ch = rest[pos]
        if phase == 1:
            if ch in _SPACE:
                phase = 0
                if blank_ok or buf:
                    words.append("".join(buf))
                buf = []
                blank_ok = False
                pos += 1
                continue
            if ch == "'" or ch == '"':
                quote = ch
                blank_ok = True
                phase = 2
            if ch == esc:
                if pos + 1 == n:
                    pos += 1
                    continue
                buf.append(ch)
                pos += 1
                ch = rest[pos]
            buf.append(ch)
            pos += 1
            continue
        if ch == quote:
            phase = 1
        if ch == esc and quote != "'":
            if pos + 1 == n:
                phase = 1
                pos += 1
                continue
            pos += 1
            buf.append(ch)
            ch = rest[pos]
        buf.append(ch)
        pos += 1
    return words


def _reject_constant(name: str) -> object:
    raise ValueError(name)


def parse_json_array(rest: str) -> list[str] | None:
    """A JSON array of strings, None if `rest` is not valid JSON starting with `[`.
    Valid JSON with a non-string element is an error, as in BuildKit."""
    r = rest.lstrip(GO_SPACE)
    if not r.startswith("["):
        return None
    try:
        data = _json.loads(r, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, list):
        return None
    for item in data:
        if not isinstance(item, str):
            raise _LineError(_NOT_STRING_ARRAY, "[")
    return data


def _ws_list(rest: str) -> list[str]:
    if not rest:
        return []
    return _WS_RE.split(rest)


def _maybe_json(rest: str) -> tuple[list[str], bool]:
    if not rest:
        return [], False
    if rest[0] == "[" or (rest[0] in _SPACE and rest.lstrip(GO_SPACE).startswith("[")):
        arr = parse_json_array(rest)
        if arr is not None:
            return arr, True
    return [rest], False


def _maybe_json_list(rest: str) -> tuple[list[str], bool]:
    if rest.lstrip(GO_SPACE).startswith("["):
        arr = parse_json_array(rest)
        if arr is not None:
            return arr, True
    return _ws_list(rest), False


def _name_val(rest: str, key: str, esc: str) -> list[str]:
    words = parse_words(rest, esc)
    if not words:
        return []
    if "=" not in words[0]:
        parts = _WS_RE.split(rest, maxsplit=1)
        if len(parts) < 2:
            raise _LineError(f"{key} must have two arguments")
        return [parts[0], parts[1], ""]
    out: list[str] = []
    for word in words:
        if "=" not in word:
            raise _LineError(
                f"Syntax error - can't find = in {go_quote(word)}. Must be of the form: name=value",
                word,
            )
        k, v = word.split("=", 1)
        out += (k, v, "=")
    return out


def _health(rest: str) -> tuple[list[str], bool]:
    n = len(rest)
    sep = 0
    while sep < n and rest[sep] not in _SPACE:
        sep += 1
    if sep == 0:
        return [], False
    nxt = sep
    while nxt < n and rest[nxt] in _SPACE:
        nxt += 1
    values, is_json = _maybe_json(rest[nxt:])
    return [rest[:sep], *values], is_json


def node_from_line(line: str, esc: str, comments: list[str] | None = None) -> Instruction:
    """One logical line -> Instruction (no heredoc bodies, no line numbers yet)."""
    s = line.strip(GO_SPACE)
    m = _WS_RE.search(s)
    flags: list[str]
    if m is None:
        keyword = s
        args = ""
        flags = []
    else:
        keyword = s[: m.start()]
        rest, flags = extract_flags(s[m.end() :], esc)
        args = rest.strip(GO_SPACE)
    cmd = keyword.lower()
    kind = _DISPATCH.get(cmd)
    is_json = False
    child: Instruction | None = None
    value: list[str]
    if kind is None:
        value = [""]  # BuildKit's parseIgnore: an empty node
    elif kind == _MAYBE_JSON:
        value, is_json = _maybe_json(args)
    elif kind == _STRING:
        value = [args] if args else []
    elif kind == _WS_LIST:
        value = _ws_list(args)
    elif kind == _MAYBE_JSON_LIST:
        value, is_json = _maybe_json_list(args)
    elif kind == _NAME_VAL:
        value = _name_val(args, keyword.upper() if cmd == "env" else "LABEL", esc)
    elif kind == _NAME_OR_NAME_VAL:
        value = parse_words(args, esc)
    elif kind == _HEALTH:
        value, is_json = _health(args)
    else:  # ONBUILD
        if args:
            child = node_from_line(args, esc, None)
            value = child.value
            is_json = child.json
        else:
            value = []
    return Instruction(
        cmd=cmd,
        value=value,
        original=line,
        flags=flags,
        json=is_json,
        keyword=keyword,
        child=child,
        comments=list(comments) if comments else [],
    )


# ---------------------------------------------------------------------------------------
# The file-level parser


def _locate(lines: list[str], start: int, end: int, needle: str | None) -> tuple[int, int]:
    """Best 1-based (line, col) for an error: where `needle` appears, else the keyword."""
    if needle:
        for ln in range(start, min(end, len(lines)) + 1):
            col = lines[ln - 1].find(needle)
            if col >= 0:
                return ln, col + 1
    if 1 <= start <= len(lines):
        text = lines[start - 1]
        return start, len(text) - len(text.lstrip(GO_SPACE)) + 1
    return start, 1


_MAX_LINE = 64 * 1024  # Go's bufio.MaxScanTokenSize, which BuildKit's scanner keeps


def _check_line_lengths(lines: list[str], path: str) -> None:
    """BuildKit's line scanner fails on a physical line over 64 KiB; so does docker build."""
    for no, raw in enumerate(lines, 1):
        if len(raw) > _MAX_LINE // 4 and len(raw.encode("utf-8", "surrogateescape")) > _MAX_LINE:
            raise DockerfileError(
                f"dockerfile line greater than max allowed size of {_MAX_LINE - 1}",
                file=path,
                line=no,
                col=1,
            )


def parse(text: str, *, path: str = "Dockerfile") -> Dockerfile:
    """Parse Dockerfile text into the tree BuildKit's parser alone accepts.

    Raises `DockerfileError` ("FILE:LINE:COL: msg"). Consumers that build, lint or fix
    want `slimage.dockerfile.parse()`, which also types and checks every instruction.
    """
    lines = split_lines(text)
    n = len(lines)
    if n and max(map(len, lines)) > _MAX_LINE // 4:
        _check_line_lengths(lines, path)
    esc = "\\"
    directives = Directives()
    directive_done = False
    seen: set[str] = set()
    comments: list[str] = []
    instructions: list[Instruction] = []
    warnings: list[ParseWarning] = []

    def fail(message: str, start: int, end: int, needle: str | None = None) -> DockerfileError:
        line, col = _locate(lines, start, end, needle)
        return DockerfileError(message, file=path, line=line, col=col)

    def directive(token: str, lineno: int) -> bool:
        nonlocal directive_done, esc
        if not token.startswith("#"):
            directive_done = True
            return False
        m = _DIRECTIVE_RE.match(token[1:].lstrip(GO_SPACE))
        if m is None:
            directive_done = True
            return False
        key = m.group(1).lower()
        if key not in _VALID_DIRECTIVES:
            directive_done = True
            return False
        if key in seen:
            raise DockerfileError(
                f"only one {key} parser directive can be used", file=path, line=lineno, col=1
            )
        seen.add(key)
        value = m.group(2)
        directives.lines[key] = lineno
        if key == "escape":
            if value != "`" and value != "\\":
                raise DockerfileError(
                    f"invalid escape token '{value}' does not match ` or \\",
                    file=path,
                    line=lineno,
                    col=1,
                )
            esc = value
            directives.escape = value
        elif key == "syntax":
            directives.syntax = value
        else:
            directives.check = value
        return True

    i = 0
    while i < n:
        raw = lines[i]
        if i == 0 and raw.startswith("\ufeff"):
            raw = raw[1:]
        token = raw.rstrip("\r\n").lstrip(GO_SPACE)
        is_comment = token.startswith("#")
        if is_comment:
            comment = raw[1:].strip(GO_SPACE)
            if comment:
                comments.append(comment)
            else:
                comments = []
        if not directive_done and directive(token, i + 1):
            comments.pop()
        if is_comment:
            token = ""
        i += 1
        start_line = i

        # trimContinuationCharacter
        t = token.rstrip(" \t")
        if t and t[-1] == esc and (len(t) == 1 or t[-2] != esc):
            token = t[:-1]
            eol = False
        else:
            eol = True
            if not token:
                continue
        if eol:
            line = token
        else:
            buf = [token]
            has_empty = False
            while not eol and i < n:
                raw = lines[i]
                token = raw.rstrip("\r\n")
                if not directive_done:
                    directive(token, i + 1)
                i += 1
                stripped = token.lstrip(GO_SPACE)
                if stripped.startswith("#"):
                    continue
                if not stripped:
                    has_empty = True
                    continue
                t = token.rstrip(" \t")
                if t and t[-1] == esc and (len(t) == 1 or t[-2] != esc):
                    token = t[:-1]
                else:
                    eol = True
                buf.append(token)
            line = "".join(buf)
            if has_empty:
                warnings.append(ParseWarning(f"Empty continuation line found in: {line}", i))

        try:
            inst = node_from_line(line, esc, comments)
        except _LineError as exc:
            raise fail(exc.message, start_line, i, exc.needle) from None

        target = inst.child if inst.child is not None else inst
        if target.cmd in _HEREDOC_CMDS and not target.json and "<<" in line:
            try:
                docs = heredocs_from_line(line)
            except ExpansionError as exc:
                raise fail(str(exc), start_line, i, "<<") from None
            for doc in docs:
                body: list[str] = []
                terminated = False
                while i < n:
                    raw = lines[i]
                    i += 1
                    candidate = raw.rstrip("\r\n")
                    if doc.chomp:
                        candidate = candidate.lstrip("\t")
                    if candidate == doc.name:
                        terminated = True
                        break
                    body.append(raw)
                if not terminated:
                    line_no, col = _locate(lines, start_line, start_line, "<<")
                    raise DockerfileError(
                        f"unterminated heredoc <<{doc.name} (no line {doc.name!r} before "
                        "end of file)",
                        file=path,
                        line=line_no,
                        col=col,
                    )
                doc.content = "".join(body)
                inst.heredocs.append(doc)
            if inst.child is not None:
                inst.child.heredocs = inst.heredocs

        inst.start_line = start_line
        inst.end_line = i
        if inst.child is not None:
            inst.child.start_line = start_line
            inst.child.end_line = i
        instructions.append(inst)
        comments = []

    if not instructions:
        raise DockerfileError("file with no instructions", file=path, line=n, col=1 if n else 0)

    return Dockerfile(
        path=path,
        text=text,
        directives=directives,
        instructions=instructions,
        warnings=warnings,
        _lines=lines,
    )


def read_text(path: str | Path) -> str:
    """Dockerfile bytes -> str. Invalid UTF-8 survives (surrogateescape), as Go keeps bytes."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise DockerfileError("no such file", file=str(path)) from None
    except IsADirectoryError:
        raise DockerfileError("is a directory, not a Dockerfile", file=str(path)) from None
    except OSError as exc:
        raise DockerfileError(f"cannot read: {exc.strerror}", file=str(path)) from None
    return data.decode("utf-8", "surrogateescape")


def parse_file(path: str | Path) -> Dockerfile:
    """Read and parse a Dockerfile from disk (the raw tree, see `parse`)."""
    return parse(read_text(path), path=str(path))
