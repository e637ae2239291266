"""Faults we cannot cause with a healthy registry, injected by a proxy in front of a real
one: 5xx/429, a connection reset halfway through a blob, wrong bytes, odd manifests,
redirect loops and hostile auth challenges."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from slimage.errors import (
    AuthError,
    DigestMismatchError,
    ImageNotFoundError,
    InvalidImageError,
    RegistryError,
    UnsupportedMediaTypeError,
)
from slimage.oci.model import Manifest
from slimage.store.store import Store
from slimage.transports.registry import pull, push
from slimage.transports.registry.auth import Credentials, store_credentials
from slimage.transports.registry.client import RedirectError
from tests.registry.helpers import make_image, random_bytes
from tests.registry.servers import PASSWORD, USER, Fault, FaultProxy


@pytest.fixture
def pushed(registry, store: Store):  # type: ignore[no-untyped-def]
    """An image in the real registry: (repository path, tag, manifest)."""
    path = f"f{uuid.uuid4().hex[:8]}/img"
    ref = f"{registry.host}/{path}:1"
    digest = make_image(store, ref, [{"big": random_bytes(600_000)}, {"small": b"s" * 100}])
    push(store, ref)
    return path, digest, Manifest.parse(store.read_blob(digest))


def _big(manifest: Manifest) -> str:
    return max(manifest.layers, key=lambda d: d.size).digest


def _nothing_stored(store: Store) -> None:
    assert list(store.iter_blobs()) == []
    assert store.refs() == {}
    assert list(store.tmp_dir.iterdir()) == []


def test_503_then_success(fault_proxy: FaultProxy, pushed, tmp_path: Path) -> None:
    path, digest, _ = pushed
    fault_proxy.add(Fault(match="/manifests/", kind="status", status=503, times=2))
    report = pull(Store(tmp_path / "s"), f"{fault_proxy.host}/{path}:1")
    assert report.digest == digest
    assert sum(1 for s in fault_proxy.seen if "/manifests/" in s.path) == 3


def test_429_honours_retry_after(fault_proxy: FaultProxy, pushed, tmp_path: Path) -> None:
    path, digest, manifest = pushed
    fault_proxy.add(
        Fault(match=_big(manifest), kind="status", status=429, headers={"Retry-After": "1"})
    )
    started = time.monotonic()
    assert pull(Store(tmp_path / "s"), f"{fault_proxy.host}/{path}:1").digest == digest
    assert time.monotonic() - started >= 0.9


def test_persistent_503_is_a_clear_error(fault_proxy: FaultProxy, pushed, tmp_path: Path) -> None:
    path, _, _ = pushed
    fault_proxy.add(Fault(match="/manifests/", kind="status", status=503, times=-1))
    with pytest.raises(RegistryError, match="503"):
        pull(Store(tmp_path / "s"), f"{fault_proxy.host}/{path}:1")


def test_reset_halfway_resumes_with_range(fault_proxy: FaultProxy, pushed, tmp_path: Path) -> None:
    path, digest, manifest = pushed
    big = _big(manifest)
    size = next(d.size for d in manifest.layers if d.digest == big)
    fault_proxy.add(Fault(match=big, kind="reset_half", method="GET"))
    store = Store(tmp_path / "s")
    report = pull(store, f"{fault_proxy.host}/{path}:1")
    assert report.digest == digest
    gets = fault_proxy.blob_gets(big)
    assert len(gets) == 2
    assert "Range" not in gets[0].headers
    assert gets[1].headers["Range"] == f"bytes={size // 2}-"
    assert fault_proxy.bytes_served[big] == size  # nothing was fetched twice
    blob = next(b for b in report.blobs if b.digest == big)
    assert blob.bytes_received == size and blob.retries == 1
    assert store.fsck().ok


def test_server_ignoring_range_restarts_cleanly(
    fault_proxy: FaultProxy, pushed, tmp_path: Path
) -> None:
    path, digest, manifest = pushed
    big = _big(manifest)
    fault_proxy.add(Fault(match=big, kind="reset_half", method="GET"))
    fault_proxy.add(Fault(match=big, kind="ignore_range", method="GET"))
    store = Store(tmp_path / "s")
    assert pull(store, f"{fault_proxy.host}/{path}:1").digest == digest
    assert store.fsck().ok


def test_wrong_content_is_refused_and_nothing_stored(
    fault_proxy: FaultProxy, pushed, tmp_path: Path
) -> None:
    path, _, manifest = pushed
    big = _big(manifest)
    fault_proxy.add(Fault(match=big, kind="corrupt", method="GET", times=-1))
    store = Store(tmp_path / "s")
    with pytest.raises(DigestMismatchError, match=f"refused blob {big}"):
        pull(store, f"{fault_proxy.host}/{path}:1")
    assert not store.has_blob(big)
    assert store.refs() == {}
    assert list(store.tmp_dir.iterdir()) == []


def test_manifest_digest_header_mismatch(fault_proxy: FaultProxy, pushed, tmp_path: Path) -> None:
    path, _, _ = pushed
    fault_proxy.add(
        Fault(
            match="/manifests/",
            kind="body",
            headers={"Docker-Content-Digest": "sha256:" + "0" * 64},
        )
    )
    store = Store(tmp_path / "s")
    with pytest.raises(DigestMismatchError, match="the registry says sha256:000"):
        pull(store, f"{fault_proxy.host}/{path}:1")
    _nothing_stored(store)


def test_manifest_not_matching_requested_digest(
    fault_proxy: FaultProxy, pushed, tmp_path: Path, store: Store, registry
) -> None:
    path, digest, _ = pushed
    other = make_image(store, f"{registry.host}/{path}:2", [{"o": b"other"}])
    push(store, f"{registry.host}/{path}:2")
    fault_proxy.add(Fault(match=f"/manifests/{digest}", kind="body", body=store.read_blob(other)))
    s = Store(tmp_path / "s")
    with pytest.raises(DigestMismatchError, match=f"expected {digest}"):
        pull(s, f"{fault_proxy.host}/{path}@{digest}")
    _nothing_stored(s)


@pytest.mark.parametrize(
    ("body", "content_type", "error", "message"),
    [
        (b"{not json", None, InvalidImageError, "not valid JSON"),
        (b"[1,2]", None, InvalidImageError, "not a JSON object"),
        (
            json.dumps(
                {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}
            ).encode(),
            "application/vnd.oci.image.manifest.v1+json",
            InvalidImageError,
            "lacks config or layers",
        ),
        (
            b"{}",
            "application/vnd.example.unknown+json",
            UnsupportedMediaTypeError,
            "unknown manifest media type",
        ),
        (
            json.dumps({"schemaVersion": 1, "name": "x", "fsLayers": []}).encode(),
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            UnsupportedMediaTypeError,
            "schema1",
        ),
        (b'{"pad":"' + b"x" * (5 << 20) + b'"}', None, InvalidImageError, "over the 4 MiB limit"),
    ],
    ids=["malformed", "not-object", "no-layers", "unknown-type", "schema1", "too-big"],
)
def test_bad_manifests(
    fault_proxy: FaultProxy, pushed, tmp_path: Path, body, content_type, error, message
) -> None:  # type: ignore[no-untyped-def]
    path, _, _ = pushed
    fault_proxy.add(Fault(match="/manifests/", kind="body", body=body, content_type=content_type))
    store = Store(tmp_path / "s")
    with pytest.raises(error, match=message) as exc:
        pull(store, f"{fault_proxy.host}/{path}:1")
    assert path in str(exc.value)  # the message says where
    _nothing_stored(store)


def test_unknown_layer_media_type(fault_proxy: FaultProxy, pushed, tmp_path: Path) -> None:
    path, _, manifest = pushed
    obj = json.loads(manifest.raw)
    obj["layers"][0]["mediaType"] = "application/vnd.example.weird"
    fault_proxy.add(Fault(match="/manifests/", kind="body", body=json.dumps(obj).encode()))
    with pytest.raises(UnsupportedMediaTypeError, match="application/vnd.example.weird"):
        pull(Store(tmp_path / "s"), f"{fault_proxy.host}/{path}:1")


def test_redirect_loop(fault_proxy: FaultProxy, pushed, tmp_path: Path) -> None:
    path, _, manifest = pushed
    fault_proxy.add(Fault(match=_big(manifest), kind="redirect", method="GET", times=-1))
    store = Store(tmp_path / "s")
    with pytest.raises(RedirectError, match="redirect loop"):
        pull(store, f"{fault_proxy.host}/{path}:1")
    assert store.refs() == {}


def test_missing_tag_is_not_found(fault_proxy: FaultProxy, pushed, tmp_path: Path) -> None:
    path, _, _ = pushed
    with pytest.raises(ImageNotFoundError, match="not found"):
        pull(Store(tmp_path / "s"), f"{fault_proxy.host}/{path}:nope")


@pytest.mark.parametrize(
    "realm", ["ftp://127.0.0.1/token", "file:///etc/passwd", "http://192.0.2.1/token"]
)
def test_auth_realm_on_another_scheme(
    fault_proxy: FaultProxy, pushed, tmp_path: Path, realm: str
) -> None:
    path, _, _ = pushed
    fault_proxy.add(
        Fault(
            match="/v2/",
            kind="challenge",
            headers={"WWW-Authenticate": f'Bearer realm="{realm}",service="x"'},
            times=-1,
        )
    )
    with pytest.raises(AuthError, match="auth realm"):
        pull(Store(tmp_path / "s"), f"{fault_proxy.host}/{path}:1")


def test_redirect_to_other_host_drops_authorization(
    auth_registry, store: Store, tmp_path: Path
) -> None:
    """The blob GET is redirected to another host (a mirror): it must not get our header."""
    import base64

    basic = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    front = FaultProxy(auth_registry.host)
    mirror = FaultProxy(auth_registry.host, inject_auth=basic)
    try:
        store_credentials(auth_registry.host, Credentials(USER, PASSWORD))
        ref = f"{auth_registry.host}/team/redir:{uuid.uuid4().hex[:6]}"
        digest = make_image(store, ref, [{"r": random_bytes(30_000)}])
        push(store, ref)
        layer = Manifest.parse(store.read_blob(digest)).layers[0].digest
        path = ref.split("/", 1)[1].split(":")[0]
        front.add(
            Fault(
                match=layer,
                kind="redirect",
                method="GET",
                location=f"http://localhost:{mirror.port}/v2/{path}/blobs/{layer}",
            )
        )
        store_credentials(front.host, Credentials(USER, PASSWORD))
        other = Store(tmp_path / "o")
        report = pull(other, f"{front.host}/{path}:{ref.rsplit(':', 1)[1]}")
        assert report.digest == digest
        front_gets = front.blob_gets(layer)
        assert front_gets and "Authorization" in front_gets[0].headers
        mirror_gets = mirror.blob_gets(layer)
        assert len(mirror_gets) == 1
        assert "Authorization" not in mirror_gets[0].headers
        assert mirror_gets[0].host.startswith("localhost:")
    finally:
        front.stop()
        mirror.stop()


def test_push_retries_a_failed_upload(registry, store: Store) -> None:
    proxy = FaultProxy(registry.host)
    try:
        ref = f"{proxy.host}/f{uuid.uuid4().hex[:6]}/up:1"
        make_image(store, ref, [{"u": random_bytes(100_000)}])
        proxy.add(Fault(match="/blobs/uploads/", kind="status", status=503, method="PUT", times=1))
        report = push(store, ref)
        assert report.count("uploaded") == 2
        assert sum(b.retries for b in report.blobs) >= 1
    finally:
        proxy.stop()


def test_cli_bad_input_is_one_line(cli, fault_proxy: FaultProxy, pushed) -> None:  # type: ignore[no-untyped-def]
    path, _, _ = pushed
    fault_proxy.add(Fault(match="/manifests/", kind="body", body=b"{oops", times=-1))
    res = cli("pull", f"{fault_proxy.host}/{path}:1")
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("slimage: error:") and path in lines[0]
    bad = cli("pull", "Not A Ref!!")
    assert (
        bad.returncode != 0 and "Traceback" not in bad.stderr and "invalid reference" in bad.stderr
    )
    bad = cli("pull", "--platform", "linux", f"{fault_proxy.host}/{path}:1")
    assert bad.returncode != 0 and "invalid platform" in bad.stderr
