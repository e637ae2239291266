"""Debian version ordering (deb-version(7)), the rule `dpkg --compare-versions` applies.

The resolver must pick the same candidate apt would, and a constraint like
`libc6 (>= 2.34)` must accept `2.36-9+deb12u4` and refuse `2.31-13`; plain string or
PEP 440 ordering gets `~` (sorts before everything, even the end of the string) and epochs
wrong.
"""

from __future__ import annotations

import functools
import re

_VALID = re.compile(r"^(?:(\d+):)?([0-9][A-Za-z0-9.+~:-]*?)(?:-([A-Za-z0-9.+~]+))?$")


def _split(version: str) -> tuple[int, str, str]:
    epoch = 0
    rest = version.strip()
    if ":" in rest:
        head, rest = rest.split(":", 1)
        epoch = int(head) if head.isdigit() else 0
    upstream, sep, revision = rest.rpartition("-")
    if not sep:
        upstream, revision = rest, ""
    return epoch, upstream, revision


def _order(ch: str) -> int:
    if ch == "~":
        return -1
    if ch.isalpha():
        return ord(ch)
    return ord(ch) + 256


def _compare_part(a: str, b: str) -> int:
    i = j = 0
    while i < len(a) or j < len(b):
        # Non-digit prefix, compared character by character with dpkg's weights.
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ca = _order(a[i]) if i < len(a) and not a[i].isdigit() else 0
            cb = _order(b[j]) if j < len(b) and not b[j].isdigit() else 0
            if ca != cb:
                return -1 if ca < cb else 1
            if i < len(a) and not a[i].isdigit():
                i += 1
            if j < len(b) and not b[j].isdigit():
                j += 1
        # Digit run, compared as a number.
        si = i
        while i < len(a) and a[i].isdigit():
            i += 1
        sj = j
        while j < len(b) and b[j].isdigit():
            j += 1
        na = int(a[si:i]) if i > si else 0
        nb = int(b[sj:j]) if j > sj else 0
        if na != nb:
            return -1 if na < nb else 1
    return 0


@functools.lru_cache(maxsize=65536)
def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as A sorts before, equal to or after B."""
    ea, ua, ra = _split(a)
    eb, ub, rb = _split(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _compare_part(ua, ub) or _compare_part(ra, rb)


def is_valid(version: str) -> bool:
    return bool(_VALID.match(version.strip()))


def satisfies(version: str, op: str, wanted: str) -> bool:
    """Does VERSION meet the relation `OP WANTED` (ops: << <= = >= >>, and legacy < >)."""
    c = compare_versions(version, wanted)
    if op == "=":
        return c == 0
    if op in (">=",):
        return c >= 0
    if op in ("<=",):
        return c <= 0
    if op in (">>",):
        return c > 0
    if op in ("<<",):
        return c < 0
    if op == "<":  # obsolete spellings, meaning <= and >=
        return c <= 0
    if op == ">":
        return c >= 0
    raise ValueError(f"unknown version relation {op!r}")
