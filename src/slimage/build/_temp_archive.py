"""docker-archive reading and docker/OCI writing for the builder's outputs and tests.

# TEMP until slimage.transports (docker_archive, oci_layout, docker_engine) lands.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from pathlib import Path
from typing import BinaryIO

from slimage.image import Image, Layer
from slimage.oci import mediatypes as mt
from slimage.oci.digest import sha256_digest
from slimage.oci.model import Descriptor, ImageConfig, Manifest
from slimage.store.images import ingest
from slimage.store.store import Store


def read_docker_archive(path: str | Path) -> Image:
    tf = tarfile.open(path)
    members = {m.name: m for m in tf.getmembers()}
    manifest = json.load(tf.extractfile(members["manifest.json"]))[0]  # type: ignore[arg-type]
    raw = tf.extractfile(members[manifest["Config"]]).read()  # type: ignore[union-attr]
    config = ImageConfig.parse(raw)
    layers = []
    descs = []
    for lp, diff_id in zip(manifest["Layers"], config.diff_ids, strict=True):
        m = members[lp]

        def opener(m: tarfile.TarInfo = m) -> BinaryIO:
            return tarfile.open(path).extractfile(m)  # type: ignore[return-value]

        with opener() as fh:
            head = fh.read(4)
        media = mt.DOCKER_LAYER_GZIP if head[:2] == b"\x1f\x8b" else mt.DOCKER_LAYER
        d = Descriptor(media, diff_id if media == mt.DOCKER_LAYER else "sha256:" + "0" * 64, m.size)
        descs.append(d)
        layers.append(Layer(d, diff_id, open_blob=opener))
    man = Manifest.build(Descriptor(mt.DOCKER_CONFIG, config.digest, len(raw)), descs, docker=True)
    return Image(man, config, layers, source=f"archive {path}", repo_tags=manifest.get("RepoTags") or [])


def load_docker_archive(store: Store, path: str | Path, tags: list[str] | None = None) -> str:
    img = read_docker_archive(path)
    res = ingest(store, img, tags=tags if tags is not None else img.repo_tags)
    return res.image_id


def _image_parts(store: Store, manifest_digest: str) -> tuple[Manifest, bytes, list[tuple[Descriptor, str]]]:
    man = store.manifest_for(manifest_digest)
    raw = store.read_blob(man.config.digest)
    cfg = ImageConfig.parse(raw)
    return man, raw, list(zip(man.layers, cfg.diff_ids, strict=True))


def write_docker_archive(store: Store, manifest_digest: str, out: BinaryIO, tags: list[str]) -> None:
    """`docker save` format: config json, one gzip'd layer file per layer, manifest.json."""
    man, raw, layers = _image_parts(store, manifest_digest)
    cfg_digest = sha256_digest(raw)
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tf:
        def add(name: str, data_stream: BinaryIO, size: int) -> None:
            ti = tarfile.TarInfo(name)
            ti.size = size
            ti.mode = 0o644
            tf.addfile(ti, data_stream)

        add(cfg_digest[7:] + ".json", io.BytesIO(raw), len(raw))
        paths = []
        for desc, _diff in layers:
            p = f"{desc.digest[7:]}/layer.tar"
            paths.append(p)
            with store.open_blob(desc.digest) as fh:
                add(p, fh, desc.size)  # type: ignore[arg-type]
        mj = json.dumps([{"Config": cfg_digest[7:] + ".json", "RepoTags": tags, "Layers": paths}]).encode()
        add("manifest.json", io.BytesIO(mj), len(mj))


def write_oci_layout(store: Store, manifest_digest: str, dest: Path, tags: list[str]) -> None:
    man, raw, layers = _image_parts(store, manifest_digest)
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (dest / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))

    def put(digest: str, src: BinaryIO) -> None:
        target = blobs / digest[7:]
        if target.exists():
            return
        tmp = target.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            while chunk := src.read(1 << 20):
                fh.write(chunk)
        os.replace(tmp, target)

    cfg_digest = sha256_digest(raw)
    put(cfg_digest, io.BytesIO(raw))
    descs = []
    for desc, _ in layers:
        with store.open_blob(desc.digest) as fh:
            put(desc.digest, fh)  # type: ignore[arg-type]
        comp = mt.LAYER_COMPRESSION.get(desc.media_type, "gzip")
        descs.append(Descriptor(mt.layer_media_type(comp), desc.digest, desc.size))
    oman = Manifest.build(Descriptor(mt.OCI_CONFIG, cfg_digest, len(raw)), descs)
    mdig = sha256_digest(oman.raw)
    put(mdig, io.BytesIO(oman.raw))
    entry: dict = {"mediaType": mt.OCI_MANIFEST, "digest": mdig, "size": len(oman.raw)}
    if tags:
        entry["annotations"] = {"org.opencontainers.image.ref.name": tags[0].rsplit(":", 1)[-1] if ":" in tags[0].split("/")[-1] else "latest"}
    (dest / "index.json").write_text(json.dumps({"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [entry]}))
    del man


def docker_load(store: Store, manifest_digest: str, tags: list[str], docker: str = "/usr/bin/docker") -> None:
    proc = subprocess.Popen([docker, "load", "-q"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None
    try:
        write_docker_archive(store, manifest_digest, proc.stdin, tags)  # type: ignore[arg-type]
    finally:
        proc.stdin.close()
    out, err = proc.communicate()
    if proc.returncode != 0:
        from slimage.errors import EngineError

        raise EngineError(f"docker load failed: {err.decode(errors='replace').strip()}")
