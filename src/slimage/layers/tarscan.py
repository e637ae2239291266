"""A fast, streaming tar reader for layer changesets.

`tarfile` is general but slow on layers with 100k entries and it cannot be fed in chunks.
This scanner parses ustar, GNU (long names, base-256 numbers) and pax headers from chunks
pushed into it, so one read of a layer can at the same time be hashed, compressed and
scanned. File data is skipped unless the entry callback asks for it. Memory use is one
header plus the caller's chunk, whatever the layer's size.
"""

from __future__ import annotations

import math
import os
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO
from zlib import adler32

from slimage.errors import InvalidImageError
from slimage.layers.whiteout import whiteout_victim

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
    except ValueError:
        raise _BadNumber(field) from None


def _str(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


class _BadNumber(ValueError):
    """A numeric header field that is neither octal nor base-256; `TarScanner` turns it
    into an `InvalidImageError` naming the archive, the entry and the field."""

    def __init__(self, field: bytes):
        super().__init__(field)
        self.field = field


# ---------------------------------------------------------------- entry validation
#
# Every reader of a layer (ingest, extraction, analyze, history, compat) sees entries
# through TarScanner, so the rules below are checked once, here, for all of them: what
# `load` accepts, `run` can extract, and a header no reader could apply never gets past the
# parser. Limits follow what Linux (and so Docker, which hands these values to the same
# syscalls) can represent; a value beyond them is refused, never clamped, because Docker
# refuses such a layer too (Go's archive/tar, or the syscall, fails the `docker load`).

MAX_FILE_SIZE = 1 << 40
"""1 TiB. No real layer holds a bigger file; a bigger size only serves to derail offsets."""
MAX_ID = (1 << 32) - 2
"""uid_t/gid_t are 32 bits and (uid_t)-1 means "leave unchanged" to chown: refused."""
MAX_MODE = 0o7777777
"""What the 8-byte octal field can hold (type bits included by some writers)."""
MAX_MTIME = 9_223_372_035
"""Seconds either side of 1970 whose nanoseconds still fit utimensat's int64."""
MAX_DEV = (1 << 32) - 1
"""Major and minor numbers are 32-bit in makedev(3)."""
NAME_MAX = 255
"""Bytes in one path component (Linux NAME_MAX): longer names cannot be created."""
PATH_MAX = 4095
"""Bytes in a whole entry name or link target (Linux PATH_MAX without the NUL)."""
MAX_DEPTH = 512
"""Components in one path. Far beyond real images (the deepest node_modules trees are
under 100); it keeps every walk of a tree (shutil.rmtree, the merged tree) well inside
Python's recursion limit, where 3,000 components raised RecursionError."""

_PAX_INT = re.compile(rb"[0-9]{1,20}")
_PAX_TIME = re.compile(rb"-?[0-9]{1,20}(?:\.[0-9]{0,30})?")


def check_fields(
    label: str,
    name: str,
    *,
    size: int,
    mode: int,
    uid: int,
    gid: int,
    mtime: float,
    devmajor: int = 0,
    devminor: int = 0,
) -> None:
    """THE numeric-field rule for a tar entry, applied to the final values (ustar octal or
    base-256, after any PAX override): each must be a value the extractor can hand to the
    kernel. Raises `InvalidImageError` "LABEL: 'NAME': <field> <value> ..." otherwise."""

    def bad(what: str, value: object, why: str) -> InvalidImageError:
        return InvalidImageError(f"{label}: {name!r}: {what} {value!r} in tar header {why}")

    if not 0 <= size <= MAX_FILE_SIZE:
        raise bad("size", size, f"is out of range (0..{MAX_FILE_SIZE})")
    if not 0 <= mode <= MAX_MODE:
        raise bad("mode", mode, "is out of range")
    if not 0 <= uid <= MAX_ID:
        raise bad("uid", uid, f"is out of range (0..{MAX_ID})")
    if not 0 <= gid <= MAX_ID:
        raise bad("gid", gid, f"is out of range (0..{MAX_ID})")
    if not (math.isfinite(mtime) and -MAX_MTIME <= mtime <= MAX_MTIME):
        raise bad("mtime", mtime, "is not a representable time")
    if not 0 <= devmajor <= MAX_DEV:
        raise bad("devmajor", devmajor, "is out of range")
    if not 0 <= devminor <= MAX_DEV:
        raise bad("devminor", devminor, "is out of range")


def path_problem(path: str, *, what: str = "path") -> str | None:
    """Why PATH (an entry name or link target) cannot exist on Linux, or None.

    NUL cannot be in a file name (the kernel stops there, so what we checked would not be
    what we wrote); a component over NAME_MAX or a path over PATH_MAX cannot be created;
    see MAX_DEPTH for the depth bound."""
    if len(path) <= NAME_MAX and path.isascii() and "\0" not in path:
        return None  # the common case: no component and no path can be too long
    if "\0" in path:
        return f"{what} contains a NUL byte"
    raw = path.encode("utf-8", "surrogateescape")
    if len(raw) > PATH_MAX:
        return f"{what} is {len(raw)} bytes (over {PATH_MAX})"
    parts = raw.split(b"/")
    if len(parts) > MAX_DEPTH:
        return f"{what} has {len(parts)} components (over {MAX_DEPTH})"
    longest = max(len(p) for p in parts)
    if longest > NAME_MAX:
        return f"{what} has a {longest}-byte component (over {NAME_MAX})"
    return None


def _parse_pax(data: bytes, where: str) -> dict[str, bytes]:
    """PAX records, `"%d %s=%s\n" % (length, key, value)` each, as POSIX defines them.

    Strict like Go's archive/tar (which is what Docker reads layers with): the length is
    decimal digits and covers the whole record, which ends in a newline, and the key is
    not empty. Anything else is refused rather than guessed at."""
    out: dict[str, bytes] = {}
    pos = 0
    n = len(data)
    while pos < n:
        if data[pos] == 0:
            break  # NUL padding after the last record (some writers)
        sp = data.find(b" ", pos, pos + 21)
        digits = data[pos:sp] if sp > pos else b""
        if not _PAX_INT.fullmatch(digits):
            raise InvalidImageError(f"{where}: malformed pax header (bad record length)")
        length = int(digits)
        end = pos + length
        if length <= sp - pos + 1 or end > n or data[end - 1] != 0x0A:
            raise InvalidImageError(f"{where}: malformed pax header (bad record length)")
        key, eq, value = data[sp + 1 : end - 1].partition(b"=")
        if not key or not eq:
            raise InvalidImageError(f"{where}: malformed pax header (record without key)")
        out[key.decode("utf-8", "surrogateescape")] = value
        pos = end
    return out


def _pax_int(value: bytes) -> int:
    if not _PAX_INT.fullmatch(value):
        raise ValueError(value)
    return int(value)


def _pax_time(value: bytes) -> float:
    """A PAX time: `[-]seconds[.fraction]` only; `nan`, `inf` and `1e400` are refused."""
    if not _PAX_TIME.fullmatch(value):
        raise ValueError(value)
    return float(value)


_HEADER = struct.Struct("100s8s8s8s12s12s8sc100s6s2s32s32s8s8s155s12x")
_ZERO_BLOCK = bytes(BLOCK)
_EXTENSIONS = frozenset((PAX_X, PAX_G, GNU_LONGNAME, GNU_LONGLINK))
_WINDOW = 32 << 10  # headers of small files usually share one read


def _octal(field: bytes) -> int:
    """A numeric header field: octal text, or GNU base-256 when the top bit is set."""
    try:
        return int(field.rstrip(b"\0 "), 8)  # the common case, in one C call
    except ValueError:
        pass
    if field and field[0] & 0x80:
        return _num(field)
    text = field.partition(b"\0")[0].strip()
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise _BadNumber(field) from None


def _unsigned_sum(block: bytes) -> int:
    """The ustar checksum of BLOCK: its bytes summed with the checksum field as spaces.

    adler32's low half is 1 + the byte sum mod 65521; over 256 bytes the sum is at most
    65280, so two halves give the exact sum at C speed (sum() over 512 ints is ~5 us)."""
    total = (adler32(block[:256]) & 0xFFFF) + (adler32(block[256:]) & 0xFFFF) - 2
    return total - sum(block[148:156]) + 256


_OWNERS: dict[bytes, str] = {}  # raw uname/gname field -> name: a layer has a handful


def _owner(field: bytes) -> str:
    name = field.partition(b"\0")[0].decode("utf-8", "surrogateescape")
    if len(_OWNERS) < 4096:
        _OWNERS[field] = name
    return name


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
                self._pax = _parse_pax(payload, self._where())
            elif kind == PAX_G:
                self._gpax.update(_parse_pax(payload, self._where()))
            elif kind == GNU_LONGNAME:
                self._longname = payload.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            elif kind == GNU_LONGLINK:
                self._longlink = payload.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        self._sink = None

    def _where(self) -> str:
        return f"{self._name}: tar header before byte {self.offset}"

    def _numbers(self, block: bytes, fields: tuple[bytes, ...]) -> list[int]:
        """The careful parse of numeric fields (empty, GNU base-256, junk after the NUL),
        with an error that names the archive, the entry and the field."""
        out = []
        for label, field in zip(
            ("checksum", "size", "mode", "uid", "gid", "mtime"), fields, strict=True
        ):
            try:
                out.append(_octal(field))
            except _BadNumber as exc:
                entry = block[:100].partition(b"\0")[0].decode("utf-8", "surrogateescape")
                raise InvalidImageError(
                    f"{self._name}: {entry!r}: bad number field {label}={exc.field!r} in tar header"
                ) from None
        return out

    def _header(self, block: bytes) -> None:
        # The hot path of every layer scan: one struct unpack, C-speed checksum, and
        # octal fields parsed only once. ~5 us per header instead of ~18.
        if block == _ZERO_BLOCK:
            self._zero_blocks += 1
            if self._zero_blocks >= 2:
                self._ended = True
            return
        if self._zero_blocks:
            # One zero block then more headers: tolerated by GNU tar, so by us.
            self._zero_blocks = 0
        (
            f_name,
            f_mode,
            f_uid,
            f_gid,
            f_size,
            f_mtime,
            f_chksum,
            typeflag,
            f_link,
            magic,
            _version,
            f_uname,
            f_gname,
            f_devmaj,
            f_devmin,
            f_prefix,
        ) = _HEADER.unpack(block)
        try:
            # The common case, inline: NUL/space-terminated octal in every field.
            chksum = int(f_chksum.rstrip(b"\0 "), 8)
            size = int(f_size.rstrip(b"\0 "), 8)
            mode = int(f_mode.rstrip(b"\0 "), 8)
            uid = int(f_uid.rstrip(b"\0 "), 8)
            gid = int(f_gid.rstrip(b"\0 "), 8)
            mtime: float = int(f_mtime.rstrip(b"\0 "), 8)
        except ValueError:
            # empty fields, GNU base-256, garbage after the NUL: the careful way
            chksum, size, mode, uid, gid, mtime_i = self._numbers(
                block, (f_chksum, f_size, f_mode, f_uid, f_gid, f_mtime)
            )
            mtime = mtime_i
        total = (adler32(block[:256]) & 0xFFFF) + (adler32(block[256:]) & 0xFFFF) + 254
        if chksum != total - sum(block[148:156]):
            # Some writers compute it with signed chars.
            signed = sum((b - 256 if b > 127 else b) for b in block[:148] + block[156:]) + 256
            if chksum != signed:
                raise InvalidImageError(
                    f"{self._name}: corrupt tar header at byte {self.offset} (bad checksum)"
                )
        if typeflag in _EXTENSIONS:
            # The extension's own size (a PAX record cannot override it) bounds what we
            # buffer; the entry it describes is checked after the overrides, below.
            if size < 0:
                raise InvalidImageError(f"{self._where()}: negative size of a tar extension")
            if size > 16 << 20:
                raise InvalidImageError(f"{self._name}: oversized tar extension header")
            self._collect = bytearray()
            self._collect_kind = typeflag
            self._skip, self._pad = size, -size % BLOCK
            if not size:
                self._finish_data()
            return
        name = f_name.partition(b"\0")[0].decode("utf-8", "surrogateescape")
        if magic == b"ustar\0" and f_prefix[0]:
            name = f_prefix.partition(b"\0")[0].decode("utf-8", "surrogateescape") + "/" + name
        linkname = (
            f_link.partition(b"\0")[0].decode("utf-8", "surrogateescape") if f_link[0] else ""
        )
        xattrs: dict[str, bytes] | None = None
        if self._longname is not None:
            name = self._longname
            self._longname = None
        if self._longlink is not None:
            linkname = self._longlink
            self._longlink = None
        pax = self._pax
        if self._gpax:
            pax = {**self._gpax, **pax}
        if pax:
            self._pax = {}
            if "path" in pax:
                name = pax["path"].decode("utf-8", "surrogateescape")
            if "linkpath" in pax:
                linkname = pax["linkpath"].decode("utf-8", "surrogateescape")
            field = ""
            try:
                if "size" in pax:
                    field = "size"
                    size = _pax_int(pax["size"])
                if "uid" in pax:
                    field = "uid"
                    uid = _pax_int(pax["uid"])
                if "gid" in pax:
                    field = "gid"
                    gid = _pax_int(pax["gid"])
                if "mtime" in pax:
                    field = "mtime"
                    mtime = _pax_time(pax["mtime"])
            except ValueError:
                raise InvalidImageError(
                    f"{self._name}: {name!r}: malformed pax {field} {pax[field]!r}"
                ) from None
            for key, value in pax.items():
                if key.startswith("SCHILY.xattr."):
                    xattrs = xattrs or {}
                    xattrs[key[13:]] = value
        kind = TYPE_NAMES.get(typeflag)
        if kind is None:
            raise InvalidImageError(
                f"{self._name}: unsupported tar entry type {typeflag!r} for {name!r}"
            )
        device = kind == "chardev" or kind == "blockdev"
        try:
            devmajor = _octal(f_devmaj) if device else 0
            devminor = _octal(f_devmin) if device else 0
        except _BadNumber as exc:
            raise InvalidImageError(
                f"{self._name}: {name!r}: bad number field device={exc.field!r} in tar header"
            ) from None
        # After every override: the values the entry really has (issue 9, H2: a negative
        # PAX size was checked too early and made the scanner loop forever).
        check_fields(
            self._name,
            name,
            size=size,
            mode=mode,
            uid=uid,
            gid=gid,
            mtime=mtime,
            devmajor=devmajor,
            devminor=devminor,
        )
        problem = path_problem(name)
        if problem is None and linkname:
            problem = path_problem(linkname, what="link target")
        if problem is not None:
            shown = name if len(name) <= 120 else f"{name[:100]}...({len(name)} chars)"
            raise InvalidImageError(f"{self._name}: {shown!r}: {problem}")
        # Only regular files carry data; a size on anything else is ignored, as tar does.
        data_size = size if kind == "file" else 0
        entry = TarEntry(
            normalize_name(name)
            if name[:2] == "./" or name[:1] == "/" or name[-1:] == "/"
            else name,
            kind,
            data_size,
            mode & 0o7777,
            uid,
            gid,
            mtime,
            linkname,
            devmajor,
            devminor,
            u if (u := _OWNERS.get(f_uname)) is not None else _owner(f_uname),
            g if (g := _OWNERS.get(f_gname)) is not None else _owner(f_gname),
            xattrs,
            name,
        )
        self.entries += 1
        self._sink = self._on_entry(entry)
        self._skip, self._pad = data_size, -data_size % BLOCK
        if not data_size:
            self._finish_data()

    def scan_file(self, fd: int, start: int = 0, length: int | None = None) -> int:
        """Scan the tar stored in file descriptor FD at [START, START+LENGTH), seeking over
        file data nobody asked for instead of reading it.

        An uncompressed layer in a `docker save` archive or an OCI layout is such a slice.
        Only headers (and the data of entries whose callback returned a sink) are read, so
        a 2 GB layer of large files costs a few MB of reads. Returns the end offset of the
        tar within the slice. Data integrity is the caller's business: nothing here hashes.
        """
        end = os.fstat(fd).st_size if length is None else start + length
        pread = os.pread
        pos = start
        window = b""
        wstart = 0
        while pos < end and not self._ended:
            off = pos - wstart
            if off < 0 or off + BLOCK > len(window):
                window = pread(fd, min(_WINDOW, end - pos), pos)
                wstart, off = pos, 0
                if len(window) < BLOCK:
                    self._buf = bytearray(window)  # a cut header: close() reports it
                    break
            self.offset = pos - start + BLOCK
            self._header(window[off : off + BLOCK])
            pos += BLOCK
            if self._skip:
                want = self._collect is not None or self._sink is not None
                if want:
                    remaining = self._skip
                    if pos + remaining > end:
                        break
                    while remaining:
                        piece = pread(fd, min(remaining, CHUNK), pos)
                        if not piece:
                            break
                        if self._sink is not None:
                            self._sink(piece)
                        else:
                            assert self._collect is not None
                            self._collect += piece
                        remaining -= len(piece)
                        pos += len(piece)
                    self._skip = remaining
                    if remaining:
                        break
                    self._finish_data()
                else:
                    pos += self._skip
                    self._skip = 0
                if pos > end:
                    self._skip = pos - end
                    break
            if self._pad:
                pos += self._pad
                self._pad = 0
                if pos > end:
                    # Padding cut short at the very end: tar readers tolerate a missing
                    # last partial block only if it is padding; we do too.
                    pos = end
        self.offset = pos - start
        return pos - start


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

    def __init__(self, label: str = "layer") -> None:
        self.total = 0
        self.label = label

    def __call__(self, entry: TarEntry) -> None:
        base = entry.name.rsplit("/", 1)[-1]
        if base.startswith(".wh."):
            # A whiteout costs 0, but only a valid one is a whiteout: `history` refuses
            # `.wh..` exactly as `load` and `run` do (the one rule, in layers.whiteout).
            whiteout_victim(entry.name, where=self.label)
            return None
        if entry.kind == "file":
            self.total += entry.size
        elif entry.kind == "symlink":
            self.total += len(entry.linkname.encode("utf-8", "surrogateescape"))
        return None
