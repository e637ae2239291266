"""Registry credentials and the two auth schemes of the distribution API.

Credentials live where Docker keeps them (`$DOCKER_CONFIG/config.json`, `auths`,
`credHelpers`, `credsStore`), so `slimage login` and `docker login` share one set. The
Bearer flow follows the token spec: a 401 names a realm, we ask the realm for a token
scoped to `repository:NAME:ACTIONS`, and keep it until it expires.

Secrets never leave this module in readable form: every secret loaded or typed is added to
a process-wide set, and `redact()` scrubs them (and their Basic-auth encodings) out of any
text that may reach a message, a log or `--json`.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slimage.errors import AuthError, UsageError

DOCKER_HUB_KEY = "https://index.docker.io/v1/"
DOCKER_HUB_HOSTS = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.docker.io"}

# ---------------------------------------------------------------------------- redaction

_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()


def remember_secret(*values: str | None) -> None:
    """Register secrets so that `redact` can scrub them from any text we print."""
    with _SECRETS_LOCK:
        for v in values:
            if v and len(v) >= 3:
                _SECRETS.add(v)


def redact(text: str) -> str:
    """TEXT with every known secret (and Basic/Bearer header values) replaced by ***."""
    with _SECRETS_LOCK:
        secrets = sorted(_SECRETS, key=len, reverse=True)
    for s in secrets:
        if s in text:
            text = text.replace(s, "***")
    return re.sub(r"(?i)\b(basic|bearer)\s+[A-Za-z0-9._~+/=-]{8,}", r"\1 ***", text)


@dataclass(frozen=True)
class Credentials:
    username: str
    secret: str

    @property
    def is_identity_token(self) -> bool:
        """Docker's credential helpers return `<token>` as the user for OAuth refresh tokens."""
        return self.username == "<token>"

    def basic_header(self) -> str:
        raw = f"{self.username}:{self.secret}".encode()
        value = base64.b64encode(raw).decode()
        remember_secret(value)
        return "Basic " + value

    def __repr__(self) -> str:  # never show the secret, even in a debugger dump
        return f"Credentials(username={self.username!r}, secret='***')"


# ---------------------------------------------------------------------------- docker config


def config_dir() -> Path:
    env = os.environ.get("DOCKER_CONFIG")
    if env:
        return Path(env)
    return Path(os.path.expanduser("~")) / ".docker"


def config_path() -> Path:
    return config_dir() / "config.json"


def server_key(registry: str) -> str:
    """The key Docker uses in config.json for REGISTRY (Hub has its historical URL)."""
    host = normalize_host(registry)
    return DOCKER_HUB_KEY if host in DOCKER_HUB_HOSTS else host


def normalize_host(text: str) -> str:
    """`https://host:5000/v1/` -> `host:5000`: config keys come in many historical shapes."""
    t = text.strip()
    if "://" in t:
        t = urllib.parse.urlsplit(t).netloc or t
    t = t.split("/", 1)[0]
    return t.lower()


def load_config() -> dict[str, Any]:
    path = config_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise AuthError(f"{path}: not a valid Docker config file ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise AuthError(f"{path}: not a valid Docker config file (not a JSON object)")
    return data


def save_config(data: dict[str, Any]) -> None:
    """Atomic write with mode 0600: the file may hold base64 passwords."""
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".config.json.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent="\t")
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _helper_for(data: dict[str, Any], key: str) -> str | None:
    helpers = data.get("credHelpers") or {}
    if isinstance(helpers, dict):
        for k, v in helpers.items():
            if normalize_host(k) == normalize_host(key) or k == key:
                return str(v)
    store = data.get("credsStore")
    return str(store) if store else None


def _run_helper(helper: str, verb: str, payload: str) -> str:
    exe = shutil.which(f"docker-credential-{helper}")
    if exe is None:
        raise AuthError(f"credential helper docker-credential-{helper} not found in PATH")
    try:
        res = subprocess.run(
            [exe, verb], input=payload.encode(), capture_output=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AuthError(
            f"credential helper docker-credential-{helper} {verb} failed: {exc}"
        ) from None
    out = res.stdout.decode(errors="replace")
    if res.returncode != 0:
        msg = (out or res.stderr.decode(errors="replace")).strip()
        if "credentials not found" in msg.lower():
            return ""
        raise AuthError(
            f"credential helper docker-credential-{helper} {verb} failed: {redact(msg)[:200]}"
        )
    return out


def get_credentials(registry: str) -> Credentials | None:
    """What Docker would send to REGISTRY: credHelpers, then credsStore, then `auths`."""
    data = load_config()
    key = server_key(registry)
    helper = _helper_for(data, key)
    if helper:
        out = _run_helper(helper, "get", key)
        if out.strip():
            try:
                obj = json.loads(out)
                creds = Credentials(str(obj["Username"]), str(obj["Secret"]))
            except (ValueError, KeyError, TypeError):
                raise AuthError(
                    f"credential helper docker-credential-{helper} returned malformed output"
                ) from None
            remember_secret(creds.secret)
            return creds
    auths = data.get("auths") or {}
    if not isinstance(auths, dict):
        return None
    want = normalize_host(key)
    for k, entry in auths.items():
        if (k == key or normalize_host(k) == want) and isinstance(entry, dict):
            found = _decode_auth_entry(entry, k)
            if found:
                return found
    return None


def _decode_auth_entry(entry: dict[str, Any], key: str) -> Credentials | None:
    if entry.get("identitytoken"):
        token = str(entry["identitytoken"])
        remember_secret(token)
        return Credentials("<token>", token)
    if entry.get("auth"):
        try:
            raw = base64.b64decode(str(entry["auth"])).decode()
            user, secret = raw.split(":", 1)
        except (ValueError, UnicodeDecodeError):
            raise AuthError(f"{config_path()}: malformed auth entry for {key}") from None
        remember_secret(secret, str(entry["auth"]))
        return Credentials(user, secret)
    if entry.get("username") and entry.get("password"):
        remember_secret(str(entry["password"]))
        return Credentials(str(entry["username"]), str(entry["password"]))
    return None


def store_credentials(registry: str, creds: Credentials) -> str:
    """Save CREDS as Docker would: in the helper if one is configured, else in `auths`.
    Returns where they went, for the message."""
    data = load_config()
    key = server_key(registry)
    helper = _helper_for(data, key)
    if helper:
        payload = json.dumps({"ServerURL": key, "Username": creds.username, "Secret": creds.secret})
        _run_helper(helper, "store", payload)
        # Docker leaves an empty entry so `docker info`-style listings know the login.
        data.setdefault("auths", {}).setdefault(key, {})
        save_config(data)
        return f"docker-credential-{helper}"
    auth = base64.b64encode(f"{creds.username}:{creds.secret}".encode()).decode()
    remember_secret(auth)
    data.setdefault("auths", {})[key] = {"auth": auth}
    save_config(data)
    return str(config_path())


def erase_credentials(registry: str) -> bool:
    """Forget the login for REGISTRY. Returns whether anything was there."""
    data = load_config()
    key = server_key(registry)
    found = False
    helper = _helper_for(data, key)
    if helper:
        try:
            _run_helper(helper, "erase", key)
            found = True
        except AuthError:
            pass
    auths = data.get("auths") or {}
    want = normalize_host(key)
    for k in list(auths):
        if k == key or normalize_host(k) == want:
            del auths[k]
            found = True
    if found:
        save_config(data)
    return found


# ---------------------------------------------------------------------------- challenges


@dataclass(frozen=True)
class Challenge:
    scheme: str  # "basic" or "bearer"
    params: dict[str, str]


_PARAM_RE = re.compile(r'\s*([A-Za-z0-9_.-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


def parse_challenges(header: str) -> list[Challenge]:
    """Parse `WWW-Authenticate: Bearer realm="..",service="..",scope=".."` (or Basic)."""
    out: list[Challenge] = []
    text = header.strip()
    while text:
        m = re.match(r"([A-Za-z][A-Za-z0-9-]*)\s*", text)
        if not m:
            break
        scheme = m.group(1).lower()
        text = text[m.end() :]
        params: dict[str, str] = {}
        while True:
            pm = _PARAM_RE.match(text)
            if not pm or pm.end() == 0:
                break
            # A bare word followed by a space starts the next challenge, not a param.
            params[pm.group(1).lower()] = (
                pm.group(2).replace('\\"', '"') if pm.group(2) is not None else pm.group(3)
            )
            text = text[pm.end() :]
        out.append(Challenge(scheme, params))
        text = text.lstrip(", ")
    return out


def is_loopback(host: str) -> bool:
    h = host.strip("[]").lower()
    return h in ("localhost", "::1") or h.startswith("127.")


@dataclass
class _Token:
    value: str
    expires: float


class TokenCache:
    """Bearer tokens by (realm, service, scopes), valid until their expiry (minus slack)."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str, str], _Token] = {}
        self._lock = threading.Lock()
        self.fetches = 0

    def get(self, key: tuple[str, str, str]) -> str | None:
        with self._lock:
            tok = self._tokens.get(key)
            if tok and tok.expires > time.time():
                return tok.value
            return None

    def put(self, key: tuple[str, str, str], value: str, lifetime: float) -> None:
        remember_secret(value)
        with self._lock:
            # Refresh a little early so a token never expires mid-request.
            self._tokens[key] = _Token(value, time.time() + max(lifetime - 10, lifetime / 2))


def check_realm(realm: str, registry_scheme: str, insecure: bool) -> urllib.parse.SplitResult:
    """Refuse realms that would leak credentials: another scheme, or plain HTTP off loopback."""
    try:
        parts = urllib.parse.urlsplit(realm)
    except ValueError:
        raise AuthError(f"auth realm {realm!r} is not a URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AuthError(
            f"auth realm {realm!r} uses scheme {parts.scheme or 'none'!r}; only https "
            "(or http on loopback) is allowed"
        )
    if parts.scheme == "http" and not (insecure or is_loopback(parts.hostname)):
        raise AuthError(
            f"auth realm {realm!r} is plain http on another host than loopback; refusing to "
            "send credentials there (use --insecure HOST if you must)"
        )
    if registry_scheme == "https" and parts.scheme != "https" and not insecure:
        raise AuthError(
            f"auth realm {realm!r} downgrades the registry's https to {parts.scheme}; refusing"
        )
    return parts


def token_url(realm: str, service: str | None, scopes: list[str]) -> str:
    query = []
    if service:
        query.append(("service", service))
    for s in scopes:
        query.append(("scope", s))
    sep = "&" if "?" in realm else "?"
    return realm + (sep + urllib.parse.urlencode(query) if query else "")


def parse_token_response(body: bytes, realm: str) -> tuple[str, float]:
    """(token, lifetime seconds) from a token server's JSON answer."""
    from slimage.oci.safejson import load_json  # bounded: the token server is remote input

    obj = load_json(body, f"token server {realm}", max_bytes=1 << 20, error=AuthError)
    if not isinstance(obj, dict):
        raise AuthError(f"token server {realm} returned invalid JSON")
    token = obj.get("token") or obj.get("access_token")
    if not isinstance(token, str) or not token:
        raise AuthError(f"token server {realm} returned no token")
    try:
        lifetime = float(obj.get("expires_in") or 60)
    except (TypeError, ValueError):
        lifetime = 60.0
    lifetime = max(lifetime, 1.0)
    remember_secret(token)
    if isinstance(obj.get("refresh_token"), str):
        remember_secret(obj["refresh_token"])
    return token, lifetime


def read_password_stdin(stdin: Any) -> str:
    data = stdin.read()
    if isinstance(data, bytes):
        data = data.decode()
    secret = data.rstrip("\r\n")
    if not secret:
        raise UsageError("--password-stdin: no password on standard input")
    return secret
