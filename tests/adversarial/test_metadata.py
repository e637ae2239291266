"""Adversarial image metadata: malformed JSON and wrongly typed fields in configs,
docker-archive `manifest.json`, OCI `index.json` and manifests, served from archives,
layouts, a hostile HTTP registry on 127.0.0.1 and the real Debian `docker-registry`.

Every attack is a real `slimage` command against a real temporary store. Each must end
with a non-zero exit and ONE line that names the file/blob and the field, no traceback,
nothing stored, and a store that still passes `slimage fsck`.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import http.server
import io
import json
import os
import socket
import subprocess
import tarfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from slimage.cli.main import main as cli_main
from slimage.oci import mediatypes as mt
from slimage.store.store import Store
from tests.registry import servers
from tests.registry.helpers import run_cli
from tests.transports.imagekit import E, compress, layer_tar

GOOD_LAYER = layer_tar([E("etc/hello", data=b"hello\n")])
DIFF = "sha256:" + hashlib.sha256(GOOD_LAYER).hexdigest()


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def base_config(diff_ids: list[str] | None = None) -> dict[str, Any]:
    return {
        "architecture": "amd64",
        "os": "linux",
        "created": "2026-01-02T03:04:05Z",
        "config": {"Env": ["PATH=/usr/bin:/bin"], "Cmd": ["/bin/sh"], "Labels": {"a": "b"}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids or [DIFF]},
        "history": [{"created": "2026-01-02T03:04:05Z", "created_by": "step 0"}],
    }


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        cur: Any = doc
        for p in parents:
            cur = cur[int(p)] if p.isdigit() else cur[p]
        cur[int(last) if last.isdigit() else last] = value

    return mutate


# (mutation of the config, text that must appear in the one-line error)
CONFIG_CASES: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "created-number": (_set("created", 12345), "created must be a string"),
    "env-string": (_set("config.Env", "PATH=/x"), "config.Env must be a list of strings"),
    "env-item-number": (_set("config.Env", ["A=1", 7]), "config.Env[1] must be a string"),
    "cmd-number": (_set("config.Cmd", 5), "config.Cmd must be a list of strings"),
    "labels-list": (_set("config.Labels", ["a"]), "config.Labels must be an object"),
    "label-value-number": (_set("config.Labels", {"k": 1}), "config.Labels['k']"),
    "config-list": (_set("config", [1, 2]), "config must be an object"),
    "history-object": (_set("history", {"a": 1}), "history must be a list"),
    "history-entry-string": (_set("history", ["x"]), "history[0] must be an object"),
    "created-by-list": (_set("history.0.created_by", ["x"]), "history[0].created_by"),
    "empty-layer-string": (_set("history.0.empty_layer", "yes"), "history[0].empty_layer"),
    "diff-id-number": (_set("rootfs.diff_ids", [5]), "rootfs.diff_ids[0]"),
    "user-number": (_set("config.User", 0), "config.User must be a string"),
}

# raw config bytes -> text in the error
RAW_CASES: dict[str, tuple[bytes, str]] = {
    "nesting-100000": (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "nests deeper"),
    "array-nesting-unclosed": (b"[" * 100_000, "nests deeper"),
    "int-5000-digits": (b'{"architecture": ' + b"9" * 5000 + b"}", "digits"),
    "size-1e400": (json.dumps(base_config()).encode()[:-1] + b', "x": 1e400}', "out of range"),
    "nan": (json.dumps(base_config()).encode()[:-1] + b', "x": NaN}', "NaN"),
    "lone-surrogate": (
        json.dumps(base_config()).encode()[:-1] + b', "x": "\\ud800"}',
        "surrogate",
    ),
}


# ---------------------------------------------------------------------------- helpers


def slim(home: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120):
    """`slimage ARGS` as a real subprocess (the registry attacks, `run`, `images`)."""
    return run_cli(*args, store_root=home, env=env, timeout=timeout)


def slim_fast(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`slimage ARGS` through the CLI's own `main()` in this process: the same parser,
    error handling and exit code, without 0.5 s of interpreter start per case. Anything
    but a SlimageError propagates and fails the test, as a traceback would."""
    out, err = io.StringIO(), io.StringIO()
    saved = os.environ.get("SLIMAGE_HOME")
    os.environ["SLIMAGE_HOME"] = str(home)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = cli_main(list(args))
    finally:
        if saved is None:
            os.environ.pop("SLIMAGE_HOME", None)
        else:
            os.environ["SLIMAGE_HOME"] = saved
    return subprocess.CompletedProcess(list(args), rc, out.getvalue(), err.getvalue())


def assert_refused(res: Any, *needles: str) -> str:
    assert res.returncode != 0, res.stdout + res.stderr
    assert "Traceback" not in res.stderr, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def assert_store_clean(home: Path) -> None:
    res = slim_fast(home, "fsck")
    assert res.returncode == 0, res.stdout + res.stderr
    assert not Store(home).refs()
    assert not Store(home).images()


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tf.addfile(info, io.BytesIO(data))


def archive(
    path: Path,
    config: bytes,
    *,
    manifest_json: bytes | None = None,
    layer: bytes = GOOD_LAYER,
) -> tuple[Path, str]:
    """A legacy `docker save` archive with exactly these bytes. Returns (path, config name)."""
    cfg_name = sha(config).split(":")[1] + ".json"
    with tarfile.open(path, "w") as tf:
        _add(tf, "aaaa/layer.tar", layer)
        _add(tf, cfg_name, config)
        mj = manifest_json
        if mj is None:
            mj = json.dumps(
                [
                    {
                        "Config": cfg_name,
                        "RepoTags": ["slimage-test/meta:1"],
                        "Layers": ["aaaa/layer.tar"],
                    }
                ]
            ).encode()
        _add(tf, "manifest.json", mj)
    return path, cfg_name


def oci_layout(root: Path, *, index: Any = None, manifest: Any = None) -> Path:
    """An OCI layout dir of one good image; INDEX / MANIFEST (dicts or raw bytes) replace
    the generated documents when given."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    cfg = json.dumps(base_config()).encode()
    layer = compress(GOOD_LAYER, "gzip")
    for data in (cfg, layer):
        (blobs / sha(data).split(":")[1]).write_bytes(data)
    man_doc = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": sha(cfg), "size": len(cfg)},
        "layers": [{"mediaType": mt.OCI_LAYER_GZIP, "digest": sha(layer), "size": len(layer)}],
    }
    if callable(manifest):
        manifest(man_doc)
        manifest = None
    man = manifest if isinstance(manifest, bytes) else json.dumps(manifest or man_doc).encode()
    (blobs / sha(man).split(":")[1]).write_bytes(man)
    idx_doc = {
        "schemaVersion": 2,
        "mediaType": mt.OCI_INDEX,
        "manifests": [
            {
                "mediaType": mt.OCI_MANIFEST,
                "digest": sha(man),
                "size": len(man),
                "annotations": {"org.opencontainers.image.ref.name": "slimage-test/meta:1"},
            }
        ],
    }
    if callable(index):
        index(idx_doc)
        index = None
    idx = index if isinstance(index, bytes) else json.dumps(index or idx_doc).encode()
    (root / "index.json").write_bytes(idx)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    return root


# ---------------------------------------------------------------------------- configs


@pytest.mark.parametrize("case", sorted(CONFIG_CASES))
def test_load_refuses_a_config_field_of_the_wrong_type(tmp_path: Path, case: str) -> None:
    mutate, needle = CONFIG_CASES[case]
    cfg = base_config()
    mutate(cfg)
    path, cfg_name = archive(tmp_path / "a.tar", json.dumps(cfg).encode())
    home = tmp_path / "store"
    line = assert_refused(slim_fast(home, "load", "-i", str(path)), needle, cfg_name)
    assert str(path) in line
    assert_store_clean(home)


@pytest.mark.parametrize("case", sorted(RAW_CASES))
def test_load_refuses_malformed_config_json(tmp_path: Path, case: str) -> None:
    raw, needle = RAW_CASES[case]
    path, cfg_name = archive(tmp_path / "a.tar", raw)
    home = tmp_path / "store"
    assert_refused(slim_fast(home, "load", "-i", str(path)), needle, cfg_name)
    assert_store_clean(home)


@pytest.mark.parametrize(
    "case", ["created-number", "env-string", "history-object", "config-list", "nesting"]
)
@pytest.mark.parametrize("command", ["analyze", "history", "inspect"])
def test_archive_readers_refuse_bad_configs(tmp_path: Path, case: str, command: str) -> None:
    if case == "nesting":
        raw, needle = RAW_CASES["nesting-100000"]
    else:
        mutate, needle = CONFIG_CASES[case]
        cfg = base_config()
        mutate(cfg)
        raw = json.dumps(cfg).encode()
    path, cfg_name = archive(tmp_path / "a.tar", raw)
    home = tmp_path / "store"
    assert_refused(slim_fast(home, command, str(path)), needle, cfg_name)


def test_cmd_as_one_string_is_tolerated_like_dockers_strslice(tmp_path: Path) -> None:
    """Docker's strslice accepts `"Cmd": "sh"` as ["sh"]; we do too, without splitting it
    into characters, and the image ID (the raw bytes' digest) is unchanged."""
    cfg = base_config()
    cfg["config"]["Cmd"] = "/bin/sh -c true"
    raw = json.dumps(cfg).encode()
    path, _ = archive(tmp_path / "a.tar", raw)
    home = tmp_path / "store"
    res = slim(home, "load", "-i", str(path))
    assert res.returncode == 0, res.stderr
    res = slim(home, "inspect", "slimage-test/meta:1")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    data = data[0] if isinstance(data, list) else data
    assert data["Config"]["Cmd"] == ["/bin/sh -c true"]
    assert data["Id"] == sha(raw)


def test_unparsable_created_string_is_tolerated_and_listed(tmp_path: Path) -> None:
    cfg = base_config()
    cfg["created"] = "yesterday-ish"
    path, _ = archive(tmp_path / "a.tar", json.dumps(cfg).encode())
    home = tmp_path / "store"
    assert slim(home, "load", "-i", str(path)).returncode == 0
    res = slim(home, "images")
    assert res.returncode == 0 and "slimage-test/meta" in res.stdout, res.stdout + res.stderr
    assert "Traceback" not in res.stderr


# ---------------------------------------------------------------------------- manifest.json


def _mj(**entry: Any) -> bytes:
    base: dict[str, Any] = {"Config": "X", "RepoTags": ["slimage-test/meta:1"], "Layers": []}
    base.update(entry)
    return json.dumps([base]).encode()


@pytest.mark.parametrize(
    ("manifest_json", "needle"),
    [
        (_mj(RepoTags="evil"), "RepoTags must be a list of strings"),
        (_mj(RepoTags=5), "RepoTags must be a list of strings"),
        (_mj(RepoTags=["ok:1", 5]), "RepoTags must be a list of strings"),
        (_mj(Layers=[5]), "Layers[0] must be a string"),
        (_mj(Layers="aaaa/layer.tar"), "lacks Config or Layers"),
        (_mj(Config=5), "lacks Config or Layers"),
        (b"[" * 100_000, "nests deeper"),
        (b'[{"Config": "x", "Layers": [], "Size": 1e400}]', "out of range"),
        (b'[{"Config": "x", "Layers": [], "N": ' + b"1" * 5000 + b"}]", "digits"),
        (b"{}", "not a non-empty list"),
    ],
    ids=[
        "repotags-string",
        "repotags-number",
        "repotags-item",
        "layers-number",
        "layers-string",
        "config-number",
        "nesting",
        "float-overflow",
        "huge-int",
        "object",
    ],
)
def test_load_refuses_malformed_manifest_json(
    tmp_path: Path, manifest_json: bytes, needle: str
) -> None:
    cfg = json.dumps(base_config()).encode()
    fixed = manifest_json.replace(b'"Config": "X"', f'"Config": "{sha(cfg)[7:]}.json"'.encode())
    fixed = fixed.replace(b'"Layers": []', b'"Layers": ["aaaa/layer.tar"]')
    path, _ = archive(tmp_path / "a.tar", cfg, manifest_json=fixed)
    home = tmp_path / "store"
    line = assert_refused(slim_fast(home, "load", "-i", str(path)), needle)
    assert "manifest.json" in line
    assert_store_clean(home)


# ---------------------------------------------------------------------------- OCI layouts


def _ann(doc: dict[str, Any]) -> None:
    doc["manifests"][0]["annotations"] = "x"


def _ann_value(doc: dict[str, Any]) -> None:
    doc["manifests"][0]["annotations"] = {"org.opencontainers.image.ref.name": 5}


def _size_str(doc: dict[str, Any]) -> None:
    doc["manifests"][0]["size"] = str(doc["manifests"][0]["size"])


def _layers5(doc: dict[str, Any]) -> None:
    doc["layers"] = [5]


def _man_ann(doc: dict[str, Any]) -> None:
    doc["annotations"] = ["a"]


def _platform(doc: dict[str, Any]) -> None:
    doc["manifests"][0]["platform"] = {"os": 5, "architecture": "amd64"}


@pytest.mark.parametrize(
    ("index", "manifest", "needle"),
    [
        (_ann, None, "manifests[0].annotations must be an object"),
        (_ann_value, None, "must be a string"),
        (_size_str, None, "manifests[0].size must be an integer"),
        (_platform, None, "manifests[0].platform.os must be a string"),
        (b'{"manifests": [' * 50_000, None, "nests deeper"),
        (
            b'{"schemaVersion": 2, "manifests": [{"digest": "sha256:'
            + b"0" * 64
            + b'", "size": 1e400}]}',
            None,
            "out of range",
        ),
        (None, _layers5, "layers[0] must be an object"),
        (None, _man_ann, "annotations must be an object"),
    ],
    ids=[
        "annotations-string",
        "annotation-number",
        "size-string",
        "platform-os",
        "index-nesting",
        "size-1e400",
        "layers-number",
        "manifest-annotations",
    ],
)
@pytest.mark.parametrize("command", ["history", "inspect", "analyze"])
def test_oci_layout_readers_refuse_malformed_documents(
    tmp_path: Path, index: Any, manifest: Any, needle: str, command: str
) -> None:
    root = oci_layout(tmp_path / "layout", index=index, manifest=manifest)
    line = assert_refused(slim_fast(tmp_path / "store", command, f"oci:{root}"), needle)
    assert str(root) in line


# ---------------------------------------------------------------------------- the store


def _plant(home: Path, config: bytes, tag: str) -> str:
    """An image whose config is CONFIG, recorded straight into the store (as an older
    slimage or another tool might have), bypassing every check of ours."""
    store = Store(home)
    layer = compress(GOOD_LAYER, "gzip")
    store.put_bytes(layer)
    store.put_bytes(config)
    man = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": mt.OCI_CONFIG, "digest": sha(config), "size": len(config)},
            "layers": [{"mediaType": mt.OCI_LAYER_GZIP, "digest": sha(layer), "size": len(layer)}],
        }
    ).encode()
    digest = store.put_bytes(man)
    store.add_image(digest, tags=[tag], added="2026-01-01T00:00:00Z")
    return digest


def test_one_bad_image_never_breaks_the_listing_of_the_others(tmp_path: Path) -> None:
    """M3: `images` lists every readable image, exits 0, and reports each unreadable one
    on one stderr line; the commands that need the bad image refuse it in one line."""
    home = tmp_path / "store"
    good, _ = archive(tmp_path / "good.tar", json.dumps(base_config()).encode())
    assert slim(home, "load", "-i", str(good)).returncode == 0
    bad_cfg = base_config()
    bad_cfg["created"] = 12345
    bad_digest = _plant(home, json.dumps(bad_cfg).encode(), "slimage-test/bad:1")
    env_cfg = base_config()
    env_cfg["config"]["Env"] = "PATH=/x"
    _plant(home, json.dumps(env_cfg).encode(), "slimage-test/badenv:1")

    res = slim(home, "images")
    assert res.returncode == 0, res.stderr
    assert "Traceback" not in res.stderr
    assert "slimage-test/meta" in res.stdout
    warnings = res.stderr.strip().splitlines()
    assert len(warnings) == 2, res.stderr
    assert any(bad_digest in w and "created must be a string" in w for w in warnings)
    assert any("config.Env" in w for w in warnings)
    res = slim(home, "images", "--json")
    assert res.returncode == 0 and "Traceback" not in res.stderr
    rows = json.loads(res.stdout)
    assert {r["repository"] for r in rows} >= {"slimage-test/meta", "slimage-test/bad"}

    for args in (
        ("history", "slimage-test/bad:1"),
        ("inspect", "slimage-test/bad:1"),
        ("analyze", "slimage-test/bad:1"),
        ("run", "--rm", "slimage-test/badenv:1", "true"),
    ):
        assert_refused(slim(home, *args), "must be", ": config sha256:")
    # The good one still works end to end.
    res = slim(home, "history", "slimage-test/meta:1")
    assert res.returncode == 0, res.stderr


# ---------------------------------------------------------------------------- registries


class Route:
    def __init__(
        self,
        body: bytes,
        content_type: str = "application/octet-stream",
        *,
        trickle: float = 0.0,
        stop_after: int | None = None,
        close_after: int | None = None,
    ):
        self.body = body
        self.content_type = content_type
        self.trickle = trickle
        self.stop_after = stop_after
        self.close_after = close_after


class HostileRegistry:
    """A registry API on 127.0.0.1 that serves whatever the test puts in `routes`
    (path -> Route), slowly, or cut short, as the route says."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.release = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: Any) -> None:
                pass

            def _serve(self, head: bool) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/v2/":
                    self.send_response(200)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    if not head:
                        self.wfile.write(b"{}")
                    return
                route = outer.routes.get(path)
                if route is None:
                    body = b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"unknown"}]}'
                    self.send_response(404)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self.send_response(200)
                self.send_header("Content-Type", route.content_type)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                if head:
                    return
                body = route.body
                if route.trickle:
                    for i in range(len(body)):
                        if outer.release.is_set():
                            return
                        self.wfile.write(body[i : i + 1])
                        self.wfile.flush()
                        time.sleep(route.trickle)
                    return
                if route.stop_after is not None:
                    self.wfile.write(body[: route.stop_after])
                    self.wfile.flush()
                    outer.release.wait(60)  # stall: keep the socket open, send nothing
                    return
                if route.close_after is not None:
                    self.wfile.write(body[: route.close_after])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                with contextlib.suppress(ConnectionError):  # the client gave up: expected
                    self._serve(False)

            def do_HEAD(self) -> None:  # noqa: N802
                with contextlib.suppress(ConnectionError):
                    self._serve(True)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.host = f"127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def image(
        self,
        repo: str,
        *,
        config: bytes | None = None,
        layer: bytes | None = None,
        manifest: Callable[[dict[str, Any]], None] | bytes | None = None,
        manifest_route: dict[str, Any] | None = None,
        layer_route: dict[str, Any] | None = None,
    ) -> str:
        """Serve an image as REPO:1; returns the reference to pull."""
        layer = layer if layer is not None else compress(GOOD_LAYER, "gzip")
        config = config if config is not None else json.dumps(base_config()).encode()
        doc = {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": mt.OCI_CONFIG, "digest": sha(config), "size": len(config)},
            "layers": [{"mediaType": mt.OCI_LAYER_GZIP, "digest": sha(layer), "size": len(layer)}],
        }
        if callable(manifest):
            manifest(doc)
        raw = manifest if isinstance(manifest, bytes) else json.dumps(doc).encode()
        self.routes[f"/v2/{repo}/manifests/1"] = Route(
            raw, mt.OCI_MANIFEST, **(manifest_route or {})
        )
        self.routes[f"/v2/{repo}/blobs/{sha(config)}"] = Route(config)
        self.routes[f"/v2/{repo}/blobs/{sha(layer)}"] = Route(layer, **(layer_route or {}))
        return f"{self.host}/{repo}:1"

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()


@pytest.fixture(scope="module")
def hostile() -> Iterator[HostileRegistry]:
    reg = HostileRegistry()
    yield reg
    reg.stop()


FAST = {"SLIMAGE_REGISTRY_RETRIES": "1", "SLIMAGE_RETRY_BACKOFF": "0.01"}


def _bad_cfg(case: str) -> bytes:
    mutate, _ = CONFIG_CASES[case]
    cfg = base_config()
    mutate(cfg)
    return json.dumps(cfg).encode()


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"manifest": b'{"layers":' * 100_000}, "nests deeper"),
        (
            {"manifest": lambda d: d["layers"][0].__setitem__("size", 10**30)},
            "digits",
        ),
        (
            {"manifest": lambda d: d.__setitem__("annotations", {"a": {"b": 1}})},
            "annotations['a'] must be a string",
        ),
        ({"manifest": lambda d: d["layers"].__setitem__(0, 5)}, "layers[0] must be an object"),
        ({"config": _bad_cfg("env-string")}, "config.Env must be a list of strings"),
        ({"config": _bad_cfg("created-number")}, "created must be a string"),
        ({"config": _bad_cfg("history-object")}, "history must be a list"),
        ({"config": RAW_CASES["size-1e400"][0]}, "out of range"),
    ],
    ids=[
        "manifest-nesting",
        "manifest-huge-size",
        "manifest-annotation-object",
        "manifest-layer-number",
        "config-env-string",
        "config-created-number",
        "config-history-object",
        "config-1e400",
    ],
)
def test_pull_refuses_malformed_documents(
    tmp_path: Path, hostile: HostileRegistry, kwargs: dict[str, Any], needle: str
) -> None:
    repo = f"slimage-test/m{abs(hash(needle)) % 10**8}"
    ref = hostile.image(repo, **kwargs)
    home = tmp_path / "store"
    line = assert_refused(slim(home, "pull", "-q", ref, env=FAST), needle)
    assert repo in line
    assert_store_clean(home)
    assert not any(Store(home).iter_blobs())  # the config it fetched was rolled back


def test_pull_trickled_manifest_ends_at_the_deadline(
    tmp_path: Path, hostile: HostileRegistry
) -> None:
    """M5: one byte every 0.5 s never trips the per-read timeout; the request deadline
    (SLIMAGE_REGISTRY_TIMEOUT) ends it with one line."""
    ref = hostile.image("slimage-test/trickle", manifest_route={"trickle": 0.5})
    home = tmp_path / "store"
    env = {**FAST, "SLIMAGE_REGISTRY_TIMEOUT": "3", "SLIMAGE_HTTP_TIMEOUT": "2"}
    started = time.monotonic()
    res = slim(home, "pull", "-q", ref, env=env, timeout=60)
    took = time.monotonic() - started
    assert_refused(res, "SLIMAGE_REGISTRY_TIMEOUT", "slimage-test/trickle")
    assert took < 15, took  # 3 s deadline, no retry of a deadline, plus interpreter start
    assert_store_clean(home)


def test_pull_trickled_layer_ends_at_the_deadline(tmp_path: Path, hostile: HostileRegistry) -> None:
    ref = hostile.image("slimage-test/tricklelayer", layer_route={"trickle": 0.5})
    home = tmp_path / "store"
    env = {
        **FAST,
        "SLIMAGE_REGISTRY_TIMEOUT": "3",
        "SLIMAGE_HTTP_TIMEOUT": "2",
        "SLIMAGE_REGISTRY_MIN_RATE": "1000000",
    }
    started = time.monotonic()
    res = slim(home, "pull", "-q", ref, env=env, timeout=60)
    assert_refused(res, "SLIMAGE_REGISTRY_TIMEOUT")
    assert time.monotonic() - started < 15
    assert_store_clean(home)
    assert not list((home / "tmp").glob("blob-*"))


def test_pull_manifest_that_stops_mid_body_is_one_line(
    tmp_path: Path, hostile: HostileRegistry
) -> None:
    """M5: the body stops after 40 bytes and the socket stays open: the per-read timeout
    fires; that is a RegistryError line, not a TimeoutError traceback."""
    ref = hostile.image("slimage-test/stall", manifest_route={"stop_after": 40})
    home = tmp_path / "store"
    env = {**FAST, "SLIMAGE_HTTP_TIMEOUT": "2"}
    started = time.monotonic()
    res = slim(home, "pull", "-q", ref, env=env, timeout=60)
    line = assert_refused(res, "slimage-test/stall")
    assert "Timeout" in line or "body" in line
    assert time.monotonic() - started < 20
    assert_store_clean(home)


def test_pull_manifest_cut_short_is_one_line(tmp_path: Path, hostile: HostileRegistry) -> None:
    ref = hostile.image("slimage-test/cut", manifest_route={"close_after": 40})
    home = tmp_path / "store"
    res = slim(home, "pull", "-q", ref, env=FAST, timeout=60)
    assert_refused(res, "slimage-test/cut")
    assert_store_clean(home)


def _traversal_layer() -> bytes:
    return layer_tar([E("etc/ok", data=b"x"), E("../../escaped-by-pull", data=b"pwned")])


@pytest.mark.parametrize("case", ["traversal", "wrong-diff-id"])
def test_pull_checks_layers_like_load_hostile(
    tmp_path: Path, hostile: HostileRegistry, case: str
) -> None:
    """M1 on our own server: a refused layer leaves no ref, no image, no blob."""
    if case == "traversal":
        tar = _traversal_layer()
        config = json.dumps(base_config([sha(tar)])).encode()
        needle = "escaped-by-pull"
    else:
        tar = GOOD_LAYER
        config = json.dumps(base_config(["sha256:" + "e" * 64])).encode()
        needle = "sha256:" + "e" * 64
    ref = hostile.image(f"slimage-test/{case}", config=config, layer=compress(tar, "gzip"))
    home = tmp_path / "store"
    assert_refused(slim(home, "pull", "-q", ref, env=FAST), needle, f"slimage-test/{case}")
    assert_store_clean(home)
    assert not any(Store(home).iter_blobs())
    assert not (tmp_path / "escaped-by-pull").exists()


# ---------------------------------------------------------------------------- real registry


@pytest.fixture(scope="module")
def real_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.RegistryProc]:
    if servers.REGISTRY_BIN is None:
        pytest.skip("needs Debian's docker-registry")
    reg = servers.RegistryProc(tmp_path_factory.mktemp("reg"), name="metadata")
    yield reg
    reg.stop()


def _push_raw(host: str, repo: str, config: bytes, layer: bytes) -> str:
    """Put blobs and a manifest into a real registry with the plain distribution API
    (a POST, then one PUT with the whole blob), so the registry serves exactly these bytes."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    for blob in (config, layer):
        start = urllib.request.Request(f"http://{host}/v2/{repo}/blobs/uploads/", method="POST")
        with opener.open(start) as resp:
            assert resp.status == 202
            location = urllib.parse.urljoin(f"http://{host}/", resp.headers["Location"])
        sep = "&" if "?" in location else "?"
        req = urllib.request.Request(
            f"{location}{sep}digest={sha(blob)}",
            data=blob,
            method="PUT",
            headers={"Content-Type": "application/octet-stream"},
        )
        with opener.open(req) as resp:
            assert resp.status == 201
    man = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "config": {"mediaType": mt.OCI_CONFIG, "digest": sha(config), "size": len(config)},
            "layers": [{"mediaType": mt.OCI_LAYER_GZIP, "digest": sha(layer), "size": len(layer)}],
        }
    ).encode()
    req = urllib.request.Request(
        f"http://{host}/v2/{repo}/manifests/1",
        data=man,
        method="PUT",
        headers={"Content-Type": mt.OCI_MANIFEST},
    )
    with opener.open(req) as resp:
        assert resp.status == 201
    return f"{host}/{repo}:1"


@pytest.mark.parametrize("case", ["traversal", "wrong-diff-id", "good"])
def test_pull_checks_layers_like_load_real_registry(
    tmp_path: Path, real_registry: servers.RegistryProc, case: str
) -> None:
    """M1 against the real Debian docker-registry: it stores and serves any bytes; pull
    must refuse what load refuses, before tagging, and keep pulling good images."""
    tar = _traversal_layer() if case == "traversal" else GOOD_LAYER
    diff = "sha256:" + "e" * 64 if case == "wrong-diff-id" else sha(tar)
    config = json.dumps(base_config([diff])).encode()
    layer = compress(tar, "gzip")
    ref = _push_raw(real_registry.host, f"slimage-test/{case}", config, layer)
    home = tmp_path / "store"
    res = slim(home, "pull", "-q", ref, env=FAST)
    if case == "good":
        assert res.returncode == 0, res.stderr
        assert Store(home).refs()
        assert slim(home, "fsck").returncode == 0
        return
    assert_refused(res, "escaped-by-pull" if case == "traversal" else diff)
    assert_store_clean(home)
    assert not any(Store(home).iter_blobs())


def test_base_config_is_valid_as_a_control(tmp_path: Path) -> None:
    """The unmutated documents load: every refusal above is caused by its one change."""
    path, _ = archive(tmp_path / "a.tar", json.dumps(copy.deepcopy(base_config())).encode())
    home = tmp_path / "store"
    res = slim(home, "load", "-i", str(path))
    assert res.returncode == 0, res.stderr
    root = oci_layout(tmp_path / "layout")
    res = slim(home, "history", f"oci:{root}")
    assert res.returncode == 0, res.stderr
