"""A fast, streaming tar reader for layer changesets.

`tarfile` is general but slow on layers with 100k entries and it cannot be fed in chunks.
This scanner parses ustar, GNU (long names, base-256 numbers) and pax headers from chunks
pushed into it, so one read of a layer can at the same time be hashed, compressed and
scanned. File data is skipped unless the entry callback asks for it. Memory use is one
header plus the caller's chunk, whatever the layer's size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from slimage.errors import InvalidImageError

BLOCK = 512
CHUNK = 1 << 20

REG, AREG, LNK, SYM, CHR, BLK, DIR, FIFO, CONT = (
    b"0",
    b"\0",
    b"1",
    b"2",
    b"3",
    b"4",
    b"5",
    b"6",
    b"7",
)
GNU_LONGNAME, GNU_LONGLINK, PAX_X, PAX_G = b"L", b"K", b"x", b"g"

TYPE_NAMES = {
    REG: "file",
    AREG: "file",
    CONT: "file",
    LNK: "hardlink",
    SYM: "symlink",
    CHR: "chardev",
    BLK: "blockdev",
    DIR: "dir",
    FIFO: "fifo",
}


@dataclass(slots=True)
class TarEntry:
    name: str  # as in the archive, normalised: no leading "./" or "/", no trailing "/"
    kind: str  # file, dir, symlink, hardlink, chardev, blockdev, fifo
    size: int
    mode: int
    uid: int
    gid: int
    mtime: float
    linkname: str
    devmajor: int = 0
    devminor: int = 0
    uname: str = ""
    gname: str = ""
    xattrs: dict[str, bytes] | None = None
    raw_name: str = ""


def normalize_name(name: str) -> str:
    """Layer paths are relative to the root: strip './', leading and trailing slashes."""
    while name.startswith("./"):
        name = name[2:]
    name = name.strip("/")
    if name == ".":
        return ""
    return name


def _num(field: bytes) -> int:
    if field and field[0] & 0x80:  # GNU base-256
        value = field[0] & 0x7F
        for b in field[1:]:
            value = (value << 8) | b
        if field[0] & 0x40:  # negative
            value -= 1 << (8 * len(field) - 1)
        return value
    field = field.split(b"\0", 1)[0].strip(b" \0")
    if not field:
        return 0
    try:
        return int(field, 8)
    except ValueError as exc:
        raise InvalidImageError(f"bad number field {field!r} in tar header") from exc


def _str(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _parse_pax(data: bytes) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    pos = 0
    while pos < len(data):
        sp = data.find(b" ", pos)
        if sp < 0:
            break
        try:
            length = int(data[pos:sp])
        except ValueError as exc:
            raise InvalidImageError("malformed pax header") from exc
        if length <= 0:
            raise InvalidImageError("malformed pax header")
        record = data[sp + 1 : pos + length - 1]
        key, _, value = record.partition(b"=")
        out[key.decode("utf-8", "surrogateescape")] = value
        pos += length
    return out


DataSink = Callable[[bytes], None]
OnEntry = Callable[[TarEntry], DataSink | None]


class TarScanner:
    """Push-based tar parser. `feed(chunk)` as data arrives, then `close()`.

    For each entry `on_entry(entry)` is called; if it returns a callable, that callable
    receives the entry's data in pieces (used to hash file contents for `diff`).
    """

    def __init__(self, on_entry: OnEntry, *, name: str = "layer"):
        self._on_entry = on_entry
        self._name = name
        self._buf = bytearray()
        self._skip = 0  # data bytes still to deliver/skip for the current entry
        self._pad = 0  # padding after them
        self._sink: DataSink | None = None
        self._collect: bytearray | None = None  # for pax / GNU long-name payloads
        self._collect_kind = b""
        self._pax: dict[str, bytes] = {}
        self._gpax: dict[str, bytes] = {}
        self._longname: str | None = None
        self._longlink: str | None = None
        self._ended = False
        self._zero_blocks = 0
        self.entries = 0
        self.offset = 0

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.offset += len(chunk)
        view = memoryview(chunk)
        pos = 0
        n = len(view)
        while pos < n:
            if self._ended:
                return  # trailing data after the end-of-archive marker is ignored, as tar does
            if self._skip:
                take = min(self._skip, n - pos)
                piece = view[pos : pos + take]
                if self._sink is not None:
                    self._sink(bytes(piece))
                elif self._collect is not None:
                    self._collect += piece
                self._skip -= take
                pos += take
                if not self._skip:
                    self._finish_data()
                continue
            if self._pad:
                take = min(self._pad, n - pos)
                self._pad -= take
                pos += take
                continue
            need = BLOCK - len(self._buf)
            if need == BLOCK and n - pos >= BLOCK:
                self._header(bytes(view[pos : pos + BLOCK]))
                pos += BLOCK
            else:
                take = min(need, n - pos)
                self._buf += view[pos : pos + take]
                pos += take
                if len(self._buf) == BLOCK:
                    block = bytes(self._buf)
                    self._buf.clear()
                    self._header(block)

    def close(self) -> None:
        if self._skip or self._buf:
            raise InvalidImageError(f"{self._name}: truncated tar (ends inside an entry)")
        if self._collect is not None:
            raise InvalidImageError(f"{self._name}: truncated tar (ends inside a header)")

    def _finish_data(self) -> None:
        if self._collect is not None:
            payload = bytes(self._collect)
            self._collect = None
            kind = self._collect_kind
            if kind == PAX_X:
                self._pax = _parse_pax(payload)
            elif kind == PAX_G:
                self._gpax.update(_parse_pax(payload))
            elif kind == GNU_LONGNAME:
                self._longname = payload.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            elif kind == GNU_LONGLINK:
                self._longlink = payload.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        self._sink = None

    def _header(self, block: bytes) -> None:
        if block.count(0) == BLOCK:
            self._zero_blocks += 1
            if self._zero_blocks >= 2:
                self._ended = True
            return
        if self._zero_blocks:
            # One zero block then more headers: tolerated by GNU tar, so by us.
            self._zero_blocks = 0
        chksum = _num(block[148:156])
        calc = sum(block[:148]) + 256 + sum(block[156:])
        if chksum != calc:
            # Some writers compute it with signed chars.
            signed = sum((b - 256 if b > 127 else b) for b in block[:148] + block[156:]) + 256
            if chksum != signed:
                raise InvalidImageError(
                    f"{self._name}: corrupt tar header at byte {self.offset} (bad checksum)"
                )
        typeflag = block[156:157]
        size = _num(block[124:136])
        if size < 0:
            raise InvalidImageError(f"{self._name}: negative size in tar header")
        padded = (size + BLOCK - 1) // BLOCK * BLOCK
        if typeflag in (PAX_X, PAX_G, GNU_LONGNAME, GNU_LONGLINK):
            if size > 16 << 20:
                raise InvalidImageError(f"{self._name}: oversized tar extension header")
            self._collect = bytearray()
            self._collect_kind = typeflag
            self._skip, self._pad = size, padded - size
            if not size:
                self._finish_data()
            return
        name = _str(block[0:100])
        if block[257:262] == b"ustar":
            prefix = _str(block[345:500]) if block[257:263] == b"ustar\0" else ""
            if prefix:
                name = prefix + "/" + name
        linkname = _str(block[157:257])
        pax = self._pax
        if self._gpax:
            pax = {**self._gpax, **pax}
        mtime: float = _num(block[136:148])
        uid, gid = _num(block[108:116]), _num(block[116:124])
        xattrs: dict[str, bytes] | None = None
        if self._longname is not None:
            name = self._longname
        if self._longlink is not None:
            linkname = self._longlink
        if pax:
            if "path" in pax:
                name = pax["path"].decode("utf-8", "surrogateescape")
            if "linkpath" in pax:
                linkname = pax["linkpath"].decode("utf-8", "surrogateescape")
            if "size" in pax:
                size = int(pax["size"])
                padded = (size + BLOCK - 1) // BLOCK * BLOCK
            if "uid" in pax:
                uid = int(pax["uid"])
            if "gid" in pax:
                gid = int(pax["gid"])
            if "mtime" in pax:
                mtime = float(pax["mtime"])
            for key, value in pax.items():
                if key.startswith("SCHILY.xattr."):
                    xattrs = xattrs or {}
                    xattrs[key[len("SCHILY.xattr.") :]] = value
        self._pax = {}
        self._longname = self._longlink = None
        kind = TYPE_NAMES.get(typeflag)
        if kind is None:
            raise InvalidImageError(
                f"{self._name}: unsupported tar entry type {typeflag!r} for {name!r}"
            )
        if kind in ("hardlink", "symlink", "dir", "chardev", "blockdev", "fifo") and kind != "file":
            # Only regular files carry data; a size on anything else is ignored, as tar does.
            data_size = size if kind == "file" else 0
        else:
            data_size = size
        if kind != "file":
            padded = (data_size + BLOCK - 1) // BLOCK * BLOCK
            size_for_entry = 0
        else:
            size_for_entry = size
        entry = TarEntry(
            name=normalize_name(name),
            kind=kind,
            size=size_for_entry,
            mode=_num(block[100:108]) & 0o7777,
            uid=uid,
            gid=gid,
            mtime=mtime,
            linkname=linkname,
            devmajor=_num(block[329:337]) if kind in ("chardev", "blockdev") else 0,
            devminor=_num(block[337:345]) if kind in ("chardev", "blockdev") else 0,
            uname=_str(block[265:297]),
            gname=_str(block[297:329]),
            xattrs=xattrs,
            raw_name=name,
        )
        self.entries += 1
        self._sink = self._on_entry(entry)
        self._skip, self._pad = data_size, padded - data_size
        if not data_size:
            self._finish_data()


def scan(stream: BinaryIO, on_entry: OnEntry, *, name: str = "layer", chunk: int = CHUNK) -> int:
    """Scan a whole tar stream; returns the number of entries."""
    scanner = TarScanner(on_entry, name=name)
    while data := stream.read(chunk):
        scanner.feed(data)
    scanner.close()
    return scanner.entries


def iter_entries(stream: BinaryIO, *, name: str = "layer") -> Iterator[TarEntry]:
    """Pull-style iteration for callers that don't need file data."""
    pending: list[TarEntry] = []
    scanner = TarScanner(lambda e: pending.append(e), name=name)
    while data := stream.read(CHUNK):
        scanner.feed(data)
        yield from pending
        pending.clear()
    scanner.close()
    yield from pending


class DockerSize:
    """Docker's SIZE for a layer: bytes of regular files plus the UTF-8 length of each
    symlink target; hardlinks, directories and whiteouts count 0. This is what
    `directory.Size` over an unpacked layer gives for layers Docker commits or imports
    (BuildKit-exported layers are counted by Docker 20.10 without the symlink bytes)."""

    def __init__(self) -> None:
        self.total = 0

    def __call__(self, entry: TarEntry) -> None:
        base = entry.name.rsplit("/", 1)[-1]
        if base.startswith(".wh."):
            return None
        if entry.kind == "file":
            self.total += entry.size
        elif entry.kind == "symlink":
            self.total += len(entry.linkname.encode("utf-8", "surrogateescape"))
        return None
