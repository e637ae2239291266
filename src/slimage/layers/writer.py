"""A deterministic layer-tar writer for the builder and the base assembler.

The same input tree must give the same bytes (and so the same diff_id) on every machine
and every day, or layer caching and reproducible builds are impossible. So:

- entries in a fixed order: each directory before its children, siblings sorted by their
  byte names;
- numeric owners only (no uname/gname, which depend on the host's /etc/passwd);
- mtimes clamped to SOURCE_DATE_EPOCH when it is set; whole seconds;
- PAX headers for long names, large ids and xattrs (`SCHILY.xattr.*`), nothing else;
- hardlinks found by inode: the first path in sorted order holds the data, later ones
  link to it.

An overlayfs upper directory can be written as an OCI changeset: a 0/0 character device
becomes `.wh.NAME`, a directory with `trusted.overlay.opaque=y` gets `.wh..wh..opq`.
Output goes to any writable (a file, a pipe); `stream_layer` hands back a readable pipe
that `ImageAssembler.add_layer` can consume while the tree is still being walked.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import tarfile
import threading
from collections.abc import Callable
from typing import Any, BinaryIO

from slimage.errors import InvalidImageError, SlimageError
from slimage.layers.whiteout import OPAQUE
from slimage.layers.whiteout import PREFIX as WHITEOUT_PREFIX

OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"
_SKIP_XATTR_PREFIXES = ("trusted.overlay.", "security.selinux")
CHUNK = 1 << 20


def source_date_epoch() -> int | None:
    value = os.environ.get("SOURCE_DATE_EPOCH")
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidImageError(f"SOURCE_DATE_EPOCH={value!r} is not an integer") from None


def _sort_key(name: str) -> bytes:
    return name.encode("utf-8", "surrogateescape")


def _xattrs(path: str) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return out
    for name in sorted(names):
        if name.startswith(_SKIP_XATTR_PREFIXES):
            continue
        with contextlib.suppress(OSError):
            out[name] = os.getxattr(path, name, follow_symlinks=False)
    return out


class _GoStyleEnd:
    """Passes writes through, but drops the padding tarfile adds to fill a 10 KiB record.

    Go's archive/tar, and so BuildKit and Docker, ends a layer with exactly two zero
    blocks. Ending ours the same way gives an empty layer the very diff_id theirs has."""

    def __init__(self, out: BinaryIO):
        self._out = out
        self.limit: int | None = None
        self.written = 0

    def write(self, data: bytes) -> int:
        size = len(data)
        if self.limit is not None:
            data = data[: max(self.limit - self.written, 0)]
        if data:
            self._out.write(data)
            self.written += len(data)
        return size

    def flush(self) -> None:
        self._out.flush()


class LayerWriter:
    """Writes one layer tar to OUT. Call `add_*` in the order entries should appear (or
    `add_tree`, which orders a directory itself), then `close()`."""

    def __init__(self, out: BinaryIO, *, epoch: int | None = None, use_env_epoch: bool = True):
        self._out = _GoStyleEnd(out)
        # bufsize: the stream hands OUT whole chunks; at its default (one 10 KiB record)
        # it re-slices its buffer once per record, copying each 1 MiB chunk ~50 times.
        self._tf = tarfile.open(  # type: ignore[call-overload]
            fileobj=self._out, mode="w|", format=tarfile.PAX_FORMAT, bufsize=CHUNK
        )
        self._tf.copybufsize = CHUNK
        self.epoch = (
            epoch if epoch is not None else (source_date_epoch() if use_env_epoch else None)
        )
        self._inodes: dict[tuple[int, int], str] = {}
        self._names: set[str] = set()
        self.entries = 0

    # -------------------------------------------------------------- low level
    def _mtime(self, mtime: float | None) -> int:
        m = int(mtime if mtime is not None else (self.epoch or 0))
        if self.epoch is not None and m > self.epoch:
            m = self.epoch
        return max(m, 0)

    def _info(
        self,
        name: str,
        kind: bytes,
        *,
        mode: int,
        uid: int,
        gid: int,
        mtime: float | None,
        size: int = 0,
        linkname: str = "",
        xattrs: dict[str, bytes] | None = None,
    ) -> tarfile.TarInfo:
        name = name.strip("/")
        if not name or name.split("/").count("..") or name.startswith("../"):
            raise InvalidImageError(f"layer writer: refusing entry name {name!r}")
        if name in self._names:
            raise InvalidImageError(f"layer writer: {name!r} added twice")
        self._names.add(name)
        info = tarfile.TarInfo(name)
        info.type = kind
        info.mode = mode & 0o7777
        info.uid, info.gid = uid, gid
        info.uname = info.gname = ""
        info.mtime = self._mtime(mtime)
        info.size = size
        info.linkname = linkname
        if xattrs:
            headers = {
                f"SCHILY.xattr.{k}": v.decode("utf-8", "surrogateescape") for k, v in xattrs.items()
            }
            try:
                for v in xattrs.values():
                    v.decode("utf-8")
            except UnicodeDecodeError:
                # binary values (security.capability) must survive byte for byte
                headers["hdrcharset"] = "BINARY"
            info.pax_headers = headers
        return info

    def _add(self, info: tarfile.TarInfo, data: BinaryIO | None = None) -> None:
        self._tf.addfile(info, data)
        self.entries += 1

    # -------------------------------------------------------------- synthetic entries
    def add_bytes(
        self,
        name: str,
        data: bytes,
        *,
        mode: int = 0o644,
        uid: int = 0,
        gid: int = 0,
        mtime: float | None = None,
        xattrs: dict[str, bytes] | None = None,
    ) -> None:
        info = self._info(
            name,
            tarfile.REGTYPE,
            mode=mode,
            uid=uid,
            gid=gid,
            mtime=mtime,
            size=len(data),
            xattrs=xattrs,
        )
        self._add(info, io.BytesIO(data))

    def add_stream(
        self,
        name: str,
        stream: BinaryIO,
        size: int,
        *,
        mode: int = 0o644,
        uid: int = 0,
        gid: int = 0,
        mtime: float | None = None,
    ) -> None:
        info = self._info(
            name, tarfile.REGTYPE, mode=mode, uid=uid, gid=gid, mtime=mtime, size=size
        )
        self._add(info, stream)

    def add_dir(
        self,
        name: str,
        *,
        mode: int = 0o755,
        uid: int = 0,
        gid: int = 0,
        mtime: float | None = None,
    ) -> None:
        self._add(self._info(name, tarfile.DIRTYPE, mode=mode, uid=uid, gid=gid, mtime=mtime))

    def add_symlink(
        self, name: str, target: str, *, uid: int = 0, gid: int = 0, mtime: float | None = None
    ) -> None:
        self._add(
            self._info(
                name, tarfile.SYMTYPE, mode=0o777, uid=uid, gid=gid, mtime=mtime, linkname=target
            )
        )

    def add_hardlink(self, name: str, target: str, *, mtime: float | None = None) -> None:
        self._add(
            self._info(
                name,
                tarfile.LNKTYPE,
                mode=0o644,
                uid=0,
                gid=0,
                mtime=mtime,
                linkname=target.strip("/"),
            )
        )

    def add_whiteout(self, name: str, *, mtime: float | None = None) -> None:
        """Delete NAME (from lower layers) when this layer is applied."""
        head, _, base = name.strip("/").rpartition("/")
        wh = f"{head}/{WHITEOUT_PREFIX}{base}" if head else f"{WHITEOUT_PREFIX}{base}"
        self._add(self._info(wh, tarfile.REGTYPE, mode=0o600, uid=0, gid=0, mtime=mtime))

    def add_opaque(
        self,
        directory: str,
        *,
        mode: int = 0o600,
        uid: int = 0,
        gid: int = 0,
        mtime: float | None = None,
    ) -> None:
        """Hide everything lower layers had in DIRECTORY."""
        name = f"{directory.strip('/')}/{OPAQUE}" if directory.strip("/") else OPAQUE
        self._add(self._info(name, tarfile.REGTYPE, mode=mode, uid=uid, gid=gid, mtime=mtime))

    # -------------------------------------------------------------- trees
    def add_path(
        self, path: str | os.PathLike[str], name: str, *, overlay_upper: bool = False
    ) -> None:
        """One filesystem object (not its children) as entry NAME."""
        p = os.fspath(path)
        st = os.lstat(p)
        mode = st.st_mode
        common: dict[str, Any] = {"uid": st.st_uid, "gid": st.st_gid, "mtime": st.st_mtime}
        if stat.S_ISDIR(mode):
            xattrs = _xattrs(p)
            self._add(
                self._info(name, tarfile.DIRTYPE, mode=stat.S_IMODE(mode), xattrs=xattrs, **common)
            )
            if overlay_upper:
                with contextlib.suppress(OSError):
                    if os.getxattr(p, OVERLAY_OPAQUE_XATTR, follow_symlinks=False) == b"y":
                        self.add_opaque(
                            name,
                            mode=stat.S_IMODE(mode),
                            uid=st.st_uid,
                            gid=st.st_gid,
                            mtime=st.st_mtime,
                        )
                with contextlib.suppress(OSError):
                    os.getxattr(p, "trusted.overlay.redirect", follow_symlinks=False)
                    raise SlimageError(f"{p}: overlay redirect_dir is not supported in a layer")
        elif stat.S_ISREG(mode):
            if st.st_nlink > 1:
                key = (st.st_dev, st.st_ino)
                first = self._inodes.get(key)
                if first is not None:
                    self.add_hardlink(name, first, mtime=st.st_mtime)
                    return
                self._inodes[key] = name.strip("/")
            xattrs = _xattrs(p)
            with open(p, "rb") as fh:
                info = self._info(
                    name,
                    tarfile.REGTYPE,
                    mode=stat.S_IMODE(mode),
                    size=st.st_size,
                    xattrs=xattrs,
                    **common,
                )
                self._add(info, fh)
        elif stat.S_ISLNK(mode):
            self._add(
                self._info(
                    name,
                    tarfile.SYMTYPE,
                    mode=0o777,
                    linkname=os.readlink(p),
                    xattrs=_xattrs(p),
                    **common,
                )
            )
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            if overlay_upper and stat.S_ISCHR(mode) and st.st_rdev == 0:
                head, _, base = name.strip("/").rpartition("/")
                wh = f"{head}/{WHITEOUT_PREFIX}{base}" if head else f"{WHITEOUT_PREFIX}{base}"
                self._add(self._info(wh, tarfile.REGTYPE, mode=0o600, **common))
                return
            kind = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
            info = self._info(name, kind, mode=stat.S_IMODE(mode), **common)
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            self._add(info)
        elif stat.S_ISFIFO(mode):
            self._add(self._info(name, tarfile.FIFOTYPE, mode=stat.S_IMODE(mode), **common))
        # sockets and doors cannot be archived; tar skips them too

    def add_tree(
        self,
        root: str | os.PathLike[str],
        *,
        prefix: str = "",
        overlay_upper: bool = False,
        include_root: bool = False,
        filter: Callable[[str], bool] | None = None,
    ) -> None:
        """Every object under ROOT, as PREFIX/relative-path, in deterministic order.
        FILTER(relpath) -> False skips a path (and, for a directory, its subtree)."""
        base = os.fspath(root)
        prefix = prefix.strip("/")
        if include_root and prefix:
            self.add_path(base, prefix, overlay_upper=overlay_upper)

        def walk(directory: str, rel: str) -> None:
            with os.scandir(directory) as it:
                names = sorted((e.name for e in it), key=_sort_key)
            for n in names:
                child_rel = f"{rel}/{n}" if rel else n
                if filter is not None and not filter(child_rel):
                    continue
                full = os.path.join(directory, n)
                name = f"{prefix}/{child_rel}" if prefix else child_rel
                self.add_path(full, name, overlay_upper=overlay_upper)
                if stat.S_ISDIR(os.lstat(full).st_mode):
                    walk(full, child_rel)

        walk(base, "")

    def close(self) -> None:
        if not self._tf.closed:
            self._out.limit = self._tf.offset + 2 * tarfile.BLOCKSIZE
            self._tf.close()

    def __enter__(self) -> LayerWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_tree(
    root: str | os.PathLike[str],
    out: BinaryIO,
    *,
    overlay_upper: bool = False,
    prefix: str = "",
    epoch: int | None = None,
) -> int:
    """Write ROOT as a layer tar to OUT; returns the number of entries."""
    with LayerWriter(out, epoch=epoch) as w:
        w.add_tree(root, prefix=prefix, overlay_upper=overlay_upper)
        return w.entries


class _PipeReader(io.RawIOBase):
    """The read end of a pipe fed by a writer thread; the thread's error is raised here."""

    def __init__(self, fd: int, thread: threading.Thread, errors: list[BaseException]):
        self._fh = os.fdopen(fd, "rb", buffering=0)
        self._thread = thread
        self._errors = errors

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        n = self._fh.readinto(buf)
        if not n:
            self._thread.join()
            if self._errors:
                raise self._errors[0]
        return n or 0

    def close(self) -> None:
        if not self.closed:
            self._fh.close()
            self._thread.join()
        super().close()


def stream_layer(fill: Callable[[LayerWriter], None], *, epoch: int | None = None) -> BinaryIO:
    """A readable stream of the tar that FILL(writer) produces, made on a thread while the
    caller reads (e.g. `ImageAssembler.add_layer(stream_layer(...), history)`)."""
    rfd, wfd = os.pipe()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with os.fdopen(wfd, "wb") as out:
                with LayerWriter(out, epoch=epoch) as w:
                    fill(w)
        except BrokenPipeError:
            pass
        except BaseException as exc:  # handed to the reader
            errors.append(exc)

    t = threading.Thread(target=run, daemon=True, name="layer-writer")
    t.start()
    return io.BufferedReader(_PipeReader(rfd, t, errors), CHUNK)


def stream_tree(
    root: str | os.PathLike[str],
    *,
    overlay_upper: bool = False,
    prefix: str = "",
    epoch: int | None = None,
) -> BinaryIO:
    """`write_tree` as a readable stream (see `stream_layer`)."""
    return stream_layer(
        lambda w: w.add_tree(root, prefix=prefix, overlay_upper=overlay_upper), epoch=epoch
    )
