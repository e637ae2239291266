"""Tar bytes written by hand, for the headers `tarfile` refuses to write: negative and
absurd numbers (octal, GNU base-256, PAX), NUL in a PAX path, malformed PAX records,
bad octal digits. Every helper returns plain bytes; `tar()` adds the end-of-archive."""

from __future__ import annotations

BLOCK = 512


def octal(value: int, width: int) -> bytes:
    """The usual ustar encoding: zero-padded octal digits and a NUL."""
    return f"{value:0{width - 1}o}".encode() + b"\0"


def base256(value: int, width: int) -> bytes:
    """GNU base-256: top bit set, big-endian two's complement in the rest of the field."""
    raw = (value % (1 << (8 * width))).to_bytes(width, "big")
    return bytes([raw[0] | 0x80]) + raw[1:]


def header(
    name: str | bytes,
    *,
    typeflag: bytes = b"0",
    size: int | bytes = 0,
    mode: int | bytes = 0o644,
    uid: int | bytes = 0,
    gid: int | bytes = 0,
    mtime: int | bytes = 1_700_000_000,
    linkname: str = "",
    devmajor: int | bytes = 0,
    devminor: int | bytes = 0,
) -> bytes:
    """One ustar header block with a correct checksum. A numeric argument given as bytes
    is written into its field verbatim (base-256, junk digits, ...)."""

    def num(v: int | bytes, width: int) -> bytes:
        raw = v if isinstance(v, bytes) else octal(v, width)
        assert len(raw) == width, (raw, width)
        return raw

    bname = name.encode("utf-8", "surrogateescape") if isinstance(name, str) else name
    block = bytearray(BLOCK)
    block[0:100] = bname[:100].ljust(100, b"\0")
    block[100:108] = num(mode, 8)
    block[108:116] = num(uid, 8)
    block[116:124] = num(gid, 8)
    block[124:136] = num(size, 12)
    block[136:148] = num(mtime, 12)
    block[148:156] = b" " * 8
    block[156:157] = typeflag
    block[157:257] = linkname.encode()[:100].ljust(100, b"\0")
    block[257:263] = b"ustar\0"
    block[263:265] = b"00"
    block[265:297] = b"root".ljust(32, b"\0")
    block[297:329] = b"root".ljust(32, b"\0")
    block[329:337] = num(devmajor, 8)
    block[337:345] = num(devminor, 8)
    block[148:156] = f"{sum(block):06o}\0 ".encode()
    return bytes(block)


def pad(data: bytes) -> bytes:
    return data + bytes(-len(data) % BLOCK)


def pax_record(key: str, value: bytes) -> bytes:
    """`"LEN KEY=VALUE\n"` where LEN counts the whole record, its own digits included."""
    body = b" " + key.encode() + b"=" + value + b"\n"
    length = len(body) + len(str(len(body)))
    if len(str(length)) != len(str(len(body))):
        length += 1
    return str(length).encode() + body


def pax(records: dict[str, bytes] | bytes) -> bytes:
    """A PAX extended header ('x') with RECORDS (or raw record bytes) for the next entry."""
    data = (
        records
        if isinstance(records, bytes)
        else b"".join(pax_record(k, v) for k, v in records.items())
    )
    return header("PaxHeaders/x", typeflag=b"x", size=len(data)) + pad(data)


def entry(name: str, data: bytes = b"", **kw: object) -> bytes:
    """A regular file (or another type via typeflag=) with its data."""
    size = kw.pop("size", len(data))
    return header(name, size=size, **kw) + pad(data)  # type: ignore[arg-type]


def tar(*parts: bytes) -> bytes:
    return b"".join(parts) + bytes(2 * BLOCK)
