"""Fuzz the image-metadata readers (issue 9): the bounded JSON reader, the model parsers
(manifest, index, config) and the docker-archive / OCI-layout readers.

Property, for any input: only a `SlimageError` escapes, and a document that is accepted
can be used: every accessor a command calls (history, layer_history, config, created,
platform, diff_ids, Docker's inspect view, listing times) works on it without error.

Inputs: arbitrary JSON values, valid documents with one field replaced by an arbitrary
value, raw bytes, and valid archives / layouts with bytes flipped, cut or spliced.
Budget: well under 30 s on this machine.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slimage.errors import SlimageError
from slimage.imageops import docker_config_view
from slimage.oci import mediatypes as mt
from slimage.oci.model import ImageConfig, Index, Manifest, parse_manifest_or_index
from slimage.oci.safejson import load_json
from slimage.transports.docker_archive import _parse_manifest_json, read_archive
from slimage.transports.oci_layout import open_layout
from slimage.transports.tarindex import TarIndex
from slimage.units import parse_rfc3339
from tests.fuzz import budget
from tests.transports.imagekit import E, compress, layer_tar

SETTINGS = settings(
    max_examples=budget.examples(120),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=budget.DERANDOMIZE,
    database=budget.DATABASE,
)

LAYER = layer_tar([E("etc", "dir"), E("etc/a", data=b"hello")])
D = "sha256:" + hashlib.sha256(LAYER).hexdigest()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


CONFIG = {
    "architecture": "amd64",
    "os": "linux",
    "created": "2026-01-02T03:04:05Z",
    "config": {
        "Env": ["PATH=/bin"],
        "Cmd": ["/bin/sh"],
        "Labels": {"a": "b"},
        "User": "1",
        "ExposedPorts": {"80/tcp": {}},
    },
    "rootfs": {"type": "layers", "diff_ids": [D]},
    "history": [{"created": "2026-01-02T03:04:05Z", "created_by": "x", "empty_layer": False}],
}
GZ = compress(LAYER, "gzip")
CONFIG_RAW = json.dumps(CONFIG).encode()
MANIFEST = {
    "schemaVersion": 2,
    "mediaType": mt.OCI_MANIFEST,
    "config": {"mediaType": mt.OCI_CONFIG, "digest": sha(CONFIG_RAW), "size": len(CONFIG_RAW)},
    "layers": [{"mediaType": mt.OCI_LAYER_GZIP, "digest": sha(GZ), "size": len(GZ)}],
    "annotations": {"k": "v"},
}
MANIFEST_RAW = json.dumps(MANIFEST).encode()
INDEX = {
    "schemaVersion": 2,
    "mediaType": mt.OCI_INDEX,
    "manifests": [
        {
            "mediaType": mt.OCI_MANIFEST,
            "digest": sha(MANIFEST_RAW),
            "size": len(MANIFEST_RAW),
            "annotations": {"org.opencontainers.image.ref.name": "slimage-test/f:1"},
            "platform": {"os": "linux", "architecture": "amd64"},
        }
    ],
}

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**25), max_value=10**25)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*prefix, i))
    return out


def _replace(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    doc = json.loads(json.dumps(doc))
    cur = doc
    for p in path[:-1]:
        cur = cur[p]
    cur[path[-1]] = value
    return doc


def _use_config(cfg: ImageConfig) -> None:
    """What the commands do with an accepted config; none of it may fail."""
    for entry, _ in cfg.layer_history():
        parse_rfc3339(entry.created)
        entry.created_by.replace("\t", " ")
        entry.to_dict()
    parse_rfc3339(cfg.created)
    str(cfg.platform)
    runtime = cfg.config
    docker_config_view(runtime)
    for key in ("Env", "Cmd", "Entrypoint", "Shell", "OnBuild"):
        for item in runtime.get(key) or []:
            item.startswith("PATH=")
    for k, v in (runtime.get("Labels") or {}).items():
        k.encode()
        v.encode()
    json.dumps(cfg.data, ensure_ascii=False).encode()
    assert all(isinstance(d, str) for d in cfg.diff_ids)


def _only_slimage_errors(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except SlimageError as exc:
        assert "\n" not in str(exc), str(exc)
        return None


@SETTINGS
@given(st.binary(max_size=300))
def test_load_json_raw_bytes(data: bytes) -> None:
    _only_slimage_errors(load_json, data, "fuzz")


@SETTINGS
@given(
    st.text(alphabet='[]{}":,0123456789.eE+-\\untrfalsNIy ', max_size=200),
)
def test_load_json_json_alphabet(text: str) -> None:
    _only_slimage_errors(load_json, text.encode(), "fuzz")


@SETTINGS
@given(st.data())
def test_config_with_one_field_replaced(data: st.DataObject) -> None:
    path = data.draw(st.sampled_from(_paths(CONFIG)))
    value = data.draw(json_values)
    raw = json.dumps(_replace(CONFIG, path, value)).encode()
    cfg = _only_slimage_errors(ImageConfig.parse, raw)
    if cfg is not None:
        _use_config(cfg)


@SETTINGS
@given(st.data())
def test_manifest_and_index_with_one_field_replaced(data: st.DataObject) -> None:
    doc = data.draw(st.sampled_from([MANIFEST, INDEX]))
    path = data.draw(st.sampled_from(_paths(doc)))
    raw = json.dumps(_replace(doc, path, data.draw(json_values))).encode()
    for parse in (parse_manifest_or_index, Manifest.parse, Index.parse):
        parsed = _only_slimage_errors(parse, raw)
        if isinstance(parsed, Manifest):
            [d.to_dict() for d in [parsed.config, *parsed.layers]]
        elif isinstance(parsed, Index):
            [d.to_dict() for d in parsed.manifests]
            _only_slimage_errors(parsed.select)


@SETTINGS
@given(json_values)
def test_model_readers_on_arbitrary_json(value: Any) -> None:
    raw = json.dumps(value).encode()
    for parse in (parse_manifest_or_index, ImageConfig.parse):
        _only_slimage_errors(parse, raw)
    _only_slimage_errors(_parse_manifest_json, raw, "fuzz.tar")


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def _archive_bytes() -> bytes:
    """A docker-save archive holding both shapes: legacy manifest.json and an OCI layout."""
    buf = io.BytesIO()
    cfg_name = sha(CONFIG_RAW)[7:] + ".json"
    with tarfile.open(fileobj=buf, mode="w") as tf:
        _add(tf, "aaaa/layer.tar", LAYER)
        _add(tf, cfg_name, CONFIG_RAW)
        mj = [{"Config": cfg_name, "RepoTags": ["slimage-test/f:1"], "Layers": ["aaaa/layer.tar"]}]
        _add(tf, "manifest.json", json.dumps(mj).encode())
    return buf.getvalue()


def _oci_archive_bytes() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        for blob in (CONFIG_RAW, GZ, MANIFEST_RAW):
            _add(tf, f"blobs/sha256/{sha(blob)[7:]}", blob)
        _add(tf, "index.json", json.dumps(INDEX).encode())
        _add(tf, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    return buf.getvalue()


SEEDS = [_archive_bytes(), _oci_archive_bytes()]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "cut", "splice", "json"]))
        if op == "flip":
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
        elif op == "cut":
            data = data[: draw(st.integers(0, len(data)))]
            if not data:
                break
        elif op == "splice":
            i = draw(st.integers(0, len(data)))
            data[i:i] = draw(st.binary(max_size=16))
        else:
            # Overwrite a JSON member's body in place with JSON-ish bytes (same length, so
            # the tar stays well-formed and the readers get to the JSON).
            start = bytes(data).find(b"{", 512)
            if start >= 0:
                junk = draw(st.text(alphabet='[]{}":,09e.-ab ', min_size=1, max_size=30))
                data[start : start + len(junk)] = junk.encode()
    return bytes(data)


def _read_archive(path: Path) -> None:
    for image in read_archive(TarIndex.open(path)):
        _use_config(image.config)
        image.manifest.raw  # noqa: B018
        for layer in image.layers:
            layer.diff_id.encode()


@settings(
    max_examples=budget.examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=budget.DERANDOMIZE,
    database=budget.DATABASE,
)
@given(mutated())
def test_archive_reader_on_mutated_archives(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "a.tar"
        path.write_bytes(data)
        _only_slimage_errors(_read_archive, path)


@SETTINGS
@given(st.data())
def test_oci_layout_reader_with_mutated_documents(data: st.DataObject) -> None:
    """One document of a layout gets one field replaced (or is cut short); the ones that
    name it are updated to its new digest and size, so the reader really parses it."""
    which = data.draw(st.sampled_from(["index", "manifest", "config", "oci-layout"]))
    cut = data.draw(st.none() | st.integers(0, 400))

    def mutate(name: str, doc: Any) -> bytes:
        if name == which:
            path = data.draw(st.sampled_from(_paths(doc) or [()]))
            if path:
                doc = _replace(doc, path, data.draw(json_values))
        raw = json.dumps(doc).encode()
        return raw[:cut] if name == which and cut is not None else raw

    config_raw = mutate("config", CONFIG)
    man = json.loads(json.dumps(MANIFEST))
    man["config"].update(digest=sha(config_raw), size=len(config_raw))
    man_raw = mutate("manifest", man)
    index = json.loads(json.dumps(INDEX))
    index["manifests"][0].update(digest=sha(man_raw), size=len(man_raw))
    index_raw = mutate("index", index)
    layout_raw = mutate("oci-layout", {"imageLayoutVersion": "1.0.0"})
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        blobs = root / "blobs" / "sha256"
        blobs.mkdir(parents=True)
        for blob in (GZ, config_raw, man_raw):
            (blobs / sha(blob)[7:]).write_bytes(blob)
        (root / "index.json").write_bytes(index_raw)
        (root / "oci-layout").write_bytes(layout_raw)

        def read() -> None:
            for image in open_layout(root):
                _use_config(image.config)

        _only_slimage_errors(read)
