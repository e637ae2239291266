"""`RUN --mount=...` specs, parsed as BuildKit's `parseMount` does.

The builder needs the typed mount (type, target, cache id, sharing, secret env, modes) and
users need BuildKit's error messages for a bad spec, so this mirrors its rules: CSV
fields, `key=value` with variables expanded per value, default read-only for bind/secret/
ssh, and the per-type restrictions. It is the only `--mount` parser: the typed RUN
command (`commands.RunCommand.mounts`) calls it with the stage's variables, and the
planner reads `from=` through it.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from dataclasses import dataclass

from slimage.errors import SlimageError

MOUNT_TYPES = ("bind", "cache", "tmpfs", "secret", "ssh")
SHARING_MODES = ("shared", "private", "locked")
_ALL_KEYS = (
    "type", "from", "source", "target", "readonly", "id", "sharing", "required", "size",
    "mode", "uid", "gid", "src", "dst", "destination", "ro", "rw", "readwrite", "env",
)  # fmt: skip
_RAM_RE = re.compile(r"(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?\Z")
_RAM_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


class MountError(SlimageError):
    """A `--mount` spec is malformed."""


@dataclass(slots=True)
class Mount:
    type: str = "bind"
    from_: str = ""
    source: str = ""
    target: str = ""
    readonly: bool = False
    size_limit: int = 0
    cache_id: str = ""
    sharing: str = ""
    required: bool = False
    env: str | None = None
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None


def _parse_bool(key: str, value: str) -> bool:
    # Go's strconv.ParseBool
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise MountError(f"invalid value for {key}: {value}")


def ram_in_bytes(value: str) -> int:
    """docker/go-units RAMInBytes: `64m`, `1.5GiB`, `100` (binary multiples)."""
    m = _RAM_RE.match(value)
    if m is None:
        raise ValueError(value)
    size = float(m.group(1))
    unit = (m.group(2) or "").lower()
    return int(size * _RAM_UNITS.get(unit, 1))


def _uint(value: str, base: int) -> int:
    """Go's strconv.ParseUint(value, base, 32): plain digits only, below 2**32."""
    if not value or not value.isascii() or not value.isdigit():
        raise ValueError(value)
    if base == 8 and ("8" in value or "9" in value):
        raise ValueError(value)
    n = int(value, base)
    if n >= 1 << 32:
        raise ValueError(value)
    return n


def mount_fields(spec: str) -> list[str]:
    """The CSV fields of a `--mount` value (quotes let a value hold a comma)."""
    try:
        rows = list(csv.reader([spec], strict=True))
    except csv.Error as exc:
        raise MountError(f"failed to parse csv mounts: {exc}") from None
    return rows[0] if rows else []


def parse_mount(spec: str, expand: Callable[[str], str] | None = None) -> Mount:
    """One `--mount` value -> Mount. `expand` substitutes variables in each value (the
    builder passes the stage's env); without it, values are taken literally."""
    fields = mount_fields(spec)
    m = Mount()
    ro_auto = True
    for field in fields:
        key, eq, value = field.partition("=")
        key = key.lower()
        if not eq:
            if key in ("readonly", "ro"):
                m.readonly, ro_auto = True, False
                continue
            if key in ("readwrite", "rw"):
                m.readonly, ro_auto = False, False
                continue
            if key == "required":
                if m.type in ("secret", "ssh"):
                    m.required = True
                    continue
                raise MountError(f"unexpected key '{key}' for mount type '{m.type}'")
            raise MountError(f"invalid field '{field}' must be a key=value pair")
        if expand is not None:
            value = expand(value)
        if key == "type":
            low = value.lower()
            if low not in MOUNT_TYPES:
                raise MountError(f'unsupported mount type "{value}"')
            m.type = low
        elif key == "from":
            m.from_ = value
        elif key in ("source", "src"):
            m.source = value
        elif key in ("target", "dst", "destination"):
            m.target = value
        elif key in ("readonly", "ro"):
            m.readonly = _parse_bool(key, value)
            ro_auto = False
        elif key in ("readwrite", "rw"):
            m.readonly = not _parse_bool(key, value)
            ro_auto = False
        elif key == "required":
            if m.type not in ("secret", "ssh"):
                raise MountError(f"unexpected key '{key}' for mount type '{m.type}'")
            m.required = _parse_bool(key, value)
        elif key == "size":
            if m.type != "tmpfs":
                raise MountError(f"unexpected key '{key}' for mount type '{m.type}'")
            try:
                m.size_limit = ram_in_bytes(value)
            except ValueError:
                raise MountError(f"invalid value for {key}: {value}") from None
        elif key == "id":
            m.cache_id = value
        elif key == "sharing":
            low = value.lower()
            if low not in SHARING_MODES:
                raise MountError(f'unsupported sharing value "{value}"')
            m.sharing = low
        elif key in ("mode", "uid", "gid"):
            try:
                num = _uint(value, 8 if key == "mode" else 10)
            except ValueError:
                raise MountError(f"invalid value {value} for {key}") from None
            setattr(m, key, num)
        elif key == "env":
            m.env = value
        else:
            raise MountError(f"unexpected key '{key}' in '{field}'")
    if m.type not in ("secret", "ssh", "cache"):
        for name in ("mode", "uid", "gid"):
            if getattr(m, name) is not None:
                raise MountError(f'{name} not allowed for "{m.type}" type mounts')
    if ro_auto:
        m.readonly = m.type not in ("cache", "tmpfs")
    if m.type == "secret":
        if m.from_:
            raise MountError("secret mount should not have a from")
        if m.sharing:
            raise MountError("secret mount should not define sharing")
        if not m.source and not m.target and not m.cache_id:
            raise MountError("invalid secret mount. one of source, target required")
        if m.source and m.cache_id:
            raise MountError("both source and id can't be set")
    if m.sharing and m.type != "cache":
        raise MountError(f"invalid cache sharing set for {m.type} mount")
    return m
