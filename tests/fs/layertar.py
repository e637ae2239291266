"""Build small changeset tars in memory, the way the real writers lay them out."""

from __future__ import annotations

import io
import tarfile


class LayerTar:
    def __init__(self, fmt: int = tarfile.PAX_FORMAT):
        self.buf = io.BytesIO()
        self.tf = tarfile.open(fileobj=self.buf, mode="w", format=fmt)

    def dir(self, name: str, mode: int = 0o755, uid: int = 0) -> LayerTar:
        info = tarfile.TarInfo(name)
        info.type = tarfile.DIRTYPE
        info.mode = mode
        info.uid = info.gid = uid
        self.tf.addfile(info)
        return self

    def file(self, name: str, data: bytes | int = b"", mode: int = 0o644, uid: int = 0) -> LayerTar:
        if isinstance(data, int):
            data = bytes([len(name) % 251]) * data
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = mode
        info.uid = info.gid = uid
        self.tf.addfile(info, io.BytesIO(data))
        return self

    def symlink(self, name: str, target: str) -> LayerTar:
        info = tarfile.TarInfo(name)
        info.type = tarfile.SYMTYPE
        info.linkname = target
        self.tf.addfile(info)
        return self

    def hardlink(self, name: str, target: str) -> LayerTar:
        info = tarfile.TarInfo(name)
        info.type = tarfile.LNKTYPE
        info.linkname = target
        self.tf.addfile(info)
        return self

    def whiteout(self, path: str) -> LayerTar:
        parent, _, base = path.rpartition("/")
        return self.file(f"{parent}/.wh.{base}" if parent else f".wh.{base}")

    def opaque(self, dirpath: str) -> LayerTar:
        return self.file(f"{dirpath}/.wh..wh..opq")

    def bytes(self) -> bytes:
        self.tf.close()
        return self.buf.getvalue()
