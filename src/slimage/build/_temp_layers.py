"""Layer tar writing and overlay-mode extraction for the builder.

# TEMP until slimage.layers.writer / slimage.layers.extract land: the minimal versions the
builder needs (deterministic tar of an overlay upper dir; extraction of a layer into an
overlay lower dir with whiteouts as char 0/0 and opaque dirs as an xattr).
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from slimage.errors import UnsafeArchiveError

OPAQUE_XATTR = "trusted.overlay.opaque"
WH_PREFIX = ".wh."
WH_OPAQUE = ".wh..wh..opq"
BLOCK = 512
END = b"\0" * 1024


def _octal(value: int, width: int) -> bytes:
    return (b"%0*o" % (width - 1, value)) + b"\0"


def _pax_record(key: str, value: bytes) -> bytes:
    body = f" {key}=".encode() + value + b"\n"
    n = len(body) + 1
    while len(str(n)) + len(body) != n:
        n = len(str(n)) + len(body)
    return str(n).encode() + body


def _ustar(
    name: bytes,
    typeflag: bytes,
    mode: int,
    uid: int,
    gid: int,
    size: int,
    mtime: int,
    linkname: bytes = b"",
    devmajor: int = 0,
    devminor: int = 0,
    prefix: bytes = b"",
) -> bytes:
    hdr = bytearray(BLOCK)
    hdr[0:100] = name[:100].ljust(100, b"\0")
    hdr[100:108] = _octal(mode & 0o7777, 8)
    hdr[108:116] = _octal(uid, 8)
    hdr[116:124] = _octal(gid, 8)
    hdr[124:136] = _octal(size, 12)
    hdr[136:148] = _octal(mtime, 12)
    hdr[148:156] = b" " * 8
    hdr[156:157] = typeflag
    hdr[157:257] = linkname[:100].ljust(100, b"\0")
    hdr[257:263] = b"ustar\0"
    hdr[263:265] = b"00"
    hdr[329:337] = _octal(devmajor, 8)
    hdr[337:345] = _octal(devminor, 8)
    hdr[345:500] = prefix[:155].ljust(155, b"\0")
    chk = sum(hdr)
    hdr[148:156] = b"%06o\0 " % chk
    return bytes(hdr)


def tar_header(
    name: str,
    typeflag: bytes,
    *,
    mode: int,
    uid: int = 0,
    gid: int = 0,
    size: int = 0,
    mtime: int = 0,
    linkname: str = "",
    devmajor: int = 0,
    devminor: int = 0,
    xattrs: dict[str, bytes] | None = None,
) -> bytes:
    """One entry's header block(s): ustar, with a PAX header only when ustar can't say it."""
    bname = os.fsencode(name)
    blink = os.fsencode(linkname)
    pax: list[bytes] = []
    prefix = b""
    short = bname
    if len(bname) > 100:
        cut = bname.rfind(b"/", 0, 156)
        if 0 < cut and len(bname) - cut - 1 <= 100 and cut <= 155:
            prefix, short = bname[:cut], bname[cut + 1 :]
        else:
            pax.append(_pax_record("path", bname))
    if len(blink) > 100:
        pax.append(_pax_record("linkpath", blink))
    big = 8**11
    if size >= big:
        pax.append(_pax_record("size", str(size).encode()))
    for key, num in (("uid", uid), ("gid", gid)):
        if num >= 8**7:
            pax.append(_pax_record(key, str(num).encode()))
    for k in sorted(xattrs or {}):
        pax.append(_pax_record("SCHILY.xattr." + k, (xattrs or {})[k]))
    out = b""
    if pax:
        data = b"".join(pax)
        out += _ustar(b"PaxHeaders/" + short[-80:], b"x", 0o644, 0, 0, len(data), mtime)
        out += data + b"\0" * (-len(data) % BLOCK)
    out += _ustar(
        short,
        typeflag,
        mode,
        uid if uid < 8**7 else 0,
        gid if gid < 8**7 else 0,
        size if size < big else 0,
        mtime,
        blink,
        devmajor,
        devminor,
        prefix,
    )
    return out


def _xattrs(path: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return out
    for n in names:
        if n.startswith("trusted.overlay.") or n.startswith("system.posix_acl"):
            continue
        try:
            out[n] = os.getxattr(path, n, follow_symlinks=False)
        except OSError:
            pass
    return out


def _is_opaque(path: str) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def write_upper_tar(
    upper: str | Path,
    write: Callable[[bytes], object],
    *,
    clamp_mtime: int | None = None,
) -> None:
    """Turn an overlay upper dir into a layer tar, written through WRITE.

    Entries are in lexical order per directory, owners numeric, mtimes clamped to
    SOURCE_DATE_EPOCH when given; whiteouts (char 0/0) become `.wh.` files and opaque
    dirs get `.wh..wh..opq`. An empty upper gives the 1024-byte empty tar BuildKit makes.
    """
    root = os.fspath(upper)
    links: dict[tuple[int, int], str] = {}

    def mt(st: os.stat_result) -> int:
        m = int(st.st_mtime)
        return min(m, clamp_mtime) if clamp_mtime is not None else m

    def walk(rel: str) -> None:
        full = os.path.join(root, rel) if rel else root
        with os.scandir(full) as it:
            names = sorted(e.name for e in it)
        for name in names:
            path = os.path.join(full, name)
            arc = f"{rel}/{name}" if rel else name
            st = os.lstat(path)
            m = st.st_mode
            if stat.S_ISCHR(m) and st.st_rdev == 0:
                write(
                    tar_header(
                        f"{rel}/{WH_PREFIX}{name}" if rel else WH_PREFIX + name,
                        b"0",
                        mode=0o644,
                        mtime=mt(st),
                    )
                )
                continue
            x = _xattrs(path)
            if stat.S_ISDIR(m):
                write(tar_header(arc + "/", b"5", mode=m, uid=st.st_uid, gid=st.st_gid, mtime=mt(st), xattrs=x))
                if _is_opaque(path):
                    write(tar_header(f"{arc}/{WH_OPAQUE}", b"0", mode=0o644, mtime=mt(st)))
                walk(arc)
            elif stat.S_ISREG(m):
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and key in links:
                    write(tar_header(arc, b"1", mode=m, uid=st.st_uid, gid=st.st_gid, mtime=mt(st), linkname=links[key], xattrs=x))
                    continue
                if st.st_nlink > 1:
                    links[key] = arc
                write(tar_header(arc, b"0", mode=m, uid=st.st_uid, gid=st.st_gid, size=st.st_size, mtime=mt(st), xattrs=x))
                left = st.st_size
                with open(path, "rb") as fh:
                    while left > 0:
                        chunk = fh.read(min(left, 1 << 20))
                        if not chunk:
                            raise OSError(f"{path} shrank while being archived")
                        write(chunk)
                        left -= len(chunk)
                pad = -st.st_size % BLOCK
                if pad:
                    write(b"\0" * pad)
            elif stat.S_ISLNK(m):
                write(tar_header(arc, b"2", mode=m, uid=st.st_uid, gid=st.st_gid, mtime=mt(st), linkname=os.readlink(path), xattrs=x))
            elif stat.S_ISCHR(m) or stat.S_ISBLK(m):
                write(
                    tar_header(
                        arc,
                        b"3" if stat.S_ISCHR(m) else b"4",
                        mode=m,
                        uid=st.st_uid,
                        gid=st.st_gid,
                        mtime=mt(st),
                        devmajor=os.major(st.st_rdev),
                        devminor=os.minor(st.st_rdev),
                    )
                )
            elif stat.S_ISFIFO(m):
                write(tar_header(arc, b"6", mode=m, uid=st.st_uid, gid=st.st_gid, mtime=mt(st)))
            # sockets are not archived (as Docker does)

    walk("")
    write(END)


def extract_overlay(stream: BinaryIO, dest: str | Path) -> None:
    """Unpack a layer tar into DEST as an overlay lower dir (whiteouts converted)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            "tar",
            "-x",
            "-C",
            str(dest),
            "--numeric-owner",
            "--same-owner",
            "-p",
            "--xattrs",
            "--xattrs-include=*",
            "--no-overwrite-dir",
            "-f",
            "-",
        ],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None
    try:
        while chunk := stream.read(1 << 20):
            proc.stdin.write(chunk)
    except BrokenPipeError:
        pass
    finally:
        proc.stdin.close()
    err = proc.stderr.read() if proc.stderr else b""
    if proc.wait() != 0:
        raise UnsafeArchiveError(f"layer extraction failed: {err.decode(errors='replace').strip()[:300]}")
    for dirpath, dirnames, filenames in os.walk(dest):
        for name in filenames:
            if not name.startswith(WH_PREFIX):
                continue
            path = os.path.join(dirpath, name)
            os.unlink(path)
            if name == WH_OPAQUE:
                os.setxattr(dirpath, OPAQUE_XATTR, b"y")
            else:
                target = os.path.join(dirpath, name[len(WH_PREFIX) :])
                if os.path.lexists(target):
                    continue
                os.mknod(target, 0o600 | stat.S_IFCHR, os.makedev(0, 0))
