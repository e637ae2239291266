"""History `created_by` text exactly as BuildKit's Dockerfile frontend writes it.

Tools (and people) read `docker history`; matching BuildKit's strings byte for byte means
an image slimage built looks like one BuildKit built. Several strings are Go `fmt`
renderings of Go values (`%q` of a []string, `%v` of a map), reproduced here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from slimage.dockerfile.parser import go_quote

# BuildKit marks its entries with this comment; ours marks slimage as the builder.
COMMENT = "slimage.dockerfile.v0"
LAYER_SUFFIX = " # buildkit"


def q_list(items: Sequence[str]) -> str:
    """Go's `%q` of a []string: `["npm" "start"]`."""
    return "[" + " ".join(go_quote(s) for s in items) + "]"


def v_list(items: Sequence[str]) -> str:
    """Go's `%v` of a []string: `[/data /d2]`."""
    return "[" + " ".join(items) + "]"


def v_port_map(ports: Sequence[str]) -> str:
    """Go's `%v` of map[nat.Port]struct{}: keys sorted, `map[3000/tcp:{}]`."""
    return "map[" + " ".join(f"{p}:{{}}" for p in sorted(set(ports))) + "]"


def go_duration(ns: int) -> str:
    """time.Duration.String()."""
    if ns == 0:
        return "0s"
    neg = ns < 0
    ns = abs(ns)
    if ns < 1000:
        s = f"{ns}ns"
    elif ns < 1_000_000:
        s = _frac(ns, 1000) + "µs"
    elif ns < 1_000_000_000:
        s = _frac(ns, 1_000_000) + "ms"
    else:
        h, rem = divmod(ns, 3600 * 10**9)
        m, rem = divmod(rem, 60 * 10**9)
        secs = _frac(rem, 10**9) + "s"
        if h:
            s = f"{h}h{m}m{secs}"
        elif m:
            s = f"{m}m{secs}"
        else:
            s = secs
    return "-" + s if neg else s


def _frac(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}." + f"{frac:0{digits}d}".rstrip("0")


def go_quote_rune(n: int) -> str:
    """Go's `%q` of an int (a rune literal): 2 -> '\\x02', 65 -> 'A'."""
    ch = chr(n)
    named = {
        7: "\\a",
        8: "\\b",
        12: "\\f",
        10: "\\n",
        13: "\\r",
        9: "\\t",
        11: "\\v",
        39: "\\'",
        92: "\\\\",
    }
    if n in named:
        return f"'{named[n]}'"
    if ch.isprintable():
        return f"'{ch}'"
    if n < 0x80:
        return f"'\\x{n:02x}'"
    if n < 0x10000:
        return f"'\\u{n:04x}'"
    return f"'\\U{n:08x}'"


def healthcheck_text(health: Mapping[str, object]) -> str:
    """`HEALTHCHECK %q` of *HealthConfig (Test, Interval, Timeout, StartPeriod, Retries).

    StartInterval is printed only when set: the Docker engines this is checked against
    predate that field, and BuildKit's newer struct prints it between StartPeriod and
    Retries."""
    raw_test = health.get("Test") or []
    test = q_list([str(t) for t in raw_test] if isinstance(raw_test, list) else [])
    parts = [test]
    keys = ["Interval", "Timeout", "StartPeriod"]
    if health.get("StartInterval"):
        keys.append("StartInterval")
    for key in keys:
        parts.append(go_quote(go_duration(int(health.get(key) or 0))))  # type: ignore[call-overload]
    parts.append(go_quote_rune(int(health.get("Retries") or 0)))  # type: ignore[call-overload]
    return "HEALTHCHECK &{" + " ".join(parts) + "}"


def run_text(args: Sequence[str], build_args: Sequence[tuple[str, str]]) -> str:
    """`RUN |2 V=1 W=2 /bin/sh -c cmd # buildkit` (runCommandString + commitToHistory)."""
    words: list[str] = []
    if build_args:
        words.append(f"|{len(build_args)}")
        words.extend(f"{k}={v}" for k, v in build_args)
    return "RUN " + " ".join(words + list(args)) + LAYER_SUFFIX
