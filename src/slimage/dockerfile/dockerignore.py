""".dockerignore: which files of a build context are sent to the build.

The rules are BuildKit's (moby/patternmatcher and its `ignorefile` reader), not
gitignore's: a pattern is matched against the whole context-relative path *and* every
parent directory of it, `**` spans directories, `!` re-includes, the last matching
pattern wins, and `<Dockerfile>.dockerignore` next to the Dockerfile replaces the
context's `.dockerignore`. A build must see exactly the files `docker build` would see,
or cache keys and COPY results differ.

Builder entry points: `load_ignore_patterns(context, dockerfile)` then
`walk_context(context, patterns)` (or `DockerIgnore(patterns).matches(path)`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from slimage.errors import SlimageError

_EXACT, _PREFIX, _SUFFIX, _REGEXP = range(4)
_ESCAPE = frozenset(".+()|{}$")


class DockerignoreError(SlimageError):
    """A .dockerignore pattern is malformed (e.g. an unclosed `[`, a bare `!`)."""


def go_clean(path: str) -> str:
    """Go's filepath.Clean on a slash path (posixpath.normpath keeps a leading `//`)."""
    if path == "":
        return "."
    rooted = path.startswith("/")
    parts: list[str] = []
    for seg in path.split("/"):
        if seg == "" or seg == ".":
            continue
        if seg == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(seg)
    out = "/".join(parts)
    if rooted:
        return "/" + out
    return out or "."


def read_patterns(text: str) -> list[str]:
    """Patterns of an ignore file (BuildKit's ignorefile.ReadAll): BOM stripped, `#`
    lines skipped (only at column 0), whitespace trimmed, paths cleaned, leading `/`
    dropped, `!` kept."""
    out: list[str] = []
    for i, line in enumerate(text.split("\n")):
        if i == 0 and line.startswith("\ufeff"):
            line = line[1:]
        if line.startswith("#"):
            continue
        pattern = line.strip()
        if not pattern:
            continue
        invert = pattern[0] == "!"
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = go_clean(pattern)
            if len(pattern) > 1 and pattern[0] == "/":
                pattern = pattern[1:]
        out.append("!" + pattern if invert else pattern)
    return out


@dataclass(slots=True)
class Pattern:
    """One compiled pattern; `text` is the cleaned pattern without its `!`."""

    text: str
    exclusion: bool
    kind: int
    regex: re.Pattern[str] | None = None

    def match(self, path: str) -> bool:
        kind = self.kind
        if kind == _EXACT:
            return path == self.text
        if kind == _PREFIX:
            return path.startswith(self.text[:-2])
        if kind == _SUFFIX:
            suffix = self.text[2:]
            if path.endswith(suffix):
                return True
            return suffix[:1] == "/" and path == suffix[1:]
        assert self.regex is not None
        return self.regex.match(path) is not None


def _in_class(piece: str, in_class: bool) -> str:
    """PIECE (`[^/]...`) as Go's regexp reads it after an open `[`: its `[` is a literal
    member of the open class and its `]` closes that class. Python would read a nested
    set there, so the `[` is escaped to keep Go's meaning."""
    return "\\" + piece if in_class else piece


def _compile(text: str, exclusion: bool) -> Pattern:
    """Pattern text -> matcher, following patternmatcher's `compile` token by token."""
    reg = ["^"]
    kind = _EXACT
    n = len(text)
    pos = 0
    first = True
    in_class = False
    class_start = 0
    while pos < n:
        ch = text[pos]
        pos += 1
        if ch == "*":
            if pos < n and text[pos] == "*":
                pos += 1
                if pos < n and text[pos] == "/":
                    pos += 1
                if pos >= n:
                    if kind == _EXACT:
                        kind = _PREFIX
                    else:
                        reg.append(".*")
                        kind = _REGEXP
                else:
                    reg.append("(.*/)?")
                    kind = _REGEXP
                if first:
                    kind = _SUFFIX
            else:
                reg.append(_in_class("[^/]*", in_class))
                in_class = False
                kind = _REGEXP
        elif ch == "?":
            reg.append(_in_class("[^/]", in_class))
            in_class = False
            kind = _REGEXP
        elif ch in _ESCAPE:
            reg.append("\\" + ch)
        elif ch == "\\":
            if pos < n:
                reg.append(re.escape(text[pos]))
                pos += 1
                kind = _REGEXP
            else:
                reg.append("\\\\")
        elif ch == "[" and not in_class:
            reg.append(ch)
            kind = _REGEXP
            in_class = True
            class_start = len(reg)
        elif ch == "]" and in_class and len(reg) > class_start:
            reg.append(ch)
            in_class = False
        elif in_class and ch in "[&~|":
            # Literal inside a class in Go's regexp; Python reserves `[`, `&&`, `~~` and
            # `||` there for future set operations (and warns), so escape them.
            reg.append("\\" + ch)
        else:
            reg.append(ch)
        first = False
    regex = None
    if kind == _REGEXP:
        reg.append("$")
        try:
            regex = re.compile("".join(reg))
        except re.error as exc:
            raise DockerignoreError(f"syntax error in pattern {text!r}: {exc}") from None
    return Pattern(text=text, exclusion=exclusion, kind=kind, regex=regex)


def _check_syntax(text: str) -> None:
    """What Go's filepath.Match rejects: an unclosed `[`, `[]`, a trailing `\\`."""
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            if i + 1 >= n:
                raise DockerignoreError(f"syntax error in pattern {text!r}: trailing backslash")
            i += 2
            continue
        if ch == "[":
            j = i + 1
            if j < n and text[j] == "^":
                j += 1
            start = j
            while j < n and (text[j] != "]" or j == start):
                if text[j] == "\\":
                    j += 1
                j += 1
            if j >= n:
                raise DockerignoreError(f"syntax error in pattern {text!r}: unclosed '['")
            i = j + 1
            continue
        i += 1


class DockerIgnore:
    """A compiled pattern list with BuildKit's matching rules."""

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns: list[Pattern] = []
        self.exclusions = False
        for raw in patterns:
            p = raw.strip()
            if not p:
                continue
            p = go_clean(p)
            exclusion = p[0] == "!"
            if exclusion:
                if len(p) == 1:
                    raise DockerignoreError('illegal exclusion pattern: "!"')
                p = p[1:]
                self.exclusions = True
            _check_syntax(p)
            self.patterns.append(_compile(p, exclusion))

    def matches(self, path: str) -> bool:
        """True when `path` (context-relative, slash-separated) is excluded.

        A pattern matches the path itself or any of its parent directories; patterns
        are evaluated in order and the last one that matches decides."""
        path = go_clean(path)
        if path == ".":
            return False  # never exclude the context root itself
        parent, _, _ = path.rpartition("/")
        parent_dirs = parent.split("/") if parent else []
        matched = False
        for pat in self.patterns:
            if pat.exclusion != matched:
                continue
            hit = pat.match(path)
            if not hit and parent_dirs:
                for i in range(1, len(parent_dirs) + 1):
                    if pat.match("/".join(parent_dirs[:i])):
                        hit = True
                        break
            if hit:
                matched = not pat.exclusion
        return matched

    def __bool__(self) -> bool:
        return bool(self.patterns)


def find_ignore_file(context: str | Path, dockerfile: str | Path | None = None) -> Path | None:
    """The ignore file BuildKit would use: `<Dockerfile>.dockerignore` beside the
    Dockerfile if present, else `<context>/.dockerignore`, else None."""
    if dockerfile is not None:
        specific = Path(str(dockerfile) + ".dockerignore")
        if specific.is_file():
            return specific
    generic = Path(context) / ".dockerignore"
    return generic if generic.is_file() else None


def load_ignore_patterns(context: str | Path, dockerfile: str | Path | None = None) -> list[str]:
    """Patterns from the ignore file that applies to this build (empty when none)."""
    path = find_ignore_file(context, dockerfile)
    if path is None:
        return []
    text = path.read_bytes().decode("utf-8", "surrogateescape")
    patterns = read_patterns(text)
    try:
        DockerIgnore(patterns)
    except DockerignoreError as exc:
        raise DockerignoreError(f"{path}: {exc}") from None
    return patterns


def walk_context(
    context: str | Path, patterns: Iterable[str] | DockerIgnore
) -> Iterator[tuple[str, os.DirEntry[str]]]:
    """Every entry of the context that is sent to the build, as (relative slash path,
    DirEntry), parents before children, sorted by name. Symlinks are not followed.

    An excluded directory is skipped whole unless a `!` pattern exists; then it is
    searched, and kept (without its excluded contents) only if something inside is
    re-included, as BuildKit's context transfer does."""
    matcher = patterns if isinstance(patterns, DockerIgnore) else DockerIgnore(patterns)
    root = os.fspath(context)

    def walk(abs_dir: str, rel_dir: str) -> Iterator[tuple[str, os.DirEntry[str]]]:
        try:
            with os.scandir(abs_dir) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            raise SlimageError(f"cannot read build context directory {abs_dir}: {exc}") from None
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            is_dir = entry.is_dir(follow_symlinks=False)
            if not matcher.matches(rel):
                yield rel, entry
                if is_dir:
                    yield from walk(entry.path, rel)
            elif is_dir and matcher.exclusions:
                inner = list(walk(entry.path, rel))
                if inner:
                    yield rel, entry
                    yield from inner

    yield from walk(root, "")


def context_files(context: str | Path, dockerfile: str | Path | None = None) -> list[str]:
    """Convenience: the relative paths `docker build` would send for this context."""
    patterns = load_ignore_patterns(context, dockerfile)
    return [rel for rel, _ in walk_context(context, patterns)]
