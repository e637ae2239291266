"""`slimage login` / `logout`: check credentials against the registry, then keep them
where Docker does (so `docker` and `slimage` share one login)."""

from __future__ import annotations

from collections.abc import Iterable

from slimage.errors import AuthError
from slimage.transports.registry import auth as _auth
from slimage.transports.registry.auth import Credentials
from slimage.transports.registry.client import RegistryClient


def verify_login(registry: str, creds: Credentials, *, insecure: Iterable[str] = ()) -> None:
    """Raise AuthError unless REGISTRY accepts CREDS (Basic, or a Bearer token grant)."""
    client = RegistryClient(registry, credentials=creds, insecure=insecure)
    try:
        client.ping()
        header = client._authorization(refresh=True)
        if header is None:
            return  # the registry asks for no authentication at all
        resp = client.transport.send("GET", client.url("/v2/"), {"Authorization": header})
        status = resp.status
        resp.close()
        if status == 401:
            raise AuthError(
                f"login to {registry} failed: unauthorized: incorrect username or password"
            )
        if status >= 400:
            raise AuthError(f"login to {registry} failed: {status}")
    finally:
        client.close()


def login(registry: str, username: str, secret: str, *, insecure: Iterable[str] = ()) -> str:
    """Verify and store the login; returns where the credentials were stored."""
    _auth.remember_secret(secret)
    creds = Credentials(username, secret)
    verify_login(registry, creds, insecure=insecure)
    return _auth.store_credentials(registry, creds)


def logout(registry: str) -> bool:
    return _auth.erase_credentials(registry)
