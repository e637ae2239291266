"""TLS verification (on by default, off only for a named host), pull_if_missing, chunked
upload resume, progress rendering and small pure helpers."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pytest

from slimage.errors import ImageNotFoundError, RegistryError
from slimage.store.store import Store
from slimage.transports.registry import pull, pull_if_missing, push
from slimage.transports.registry.client import registry_api_host
from tests.registry.helpers import make_image, random_bytes
from tests.registry.servers import Fault, FaultProxy


def test_tls_verified_by_default(
    tls_registry, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg, cert = tls_registry
    ref = f"{reg.host}/tls/img:{uuid.uuid4().hex[:6]}"
    make_image(store, ref, [{"t": random_bytes(10_000)}])
    with pytest.raises(RegistryError, match="TLS certificate not trusted.*--insecure"):
        push(store, ref)
    # --insecure for some other host changes nothing for this one.
    with pytest.raises(RegistryError, match="not trusted"):
        push(store, ref, insecure=["127.0.0.1:1"])
    report = push(store, ref, insecure=[reg.host])
    assert report.count("uploaded") == 2
    # With the CA trusted, it verifies and works without --insecure, over https.
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    other = Store(store.root.parent / "tls-other")
    pulled = pull(other, ref)
    assert pulled.digest == report.digest


def test_pull_if_missing(registry, store: Store, tmp_path: Path) -> None:
    ref = f"{registry.host}/pim/img:{uuid.uuid4().hex[:6]}"
    digest = make_image(store, ref, [{"p": random_bytes(20_000)}])
    push(store, ref)
    other = Store(tmp_path / "o")
    assert pull_if_missing(other, ref) == digest
    mark = registry.log_mark()
    assert pull_if_missing(other, ref) == digest
    assert registry.requests(mark) == []  # the second call never touched the network
    with pytest.raises(ImageNotFoundError):
        pull_if_missing(other, f"{registry.host}/pim/none:x")
    with pytest.raises(ImageNotFoundError):
        pull_if_missing(other, "Bad Name")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLIMAGE_NO_PULL", "1")
        mark = registry.log_mark()
        with pytest.raises(ImageNotFoundError, match="SLIMAGE_NO_PULL"):
            pull_if_missing(Store(tmp_path / "hermetic"), ref)
        assert registry.requests(mark) == []


def test_chunked_upload_resumes_after_dropped_patch(registry, store: Store, tmp_path: Path) -> None:
    proxy = FaultProxy(registry.host)
    try:
        ref = f"{proxy.host}/chunk/img:{uuid.uuid4().hex[:6]}"
        make_image(store, ref, [{"c": random_bytes(400_000)}])
        proxy.add(Fault(match="/blobs/uploads/", kind="pass", method="PATCH", times=2))
        proxy.add(Fault(match="/blobs/uploads/", kind="drop", method="PATCH", times=2))
        report = push(store, ref, chunk_size=100_000)
        layer = next(b for b in report.blobs if b.kind == "layer")
        assert layer.action == "uploaded" and layer.retries >= 1
        status_gets = [s for s in proxy.seen if s.method == "GET" and "/blobs/uploads/" in s.path]
        assert status_gets  # asked the registry where to resume
        assert pull(Store(tmp_path / "p"), ref).digest == report.digest
    finally:
        proxy.stop()


def test_rich_progress_renders(registry, store: Store) -> None:
    from rich.console import Console

    from slimage.cli.registry import _RichProgress

    ref = f"{registry.host}/prog/img:{uuid.uuid4().hex[:6]}"
    make_image(store, ref, [{"r": random_bytes(50_000)}])
    buf = io.StringIO()
    prog = _RichProgress(pulling=False, console=Console(file=buf, force_terminal=True, width=100))
    with prog:
        push(store, ref, progress=prog)
    out = buf.getvalue()
    assert "Pushed" in out


def test_registry_api_host() -> None:
    assert registry_api_host("docker.io") == "registry-1.docker.io"
    assert registry_api_host("127.0.0.1:5000") == "127.0.0.1:5000"
