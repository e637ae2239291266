"""Authentication against real registries (htpasswd Basic, token auth), Docker's config
file and credential helpers, and the promise that secrets never show up anywhere."""

from __future__ import annotations

import base64
import json
import os
import stat
import time
import uuid
from pathlib import Path

import pytest

from slimage.errors import AuthError
from slimage.store.store import Store
from slimage.transports.registry import Credentials, pull, push
from slimage.transports.registry.auth import (
    get_credentials,
    parse_challenges,
    redact,
    store_credentials,
)
from slimage.transports.registry.client import RegistryClient
from tests.registry.helpers import make_image, random_bytes
from tests.registry.servers import PASSWORD, USER

B64 = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def _no_secret(*texts: str) -> None:
    for t in texts:
        assert PASSWORD not in t
        assert B64 not in t


def test_parse_challenges() -> None:
    chs = parse_challenges(
        'Bearer realm="https://auth.example/token",service="reg",scope="repository:a/b:pull,push", '
        'Basic realm="x"'
    )
    assert chs[0].scheme == "bearer"
    assert chs[0].params == {
        "realm": "https://auth.example/token",
        "service": "reg",
        "scope": "repository:a/b:pull,push",
    }
    assert chs[1].scheme == "basic" and chs[1].params["realm"] == "x"


def test_config_json_round_trip_and_mode(docker_config: Path) -> None:
    where = store_credentials("127.0.0.1:5999", Credentials(USER, PASSWORD))
    assert where == str(docker_config / "config.json")
    data = json.loads((docker_config / "config.json").read_text())
    assert data["auths"]["127.0.0.1:5999"]["auth"] == B64
    assert stat.S_IMODE(os.stat(docker_config / "config.json").st_mode) == 0o600
    creds = get_credentials("127.0.0.1:5999")
    assert creds == Credentials(USER, PASSWORD)
    assert PASSWORD not in repr(creds)
    # Docker's historical key shapes are understood.
    (docker_config / "config.json").write_text(
        json.dumps({"auths": {"https://127.0.0.1:5998/v1/": {"auth": B64}}})
    )
    assert get_credentials("127.0.0.1:5998") == Credentials(USER, PASSWORD)


def test_credential_helper_protocol(docker_config: Path, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A real docker-credential-* executable: get/store/erase over stdin/stdout."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    db = tmp_path / "helper-db.json"
    helper = bindir / "docker-credential-testhelper"
    helper.write_text(
        f"""#!/usr/bin/env python3
import json, sys
db = {str(db)!r}
try:
    data = json.load(open(db))
except FileNotFoundError:
    data = {{}}
verb = sys.argv[1]
payload = sys.stdin.read()
if verb == "store":
    obj = json.loads(payload)
    data[obj["ServerURL"]] = obj
    json.dump(data, open(db, "w"))
elif verb == "get":
    key = payload.strip()
    if key not in data:
        print("credentials not found in native keychain")
        sys.exit(1)
    print(json.dumps(data[key]))
elif verb == "erase":
    data.pop(payload.strip(), None)
    json.dump(data, open(db, "w"))
"""
    )
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    (docker_config / "config.json").write_text(json.dumps({"credsStore": "testhelper"}))
    assert get_credentials("127.0.0.1:5997") is None
    where = store_credentials("127.0.0.1:5997", Credentials(USER, PASSWORD))
    assert where == "docker-credential-testhelper"
    assert PASSWORD not in (docker_config / "config.json").read_text()
    assert get_credentials("127.0.0.1:5997") == Credentials(USER, PASSWORD)
    # credHelpers beats credsStore for its host.
    (docker_config / "config.json").write_text(
        json.dumps({"credsStore": "missing", "credHelpers": {"127.0.0.1:5997": "testhelper"}})
    )
    assert get_credentials("127.0.0.1:5997") == Credentials(USER, PASSWORD)


def test_redact_scrubs_known_secrets() -> None:
    Credentials(USER, PASSWORD).basic_header()
    from slimage.transports.registry.auth import remember_secret

    remember_secret(PASSWORD)
    text = redact(f"failed with {PASSWORD} and Basic {B64} and Bearer abcdefghijklmnop")
    _no_secret(text)
    assert "abcdefghijklmnop" not in text


def test_basic_auth_registry_push_pull(auth_registry, store: Store, tmp_path: Path) -> None:
    ref = f"{auth_registry.host}/team/basic:{uuid.uuid4().hex[:6]}"
    make_image(store, ref, [{"f": random_bytes(50_000)}])
    with pytest.raises(AuthError, match="authentication required") as exc:
        push(store, ref)
    _no_secret(str(exc.value))
    store_credentials(auth_registry.host, Credentials(USER, "wrong-password-123"))
    with pytest.raises(AuthError) as exc:
        push(store, ref)
    assert "wrong-password-123" not in str(exc.value)
    store_credentials(auth_registry.host, Credentials(USER, PASSWORD))
    assert push(store, ref).count("uploaded") == 2
    assert pull(Store(tmp_path / "p"), ref).count("downloaded") == 2


def test_token_auth_registry(token_registry, token_server, store: Store, tmp_path: Path) -> None:
    repo = f"{token_registry.host}/team/tok{uuid.uuid4().hex[:6]}"
    make_image(store, repo + ":1", [{"f": random_bytes(80_000)}, {"g": b"g"}])
    # Anonymous: the token server grants nothing, the registry refuses.
    with pytest.raises(AuthError):
        push(store, repo + ":1")
    store_credentials(token_registry.host, Credentials(USER, PASSWORD))
    before = len(token_server.requests)
    report = push(store, repo + ":1")
    assert report.count("uploaded") == 3
    fetched = token_server.requests[before:]
    # One token for the whole push (cached across HEAD/POST/PUT on 4 threads).
    assert len(fetched) == 1
    scopes = fetched[0]["params"]["scope"]
    assert f"repository:{repo.split('/', 1)[1]}:pull,push" in scopes
    assert fetched[0]["params"]["service"] == ["slimage-registry"]
    other = Store(tmp_path / "t")
    before = len(token_server.requests)
    pulled = pull(other, repo + ":1")
    assert pulled.digest == report.digest
    assert token_server.requests[before]["params"]["scope"] == [
        f"repository:{repo.split('/', 1)[1]}:pull"
    ]


def test_token_is_reused_until_expiry(token_registry, token_server) -> None:
    from slimage.transports.registry.auth import store_credentials as save

    save(token_registry.host, Credentials(USER, PASSWORD))
    client = RegistryClient(token_registry.host, scopes=["repository:team/x:pull"])
    before = len(token_server.requests)
    for _ in range(5):
        client.request("GET", "/v2/team/x/tags/list").close()
    assert len(token_server.requests) - before == 1
    assert client.tokens.fetches == 1


def test_cli_login_logout_and_no_secret_leak(
    auth_registry, cli, docker_config: Path, store_root: Path
) -> None:
    host = auth_registry.host
    bad = cli("login", host, "-u", USER, "--password-stdin", input="nope-wrong-pass\n")
    assert bad.returncode != 0
    assert "Traceback" not in bad.stderr
    assert "nope-wrong-pass" not in bad.stdout + bad.stderr
    good = cli("login", host, "-u", USER, "--password-stdin", input=PASSWORD + "\n")
    assert good.returncode == 0, good.stderr
    assert "Login Succeeded" in good.stdout
    config = json.loads((docker_config / "config.json").read_text())
    assert config["auths"][host]["auth"] == B64

    ref = f"{host}/team/cli:{uuid.uuid4().hex[:6]}"
    make_image(Store(store_root), ref, [{"x": random_bytes(20_000)}])
    outputs = []
    for args in (("push", ref), ("push", "--json", ref), ("pull", "--json", ref), ("pull", ref)):
        res = cli(*args)
        assert res.returncode == 0, res.stderr
        outputs += [res.stdout, res.stderr]
    pushed = json.loads(outputs[2])
    assert {b["action"] for b in pushed["blobs"]} == {"skipped"}
    # A failure message (unknown repo tag) must not leak either.
    missing = cli("pull", f"{host}/team/none:zzz")
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
    outputs += [missing.stdout, missing.stderr]
    # -p is accepted (with Docker's warning) and never echoed.
    warn = cli("login", host, "-u", USER, "-p", PASSWORD)
    assert warn.returncode == 0 and "insecure" in warn.stderr
    outputs += [warn.stdout, warn.stderr, auth_registry.log()]
    _no_secret(*outputs)

    out = cli("logout", host)
    assert out.returncode == 0 and "Removing login credentials" in out.stdout
    assert host not in json.loads((docker_config / "config.json").read_text()).get("auths", {})


def test_expired_token_is_replaced(token_registry, token_server) -> None:
    """Tokens are kept until they expire, then fetched again (before the registry says 401)."""
    store_credentials(token_registry.host, Credentials(USER, PASSWORD))
    saved = token_server.lifetime
    token_server.lifetime = 2  # cached for 1 s (refreshed early, never used past expiry)
    try:
        client = RegistryClient(token_registry.host, scopes=["repository:team/exp:pull"])
        before = len(token_server.requests)
        client.request("GET", "/v2/team/exp/tags/list").close()
        client.request("GET", "/v2/team/exp/tags/list").close()
        assert len(token_server.requests) - before == 1
        time.sleep(1.3)
        mark = token_registry.log_mark()
        resp = client.request("GET", "/v2/team/exp/tags/list")
        assert resp.status == 404  # authorised: the repository simply does not exist
        resp.close()
        assert len(token_server.requests) - before == 2
        assert "http.response.status=401" not in token_registry.log()[mark:]
    finally:
        token_server.lifetime = saved
