"""Real and fault-injecting servers for the registry tests, all on 127.0.0.1.

- `RegistryProc`: Debian's `docker-registry` (distribution 2.8) with a temp storage dir,
  optionally behind htpasswd Basic auth or token auth.
- `TokenServer`: a small token issuer (RS256 JWTs with an x5c chain, signed by `openssl`)
  that the real registry is configured to trust.
- `FaultProxy`: forwards to a registry and injects the faults we cannot cause for real
  (a 503, a reset halfway through a blob, wrong bytes, a stall, odd manifests, redirects).
"""

from __future__ import annotations

import base64
import http.client
import http.server
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REGISTRY_BIN = shutil.which("docker-registry")
USER = "alice"
PASSWORD = "S3cret-pa55word-xyzzy"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 15) -> None:
    deadline = time.time() + timeout
    p = urllib.parse.urlsplit(url)
    while time.time() < deadline:
        try:
            c = http.client.HTTPConnection(p.hostname, p.port, timeout=2)
            c.request("GET", p.path or "/")
            c.getresponse().read()
            c.close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open")


def self_signed(dirpath: Path, name: str = "tls") -> tuple[Path, Path]:
    """A server cert for 127.0.0.1 (SAN IP), its own CA."""
    cert, key = dirpath / f"{name}.crt", dirpath / f"{name}.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


class RegistryProc:
    """One `docker-registry serve` process; its log is kept for byte/request counting."""

    def __init__(
        self,
        workdir: Path,
        auth: dict[str, Any] | None = None,
        name: str = "plain",
        tls: tuple[Path, Path] | None = None,
    ):
        self.dir = workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.log_path = self.dir / "registry.log"
        storage = self.dir / "storage"
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": False}},
            "storage": {"filesystem": {"rootdirectory": str(storage)}, "delete": {"enabled": True}},
            "http": {"addr": self.host, "secret": "slimage-test-secret"},
        }
        if auth:
            config["auth"] = auth
        if tls:
            config["http"]["tls"] = {"certificate": str(tls[0]), "key": str(tls[1])}
        cfg = self.dir / "config.yml"
        cfg.write_text(json.dumps(config))  # YAML is a superset of JSON
        self._log = open(self.log_path, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [REGISTRY_BIN or "docker-registry", "serve", str(cfg)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        if tls:
            wait_port(self.port)
        else:
            wait_http(f"http://{self.host}/v2/")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def log_mark(self) -> int:
        return len(self.log())

    def completed_uploads(self, since: int = 0) -> list[str]:
        """Digests of blob uploads the registry finished (PUT ...?digest=), from its log."""
        out = []
        for line in self.log()[since:].splitlines():
            if "response completed" not in line or "http.request.method=PUT" not in line:
                continue
            if "http.response.status=201" not in line:
                continue
            m = re.search(
                r'uri="/v2/[^"]*/blobs/uploads/[^"]*[?&]digest=(sha256(?::|%3A)[0-9a-f]{64})', line
            )
            if m:
                out.append(m.group(1).replace("%3A", ":"))
        return out

    def requests(self, since: int = 0, method: str | None = None) -> list[str]:
        out = []
        for line in self.log()[since:].splitlines():
            if "response completed" not in line:
                continue
            m = re.search(r'http.request.method=(\w+) .*http.request.uri="([^"]*)"', line)
            if m and (method is None or m.group(1) == method):
                out.append(f"{m.group(1)} {m.group(2)}")
        return out

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self._log.close()


def htpasswd_file(path: Path) -> Path:
    out = subprocess.run(
        ["htpasswd", "-Bbn", USER, PASSWORD], check=True, capture_output=True, text=True
    ).stdout
    path.write_text(out)
    return path


# ---------------------------------------------------------------------------- token server


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """Issues registry tokens to alice (with her password), as the token spec describes."""

    def __init__(
        self, workdir: Path, service: str = "slimage-registry", issuer: str = "slimage-test"
    ):
        self.dir = workdir / "token"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.key = self.dir / "key.pem"
        self.cert = self.dir / "cert.pem"
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-keyout",
                str(self.key),
                "-out",
                str(self.cert),
                "-subj",
                "/CN=slimage-token",
            ],
            check=True,
            capture_output=True,
        )
        der = subprocess.run(
            ["openssl", "x509", "-in", str(self.cert), "-outform", "DER"],
            check=True,
            capture_output=True,
        ).stdout
        self.x5c = base64.b64encode(der).decode()
        self.service = service
        self.issuer = issuer
        self.requests: list[dict[str, Any]] = []
        self.lifetime = 300
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                q = urllib.parse.urlsplit(self.path)
                params = urllib.parse.parse_qs(q.query)
                authz = self.headers.get("Authorization", "")
                server.requests.append({"params": params, "authorization": authz})
                user = None
                if authz.startswith("Basic "):
                    u, _, p = base64.b64decode(authz[6:]).decode().partition(":")
                    if u == USER and p == PASSWORD:
                        user = u
                    else:
                        self.send_response(401)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                access = []
                for scope in params.get("scope", []):
                    parts = scope.split(":")
                    if len(parts) >= 3 and parts[0] == "repository" and user:
                        access.append(
                            {
                                "type": "repository",
                                "name": ":".join(parts[1:-1]),
                                "actions": parts[-1].split(","),
                            }
                        )
                token = server.sign(user or "", access)
                body = json.dumps({"token": token, "expires_in": server.lifetime}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.realm = f"http://127.0.0.1:{self.port}/token"
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def sign(self, subject: str, access: list[dict[str, Any]]) -> str:
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + self.lifetime,
            "nbf": now - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing_input = (
            f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        )
        sig = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(self.key)],
            input=signing_input.encode(),
            check=True,
            capture_output=True,
        ).stdout
        return f"{signing_input}.{_b64url(sig)}"

    def registry_auth(self) -> dict[str, Any]:
        return {
            "token": {
                "realm": self.realm,
                "service": self.service,
                "issuer": self.issuer,
                "rootcertbundle": str(self.cert),
            }
        }

    def stop(self) -> None:
        self.httpd.shutdown()


# ---------------------------------------------------------------------------- fault proxy


class _QuietServer(http.server.ThreadingHTTPServer):
    """Injected resets make handler threads fail by design; don't print their traces."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


@dataclass
class Fault:
    """What to do to requests whose path contains `match` (and method, if given)."""

    match: str
    kind: str  # status, reset_half, stall_half, corrupt, ignore_range, body, redirect, challenge
    method: str | None = None
    times: int = 1  # how many matching requests get the fault (-1: all)
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    content_type: str | None = None
    location: str | None = None
    hits: int = 0


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    host: str


class FaultProxy:
    """Forwards to UPSTREAM (a real registry), applying `faults` in order."""

    def __init__(self, upstream: str, inject_auth: str | None = None):
        self.upstream = upstream
        self.inject_auth = inject_auth
        self.faults: list[Fault] = []
        self.seen: list[Seen] = []
        self.bytes_served: dict[str, int] = {}
        self.stall = threading.Event()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                proxy.seen.append(
                    Seen(
                        self.command,
                        self.path,
                        dict(self.headers.items()),
                        self.headers.get("Host", ""),
                    )
                )
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fault = proxy._match(self.command, self.path)
                if fault and fault.kind == "drop":
                    # Read the request, then vanish: the client sees a dropped connection.
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.close_connection = True
                    return
                if fault and fault.kind == "status":
                    self._reply(fault.status, b"", fault.headers)
                    return
                if fault and fault.kind == "redirect":
                    self._reply(307, b"", {"Location": fault.location or self.path})
                    return
                if fault and fault.kind == "challenge":
                    self._reply(401, b"", {"WWW-Authenticate": fault.headers["WWW-Authenticate"]})
                    return
                status, headers, data = proxy._forward(self.command, self.path, self.headers, body)
                if fault and fault.kind == "ignore_range" and status == 206:
                    status, headers, data = proxy._forward(
                        self.command, self.path, self.headers, body, drop_range=True
                    )
                if fault and fault.kind == "body":
                    data = fault.body if fault.body is not None else data
                    headers = {
                        k: v for k, v in headers.items() if k.lower() != "docker-content-digest"
                    }
                    if fault.content_type:
                        headers["Content-Type"] = fault.content_type
                    headers.update(fault.headers)
                if fault and fault.kind == "corrupt" and data:
                    data = bytes([data[0] ^ 0xFF]) + data[1:]
                if fault and fault.kind in ("reset_half", "stall_half") and len(data) > 2:
                    half = len(data) // 2
                    self._head(status, headers, len(data))
                    self.wfile.write(data[:half])
                    self.wfile.flush()
                    proxy._count(self.path, half)
                    time.sleep(0.3)  # let the client read it: a RST discards unread data
                    if fault.kind == "stall_half":
                        proxy.stall.wait(120)
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.close_connection = True
                    return
                self._reply(
                    status, data if self.command != "HEAD" else b"", headers, head_len=len(data)
                )
                proxy._count(self.path, len(data) if self.command == "GET" else 0)

            def _head(self, status: int, headers: dict[str, str], length: int) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    if k.lower() not in (
                        "content-length",
                        "transfer-encoding",
                        "connection",
                        "date",
                        "server",
                    ):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(length))
                self.end_headers()

            def _reply(
                self, status: int, data: bytes, headers: dict[str, str], head_len: int | None = None
            ) -> None:
                self._head(status, headers, head_len if head_len is not None else len(data))
                if data:
                    self.wfile.write(data)

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle  # noqa: N815

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def add(self, fault: Fault) -> Fault:
        self.faults.append(fault)
        return fault

    def _match(self, method: str, path: str) -> Fault | None:
        for f in self.faults:
            if f.match in path and (f.method is None or f.method == method):
                if f.times == -1 or f.hits < f.times:
                    f.hits += 1
                    return f
        return None

    def _count(self, path: str, n: int) -> None:
        key = path.rsplit("/", 1)[-1]
        self.bytes_served[key] = self.bytes_served.get(key, 0) + n

    def _forward(
        self, method: str, path: str, headers: Any, body: bytes, drop_range: bool = False
    ) -> tuple[int, dict[str, str], bytes]:
        host, port = self.upstream.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        fwd = {k: v for k, v in headers.items() if k.lower() not in ("host", "connection")}
        if drop_range:
            fwd.pop("Range", None)
        if self.inject_auth:
            fwd["Authorization"] = self.inject_auth
        conn.request(method, path, body=body if body else None, headers=fwd)
        resp = conn.getresponse()
        data = resp.read()
        out = {k: v for k, v in resp.getheaders()}
        loc = out.get("Location")
        if loc and loc.startswith(f"http://{self.upstream}"):
            out["Location"] = loc.replace(f"http://{self.upstream}", f"http://{self.host}", 1)
        conn.close()
        return resp.status, out, data

    def blob_gets(self, digest: str) -> list[Seen]:
        return [s for s in self.seen if s.method == "GET" and s.path.endswith(f"/blobs/{digest}")]

    def stop(self) -> None:
        self.stall.set()
        self.httpd.shutdown()


def env_without_proxies() -> dict[str, str]:
    env = dict(os.environ)
    for k in list(env):
        if k.lower() in ("http_proxy", "https_proxy", "all_proxy"):
            env.pop(k)
    return env
