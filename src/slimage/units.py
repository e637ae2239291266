"""Sizes and durations exactly as the Docker CLI prints them (go-units).

Users compare `slimage images` with `docker images` side by side, so the rounding rules
matter as much as the numbers: SI units, three significant digits, no space (`5.84MB`,
`0B`, and even Go's `1e+03kB` for 999,999 bytes), and `HumanDuration` + " ago".
"""

from __future__ import annotations

import datetime as _dt
import time

_DECIMAL = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
_BINARY = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")


def _size_and_unit(size: float, base: float, units: tuple[str, ...]) -> tuple[float, str]:
    i = 0
    while size >= base and i < len(units) - 1:
        size /= base
        i += 1
    return size, units[i]


def _go_g(value: float, precision: int) -> str:
    """Go's `%.*g`: like C's, which Python's `%g` also follows (exponent with sign and at
    least two digits), so `1e+03` comes out the same."""
    return f"{value:.{precision}g}"


def human_size(size: float, precision: int = 3) -> str:
    """go-units HumanSizeWithPrecision: `docker images`/`docker history` SIZE."""
    value, unit = _size_and_unit(float(size), 1000.0, _DECIMAL)
    return f"{_go_g(value, precision)}{unit}"


def human_size_4(size: float) -> str:
    """go-units HumanSize (4 significant digits): what Docker shows as VirtualSize."""
    return human_size(size, 4)


def bytes_size(size: float) -> str:
    """go-units BytesSize (binary units, 4 significant digits)."""
    value, unit = _size_and_unit(float(size), 1024.0, _BINARY)
    return f"{_go_g(value, 4)}{unit}"


def human_duration(seconds: float) -> str:
    """go-units HumanDuration, with Docker's thresholds (hours round half up)."""
    secs = int(seconds)
    if secs < 1:
        return "Less than a second"
    if secs == 1:
        return "1 second"
    if secs < 60:
        return f"{secs} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def parse_rfc3339(text: str | None) -> float | None:
    """An image config's `created` -> Unix seconds (None when absent or unparsable).

    Configs carry nanoseconds (`2026-11-27T19:02:14.123456789Z`), which `fromisoformat`
    refuses, so the fraction is cut to microseconds first."""
    if not text:
        return None
    s = text.strip()
    if s.endswith("Z") or s.endswith("z"):
        s = s[:-1] + "+00:00"
    if "." in s:
        head, _, rest = s.partition(".")
        digits = ""
        i = 0
        while i < len(rest) and rest[i].isdigit():
            digits += rest[i]
            i += 1
        s = head + ("." + digits[:6].ljust(6, "0") if digits else "") + rest[i:]
    try:
        when = _dt.datetime.fromisoformat(s)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_dt.UTC)
    return when.timestamp()


def since(created: float | None, now: float | None = None) -> str:
    """`CREATED` column: "3 minutes ago". A missing time is the Unix epoch, as in Docker."""
    now = time.time() if now is None else now
    return human_duration(now - (created or 0)) + " ago"


def rfc3339_local(ts: float | None) -> str:
    """Go's `time.Unix(ts, 0).Format(time.RFC3339)` in the local zone (`Z` for UTC)."""
    when = _dt.datetime.fromtimestamp(int(ts or 0)).astimezone()
    offset = when.utcoffset()
    if offset is None or offset == _dt.timedelta(0):
        return when.strftime("%Y-%m-%dT%H:%M:%SZ")
    text = when.strftime("%Y-%m-%dT%H:%M:%S%z")
    return text[:-2] + ":" + text[-2:]


def go_time_string(ts: float | None) -> str:
    """Go's `time.Time.String()` for whole seconds: `2026-11-27 19:02:14 +0000 UTC`
    (the CreatedAt of `docker images --format '{{json .}}'`)."""
    when = _dt.datetime.fromtimestamp(int(ts or 0)).astimezone()
    zone = when.tzname() or ""
    return when.strftime("%Y-%m-%d %H:%M:%S %z") + (f" {zone}" if zone else "")
