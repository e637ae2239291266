"""The one bounded JSON reader for documents that come from outside.

Every manifest, index, image config, docker-archive `manifest.json`, OCI `index.json` /
`oci-layout` and registry response (error bodies, token answers) is read through
`load_json`. Python's `json` module alone is not safe for hostile input:

- nesting 100,000 levels deep raises `RecursionError` (and anything that walks the result
  recursively later would too);
- an integer of more than 4,300 digits raises a bare `ValueError` (CPython's int/str
  conversion limit), and a long one that fits is a slow bignum nobody needs;
- `1e400` silently becomes `inf` and crashes later, where `int()` is applied to it;
- `NaN` and `Infinity` are accepted although they are not JSON.

So the reader caps the byte size before parsing, measures the nesting depth without
recursing (and refuses too deep a document before `json` sees it), refuses integers longer
than an int64 and floats that are not finite, and turns every failure into one line of
the caller's error class naming WHAT was read. The limits follow Go's encoding/json and
the Docker/containerd structs the documents are decoded into: an int64 has at most 19
digits, a float64 cannot hold 1e400, and no real image document nests deeper than a
dozen levels (the default cap of 64 leaves room for arbitrary label-like payloads).
"""

from __future__ import annotations

import itertools
import json
import math
import operator
import re
from typing import Any

from slimage.errors import InvalidImageError, SlimageError

MAX_DEPTH = 64
MAX_INT_DIGITS = 19  # an int64 / uint64 has at most 20 characters with its sign
DEFAULT_MAX_BYTES = 4 * 1024 * 1024

_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_STRING = re.compile(rb'"[^"]*"')
_NOT_BRACKET = bytes(c for c in range(256) if c not in b"[]{}")
# '[' and '{' -> 2, ']' and '}' -> 0: the running sum minus the position is the depth.
_STEP = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")
_SURROGATE_HINT = re.compile(rb"\\u[dD][89a-fA-F]")
_ESCAPE_OR_U = re.compile(rb"\\(?:u([0-9a-fA-F]{4})|.)", re.DOTALL)


class _Refused(ValueError):
    """Raised inside the json hooks; carries the one-line reason."""


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _Refused(f"integer of {len(text.lstrip('-'))} digits (over {MAX_INT_DIGITS})")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused(f"number {text[:40]} is out of range")
    return value


def _parse_constant(text: str) -> float:
    raise _Refused(f"{text} is not a JSON value")


def nesting_depth(data: bytes, limit: int) -> int:
    """How deep arrays and objects nest in DATA (the most brackets open at once).

    Linear and without recursion or a Python-level loop per byte: escapes and then
    strings are cut out (escapes first, so `\\"` cannot end a string and a crafted run of
    them cannot make the string pattern backtrack), everything but brackets is deleted,
    and the running count of open brackets is summed by C iterators. A document whose
    opening brackets number LIMIT or fewer is not measured at all."""
    brackets = _STRING.sub(b"", _ESCAPE.sub(b"", data)).translate(None, _NOT_BRACKET)
    opens = brackets.count(b"[") + brackets.count(b"{")
    if opens <= limit:
        return opens
    steps = brackets.translate(_STEP)
    return max(map(operator.sub, itertools.accumulate(steps), range(1, len(steps) + 1)))


def load_json(
    data: bytes | str,
    what: str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_depth: int = MAX_DEPTH,
    error: type[SlimageError] = InvalidImageError,
) -> Any:
    """Parse DATA (what: the file, blob or response it came from, for the message).

    Raises ERROR with one line for anything over the limits or not JSON; never
    `RecursionError`, `OverflowError` or a bare `ValueError`."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    if len(data) > max_bytes:
        raise error(f"{what} is {len(data)} bytes, over the {_human(max_bytes)} limit")
    if nesting_depth(data, max_depth) > max_depth:
        raise error(f"{what}: JSON nests deeper than {max_depth} levels")
    if _SURROGATE_HINT.search(data) and _has_lone_surrogate(data):
        # Go's decoder would turn it into U+FFFD; Python keeps it, and printing or
        # encoding the string later fails. Refusing is the simpler guarantee.
        raise error(f"{what}: a string holds an unpaired UTF-16 surrogate escape")
    try:
        return json.loads(
            data,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
        )
    except _Refused as exc:
        raise error(f"{what}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise error(f"{what} is not valid JSON: {exc}") from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        # UTF-16/32 sniffing oddities, surrogates; RecursionError cannot happen after the
        # depth check but is still never allowed out.
        raise error(f"{what} is not valid JSON: {str(exc).splitlines()[0][:200]}") from None


def _has_lone_surrogate(data: bytes) -> bool:
    """Walk the escapes in order (so `\\\\ud800` is a backslash and text, not an
    escape) and look for a high surrogate without its low half, or a low one alone."""
    pending_high = False
    last_end = -1
    for m in _ESCAPE_OR_U.finditer(data):
        hexd = m.group(1)
        unit = int(hexd, 16) if hexd else -1
        adjacent = m.start() == last_end
        if pending_high and not (adjacent and 0xDC00 <= unit <= 0xDFFF):
            return True
        if pending_high:
            pending_high = False
        elif 0xDC00 <= unit <= 0xDFFF:
            return True
        elif 0xD800 <= unit <= 0xDBFF:
            pending_high = True
        last_end = m.end()
    return pending_high


def _human(n: int) -> str:
    if n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)} MiB"
    if n % 1024 == 0:
        return f"{n // 1024} KiB"
    return f"{n} bytes"
