"""Test helpers: build layer tars, image archives (legacy and Docker 25 shape) and OCI
layouts from the specs, and real images with the real Docker engine.

The Docker engine here (20.10) writes only the legacy `docker save` layout, so the
Docker 25+ layout (OCI layout inside the tar) is made by `to_docker25_archive` from a real
legacy archive, following the image-spec and Docker 25's own file set.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import zstandard

from tests.support import testbed

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_TYPES = {
    "none": "application/vnd.oci.image.layer.v1.tar",
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------- layer tars


@dataclass
class E:
    """One tar entry to write: kind is file, dir, symlink, hardlink, chardev, blockdev, fifo."""

    name: str
    kind: str = "file"
    data: bytes = b""
    linkname: str = ""
    mode: int | None = None
    uid: int = 0
    gid: int = 0
    mtime: int = 1_700_000_000
    major: int = 0
    minor: int = 0
    xattrs: dict[str, str] = field(default_factory=dict)


_TYPES = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "chardev": tarfile.CHRTYPE,
    "blockdev": tarfile.BLKTYPE,
    "fifo": tarfile.FIFOTYPE,
}


def layer_tar(entries: list[E]) -> bytes:
    """A layer tar with exactly these entries, in this order (no sanitising: tests use
    this to build hostile layers too)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            info = tarfile.TarInfo(e.name)
            info.type = _TYPES[e.kind]
            info.mode = e.mode if e.mode is not None else (0o755 if e.kind == "dir" else 0o644)
            info.uid, info.gid, info.mtime = e.uid, e.gid, e.mtime
            info.linkname = e.linkname
            info.devmajor, info.devminor = e.major, e.minor
            if e.xattrs:
                info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in e.xattrs.items()}
            if e.kind == "file":
                info.size = len(e.data)
                tf.addfile(info, io.BytesIO(e.data))
            else:
                tf.addfile(info)
    return buf.getvalue()


def compress(data: bytes, kind: str) -> bytes:
    if kind == "gzip":
        return gzip.compress(data, 1, mtime=0)
    if kind == "zstd":
        return zstandard.ZstdCompressor(level=3).compress(data)
    return data


def config_for(diff_ids: list[str], history: list[dict] | None = None) -> bytes:
    cfg = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2026-01-02T03:04:05Z",
        "config": {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history
        or [
            {"created": "2026-01-02T03:04:05Z", "created_by": f"step {i}"}
            for i in range(len(diff_ids))
        ],
    }
    return json.dumps(cfg).encode()


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tf.addfile(info, io.BytesIO(data))


def legacy_archive(
    path: Path,
    layers: list[bytes],
    *,
    tag: str = "test/img:1",
    compressions: list[str] | None = None,
    config: bytes | None = None,
) -> Path:
    """A docker-save (legacy) archive of uncompressed layer tars LAYERS."""
    diff_ids = [sha(layer) for layer in layers]
    cfg = config if config is not None else config_for(diff_ids)
    cfg_name = sha(cfg).split(":")[1] + ".json"
    comps = compressions or ["none"] * len(layers)
    names = []
    with tarfile.open(path, "w") as tf:
        for i, (layer, comp) in enumerate(zip(layers, comps, strict=True)):
            d = hashlib.sha256(f"{i}".encode() + layer).hexdigest()
            _add(tf, f"{d}/VERSION", b"1.0")
            _add(tf, f"{d}/json", json.dumps({"id": d}).encode())
            _add(tf, f"{d}/layer.tar", compress(layer, comp))
            names.append(f"{d}/layer.tar")
        _add(tf, cfg_name, cfg)
        _add(
            tf,
            "manifest.json",
            json.dumps(
                [{"Config": cfg_name, "RepoTags": [tag] if tag else None, "Layers": names}]
            ).encode(),
        )
    return path


# ---------------------------------------------------------------------------- OCI shapes


def oci_blobs_from_legacy(archive: Path, compressions: list[str]):  # type: ignore[no-untyped-def]
    """(config bytes, [(layer blob, media type)], tags) from a legacy archive."""
    with tarfile.open(archive) as tf:
        manifest = json.loads(tf.extractfile("manifest.json").read())[0]  # type: ignore[union-attr]
        config = tf.extractfile(manifest["Config"]).read()  # type: ignore[union-attr]
        layers = []
        for i, name in enumerate(manifest["Layers"]):
            raw = tf.extractfile(name).read()  # type: ignore[union-attr]
            comp = compressions[i % len(compressions)]
            layers.append((compress(raw, comp), LAYER_TYPES[comp]))
    return config, layers, manifest.get("RepoTags") or []


def to_docker25_archive(
    legacy: Path, out: Path, compressions: tuple[str, ...] = ("gzip", "zstd", "none")
) -> Path:
    """Rewrite a legacy `docker save` archive in Docker 25's shape: oci-layout, index.json
    (with io.containerd.image.name / ref.name annotations), blobs/sha256/*, manifest.json
    whose Layers point into blobs, and `<id>/layer.tar` symlinks for old readers."""
    config, layers, tags = oci_blobs_from_legacy(legacy, list(compressions))
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": mt, "digest": sha(b), "size": len(b)} for b, mt in layers],
    }
    mraw = json.dumps(manifest).encode()
    tag = tags[0] if tags else None
    annotations = {}
    if tag:
        repo, _, t = tag.rpartition(":")
        annotations = {
            "io.containerd.image.name": f"docker.io/{repo}:{t}",
            "org.opencontainers.image.ref.name": t,
        }
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": sha(mraw),
                "size": len(mraw),
                "annotations": annotations,
            }
        ],
    }
    with tarfile.open(out, "w") as tf:
        written = set()
        for blob in [config, mraw] + [b for b, _ in layers]:
            h = sha(blob).split(":")[1]
            if h not in written:
                _add(tf, f"blobs/sha256/{h}", blob)
                written.add(h)
        for b, _ in layers:
            h = sha(b).split(":")[1]
            info = tarfile.TarInfo(f"{h[:16]}legacy/layer.tar")
            info.type = tarfile.SYMTYPE
            info.linkname = f"../blobs/sha256/{h}"
            tf.addfile(info)
        _add(tf, "index.json", json.dumps(index).encode())
        _add(
            tf,
            "manifest.json",
            json.dumps(
                [
                    {
                        "Config": f"blobs/sha256/{sha(config).split(':')[1]}",
                        "RepoTags": tags,
                        "Layers": [f"blobs/sha256/{sha(b).split(':')[1]}" for b, _ in layers],
                    }
                ]
            ).encode(),
        )
        _add(tf, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
    return out


def oci_layout_dir(
    root: Path,
    layers: list[bytes],
    *,
    ref: str = "v1",
    layer_media_type: str | None = None,
    drop_blob: int | None = None,
) -> Path:
    """An OCI layout directory holding one image of uncompressed LAYERS."""
    diff_ids = [sha(layer) for layer in layers]
    config = config_for(diff_ids)
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    descs = []
    for i, layer in enumerate(layers):
        if i != drop_blob:
            (blobs / sha(layer).split(":")[1]).write_bytes(layer)
        descs.append(
            {
                "mediaType": layer_media_type or LAYER_TYPES["none"],
                "digest": sha(layer),
                "size": len(layer),
            }
        )
    (blobs / sha(config).split(":")[1]).write_bytes(config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha(config), "size": len(config)},
            "layers": descs,
        }
    ).encode()
    (blobs / sha(manifest).split(":")[1]).write_bytes(manifest)
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": sha(manifest),
                "size": len(manifest),
                "annotations": {"org.opencontainers.image.ref.name": ref},
            }
        ],
    }
    (root / "index.json").write_text(json.dumps(index))
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    return root


# ---------------------------------------------------------------------------- real images

TRICKY_DOCKERFILE = """\
FROM slimage-test/debian:bookworm
RUN mkdir -p /data/keep /data/opq /data/dirToFile \\
 && echo a > /data/keep/a && echo b > /data/opq/b && echo c > /data/opq/c \\
 && ln -s /data/keep/a /data/sym && ln /data/keep/a /data/hard \\
 && echo x > /data/fileToDir && echo y > /data/dirToFile/y \\
 && head -c 300000 /dev/zero > /data/big && ln -s ../usr/bin /data/relsym
RUN rm /etc/issue /data/keep/a && rm -rf /data/opq && mkdir /data/opq && echo n > /data/opq/new \\
 && rm /data/fileToDir && mkdir /data/fileToDir && echo z > /data/fileToDir/z \\
 && rm -rf /data/dirToFile && echo f > /data/dirToFile \\
 && ln -s /usr/share/zoneinfo/Europe/Zürich /data/ünïcode-link && chmod 4755 /data/big
ENV TRICKY=1
CMD ["/bin/true"]
"""


def ensure_tricky(tag: str, *, buildkit: bool) -> str:
    """A small image with symlinks, hardlinks, whiteouts, an opaque dir and dir<->file
    replacements, built by the real engine (BuildKit or the legacy builder)."""
    if testbed.image_exists(tag):
        return tag
    testbed.ensure_debian_base()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "Dockerfile").write_text(TRICKY_DOCKERFILE)
        testbed.docker(
            "build",
            "--network",
            "host",
            "-q",
            "-t",
            tag,
            tmp,
            buildkit="1" if buildkit else "0",
            stdout=subprocess.DEVNULL,
        )
    return tag


def docker_history_rows(ref: str, human: bool = True) -> list[dict]:
    res = testbed.docker(
        "history",
        f"--human={'true' if human else 'false'}",
        "--format",
        "{{json .}}",
        ref,
        capture_output=True,
        text=True,
    )
    return [json.loads(line) for line in res.stdout.splitlines() if line.strip()]
