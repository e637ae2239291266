"""Fixtures for the registry tests: real registries (plain, htpasswd, token) started once
per session on 127.0.0.1, a fault proxy per test, an isolated Docker config dir, and
small images built in the store with the image core."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from slimage.store.store import Store
from tests.registry import servers
from tests.registry.helpers import run_cli


@pytest.fixture(scope="session")
def registry_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("registries")


def _need_registry() -> None:
    if servers.REGISTRY_BIN is None:
        pytest.skip("needs Debian's docker-registry (apt-get install docker-registry)")


@pytest.fixture(scope="session")
def registry(registry_workdir: Path) -> Iterator[servers.RegistryProc]:
    """A real distribution registry without auth."""
    _need_registry()
    reg = servers.RegistryProc(registry_workdir, name="plain")
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def auth_registry(registry_workdir: Path) -> Iterator[servers.RegistryProc]:
    """A real registry behind htpasswd (bcrypt) Basic auth; user alice."""
    _need_registry()
    if shutil.which("htpasswd") is None:
        pytest.skip("needs htpasswd (apache2-utils)")
    pw = servers.htpasswd_file(registry_workdir / "htpasswd")
    reg = servers.RegistryProc(
        registry_workdir,
        auth={"htpasswd": {"realm": "slimage-test", "path": str(pw)}},
        name="basic",
    )
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def token_server(registry_workdir: Path) -> Iterator[servers.TokenServer]:
    if shutil.which("openssl") is None:
        pytest.skip("needs openssl to make the token signing cert")
    ts = servers.TokenServer(registry_workdir)
    yield ts
    ts.stop()


@pytest.fixture(scope="session")
def token_registry(
    registry_workdir: Path, token_server: servers.TokenServer
) -> Iterator[servers.RegistryProc]:
    """A real registry configured for token auth, trusting our token server's cert."""
    _need_registry()
    reg = servers.RegistryProc(registry_workdir, auth=token_server.registry_auth(), name="token")
    yield reg
    reg.stop()


@pytest.fixture(scope="session")
def tls_registry(registry_workdir: Path) -> Iterator[tuple[servers.RegistryProc, Path]]:
    """A real registry speaking HTTPS with a self-signed cert for 127.0.0.1: (reg, cert)."""
    _need_registry()
    if shutil.which("openssl") is None:
        pytest.skip("needs openssl to make a TLS cert")
    cert, key = servers.self_signed(registry_workdir)
    reg = servers.RegistryProc(registry_workdir, name="tls", tls=(cert, key))
    yield reg, cert
    reg.stop()


@pytest.fixture
def fault_proxy(registry: servers.RegistryProc) -> Iterator[servers.FaultProxy]:
    proxy = servers.FaultProxy(registry.host)
    yield proxy
    proxy.stop()


@pytest.fixture(autouse=True)
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Never read or write the real ~/.docker: every test gets its own DOCKER_CONFIG."""
    d = tmp_path / "docker-config"
    d.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(d))
    monkeypatch.setenv("SLIMAGE_RETRY_BACKOFF", "0.05")
    return d


@pytest.fixture
def store(store_root: Path) -> Store:
    return Store(store_root)


@pytest.fixture
def cli(store_root: Path):  # type: ignore[no-untyped-def]
    def run(*args: str, **kw):  # type: ignore[no-untyped-def]
        return run_cli(*args, store_root=store_root, **kw)

    return run
