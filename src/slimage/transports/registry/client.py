"""HTTP for the OCI distribution API: persistent connections, auth, retries, redirects.

Only the standard library's `http.client` is used. It is enough: we need keep-alive
connections (a pool per origin, shared by the worker threads that move blobs), exact
control of headers on redirects (Authorization must never reach another host), and
`sendfile` for uploads, which higher-level clients hide.

`RegistryClient` speaks for one registry and one set of scopes (`repository:NAME:pull`,
`...:pull,push`); it pings `/v2/` once to learn the scheme (https, or plain http on
loopback and `--insecure` hosts) and the auth challenge, then attaches Basic or Bearer
credentials to every request and retries what is worth retrying.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import random
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from slimage import __version__
from slimage.errors import AuthError, RegistryError
from slimage.oci.safejson import load_json
from slimage.transports.registry import auth as _auth
from slimage.transports.registry.auth import Credentials, TokenCache, redact

USER_AGENT = f"slimage/{__version__}"
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 10
# Errors after which the same request may succeed: the peer dropped or reset the
# connection, or a pooled keep-alive connection had gone stale.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    http.client.IncompleteRead,
    http.client.BadStatusLine,
    ssl.SSLEOFError,
)


class RedirectError(RegistryError):
    """Too many redirects, a loop, or a redirect to a scheme we will not follow."""


class RegistryHTTPError(RegistryError):
    """The registry answered with an error status; `status` and `code` say which."""

    def __init__(self, message: str, status: int, code: str = ""):
        super().__init__(message)
        self.status = status
        self.code = code


class TransientError(RegistryError):
    """Retryable failure that survived every retry."""


class DeadlineError(RegistryError):
    """A request (headers and body) took longer than its overall deadline. Not retried:
    a server that trickles bytes will trickle them again."""


class BodyTooLargeError(RegistryError):
    """A response body over the limit its reader set (a manifest over 4 MiB, ...)."""


class _Deadline:
    """The overall time limit of one request, enforced from outside the reading thread.

    A per-read socket timeout cannot bound a request: a server that sends one byte every
    few seconds satisfies every read and never finishes. So a timer cuts the connection
    (shutdown, which wakes a thread blocked in recv or send) when the budget is spent,
    and the reader turns the resulting EOF or socket error into `DeadlineError`."""

    def __init__(self, conn: Any, seconds: float, what: str):
        self.conn = conn
        self.seconds = seconds
        self.what = what
        self.expired = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self.expired = True
        with contextlib.suppress(Exception):
            self.conn.sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()

    def error(self) -> DeadlineError:
        return DeadlineError(
            f"{self.what}: no complete answer within {self.seconds:g} s "
            "(the registry is too slow or stalled; SLIMAGE_REGISTRY_TIMEOUT sets the limit)"
        )


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int

    @property
    def netloc(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"

    @classmethod
    def of(cls, url: str) -> Origin:
        p = urllib.parse.urlsplit(url)
        if p.scheme not in ("http", "https") or not p.hostname:
            raise RedirectError(f"refusing URL with scheme {p.scheme!r}: {strip_query(url)}")
        return cls(p.scheme, p.hostname, p.port or (443 if p.scheme == "https" else 80))


def strip_query(url: str) -> str:
    """URLs as shown in messages: upload locations carry opaque state in the query."""
    return url.split("?", 1)[0]


@dataclass
class FileBody:
    """A request body read from a file region, sent with sendfile when possible."""

    path: str
    offset: int
    length: int


Body = bytes | FileBody | None
ProgressFn = Callable[[int], None]


class Response:
    """An HTTP response bound to the pooled connection it came on."""

    def __init__(
        self,
        transport: Transport,
        origin: Origin,
        conn: Any,
        raw: Any,
        url: str,
        deadline: _Deadline | None = None,
    ):
        self._transport = transport
        self._origin = origin
        self._conn = conn
        self.raw: http.client.HTTPResponse = raw
        self.status: int = raw.status
        self.url = url
        self._released = False
        self._deadline = deadline

    def _check_deadline(self) -> None:
        if self._deadline is not None and self._deadline.expired:
            self.close()
            raise self._deadline.error()

    def read1(self, n: int) -> bytes:
        """At most one recv of the body (see `_download`); b"" at its end. Raises
        `DeadlineError` when the request's deadline cut the connection."""
        try:
            data = self.raw.read1(n)
        except BaseException:
            self._check_deadline()
            raise
        if not data:
            self._check_deadline()
        return data

    def header(self, name: str, default: str = "") -> str:
        return self.raw.getheader(name, default) or default

    def read_all(self, limit: int, what: str) -> bytes:
        """The whole body, refusing one larger than LIMIT before reading it all."""
        declared = self.header("Content-Length")
        if declared.isdigit() and int(declared) > limit:
            self.close(reuse=False)
            raise BodyTooLargeError(
                f"{what} is {int(declared)} bytes, over the {limit // (1024 * 1024)} MiB limit"
            )
        try:
            data = self.raw.read(limit + 1)
        except (OSError, http.client.HTTPException) as exc:
            # A stall (the per-read timeout), a reset, a body cut short: one line, not a
            # traceback; the deadline says so when it was the cause.
            self._check_deadline()
            self.close()
            partial = getattr(exc, "partial", None)
            got = f" after {len(partial)} bytes" if isinstance(partial, bytes) else ""
            raise RegistryError(
                f"{what}: the connection failed while reading the body{got} "
                f"({type(exc).__name__}{': ' + str(exc) if str(exc) else ''})"
            ) from None
        self._check_deadline()
        if len(data) > limit:
            self.close(reuse=False)
            raise BodyTooLargeError(f"{what} is over the {limit // (1024 * 1024)} MiB limit")
        if declared.isdigit() and len(data) < int(declared):
            self.close()
            raise RegistryError(f"{what}: the body ended after {len(data)} of {declared} bytes")
        self.release()
        return data

    def release(self) -> None:
        """Done with the body: return the connection to the pool if it can be reused."""
        if self._released:
            return
        self._released = True
        if self._deadline is not None:
            self._deadline.cancel()
            if self._deadline.expired:
                self._transport.checkin(self._origin, self._conn, False)
                return
        reuse = False
        if not self.raw.will_close:
            try:
                if not self.raw.isclosed():
                    self.raw.read(1 << 16)  # drain a short unread tail (error bodies)
                reuse = self.raw.isclosed()
            except (OSError, http.client.HTTPException):
                reuse = False
        self._transport.checkin(self._origin, self._conn, reuse)

    def close(self, reuse: bool = False) -> None:
        if self._released:
            return
        self._released = True
        if self._deadline is not None:
            self._deadline.cancel()
        with contextlib.suppress(Exception):
            self.raw.close()
        self._transport.checkin(self._origin, self._conn, False)

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.release()
        else:
            self.close()


class Transport:
    """Keep-alive connections per origin, shared safely between worker threads."""

    def __init__(
        self,
        *,
        insecure_hosts: Iterable[str] = (),
        timeout: float | None = None,
        deadline: float | None = None,
        min_rate: float | None = None,
    ):
        self.insecure_hosts = {_auth.normalize_host(h) for h in insecure_hosts}
        # Per socket operation (connect, one recv, one send).
        self.timeout = timeout if timeout is not None else _env_float("SLIMAGE_HTTP_TIMEOUT", 60)
        # Per request, headers and body: DEADLINE seconds, plus the time the expected
        # body takes at MIN_RATE bytes/s, so a large layer on a slow link still finishes
        # and a trickling server is still cut off.
        self.deadline = (
            deadline if deadline is not None else _env_float("SLIMAGE_REGISTRY_TIMEOUT", 300)
        )
        self.min_rate = (
            min_rate if min_rate is not None else _env_float("SLIMAGE_REGISTRY_MIN_RATE", 100_000)
        )
        self._idle: dict[Origin, list[Any]] = {}
        self._contexts: dict[bool, ssl.SSLContext] = {}
        self._busy: set[Any] = set()
        self._aborted = False
        self._lock = threading.Lock()
        self.requests = 0

    def is_insecure(self, origin: Origin) -> bool:
        names = {origin.host.lower(), f"{origin.host}:{origin.port}".lower(), origin.netloc}
        return bool(names & self.insecure_hosts)

    def _ssl_context(self, origin: Origin) -> ssl.SSLContext:
        """One context per trust mode: loading the CA bundle costs ~10 ms each time."""
        insecure = self.is_insecure(origin)
        with self._lock:
            ctx = self._contexts.get(insecure)
            if ctx is None:
                ctx = ssl.create_default_context()
                if insecure:
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                self._contexts[insecure] = ctx
        return ctx

    def _new_conn(self, origin: Origin) -> Any:
        conn: http.client.HTTPConnection
        if origin.scheme == "https":
            conn = http.client.HTTPSConnection(
                origin.host, origin.port, timeout=self.timeout, context=self._ssl_context(origin)
            )
        else:
            conn = http.client.HTTPConnection(origin.host, origin.port, timeout=self.timeout)
        conn.connect()
        with contextlib.suppress(OSError):
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def checkout(self, origin: Origin) -> tuple[Any, bool]:
        with self._lock:
            idle = self._idle.get(origin)
            if idle:
                conn = idle.pop()
                self._busy.add(conn)
                return conn, True
        conn = self._new_conn(origin)
        with self._lock:
            self._busy.add(conn)
        return conn, False

    def checkin(self, origin: Origin, conn: Any, reuse: bool) -> None:
        with self._lock:
            self._busy.discard(conn)
            if reuse and not self._aborted:
                self._idle.setdefault(origin, []).append(conn)
                return
        with contextlib.suppress(Exception):
            conn.close()

    def abort(self) -> None:
        """Cut every connection in use, so threads blocked in recv/send wake up now
        (Ctrl-C, or a failed transfer cancelling its siblings)."""
        with self._lock:
            self._aborted = True
            busy = list(self._busy)
        for conn in busy:
            with contextlib.suppress(Exception):
                conn.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with self._lock:
            for conns in self._idle.values():
                for c in conns:
                    with contextlib.suppress(Exception):
                        c.close()
            self._idle.clear()

    def send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: Body = None,
        progress: ProgressFn | None = None,
        expect: int = 0,
    ) -> Response:
        """One request on a pooled connection. A stale pooled connection is replaced once.

        The request gets an overall deadline (see `_Deadline`): `self.deadline` seconds
        plus the body sent and the EXPECTed response bytes at `self.min_rate`."""
        origin = Origin.of(url)
        parts = urllib.parse.urlsplit(url)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        sending = len(body) if isinstance(body, bytes) else body.length if body else 0
        budget = self.deadline + (sending + max(expect, 0)) / max(self.min_rate, 1.0)
        for attempt in (0, 1):
            conn, reused = self.checkout(origin)
            deadline = _Deadline(conn, budget, f"{method} {strip_query(url)}")
            try:
                self.requests += 1
                self._write_request(conn, method, target, origin, headers, body, progress)
                raw = conn.getresponse()
            except TRANSIENT_ERRORS:
                deadline.cancel()
                with contextlib.suppress(Exception):
                    conn.close()
                self._checkin_dead(conn)
                if deadline.expired:
                    raise deadline.error() from None
                if reused and attempt == 0:
                    continue  # the keep-alive connection died while idle; not a real failure
                raise
            except BaseException:
                deadline.cancel()
                with contextlib.suppress(Exception):
                    conn.close()
                self._checkin_dead(conn)
                if deadline.expired:
                    raise deadline.error() from None
                raise
            return Response(self, origin, conn, raw, url, deadline)
        raise AssertionError("unreachable")

    def _checkin_dead(self, conn: Any) -> None:
        with self._lock:
            self._busy.discard(conn)

    @staticmethod
    def _write_request(
        conn: Any,
        method: str,
        target: str,
        origin: Origin,
        headers: dict[str, str],
        body: Body,
        progress: ProgressFn | None,
    ) -> None:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", origin.netloc)
        conn.putheader("User-Agent", USER_AGENT)
        length = 0
        if isinstance(body, bytes):
            length = len(body)
        elif isinstance(body, FileBody):
            length = body.length
        if body is not None or method in ("PUT", "POST", "PATCH"):
            conn.putheader("Content-Length", str(length))
        for k, v in headers.items():
            conn.putheader(k, v)
        conn.endheaders()
        if isinstance(body, bytes) and body:
            conn.sock.sendall(body)
            if progress:
                progress(len(body))
        elif isinstance(body, FileBody) and body.length:
            _send_file(conn.sock, body, progress)


def _send_file(sock: socket.socket, body: FileBody, progress: ProgressFn | None) -> None:
    step = 8 << 20
    with open(body.path, "rb") as fh:
        if isinstance(sock, ssl.SSLSocket):
            fh.seek(body.offset)
            left = body.length
            while left:
                chunk = fh.read(min(left, 1 << 20))
                if not chunk:
                    raise RegistryError(f"{body.path}: file shrank while uploading")
                sock.sendall(chunk)
                left -= len(chunk)
                if progress:
                    progress(len(chunk))
            return
        offset, left = body.offset, body.length
        while left:
            n = min(left, step)
            sent = sock.sendfile(fh, offset, n)
            if sent <= 0:
                raise RegistryError(f"{body.path}: file shrank while uploading")
            offset += sent
            left -= sent
            if progress:
                progress(sent)


def registry_api_host(registry: str) -> str:
    """Docker Hub's API lives on registry-1.docker.io; every other registry is itself."""
    host = _auth.normalize_host(registry)
    return "registry-1.docker.io" if host in _auth.DOCKER_HUB_HOSTS else registry


def error_from_response(resp: Response, what: str) -> RegistryHTTPError:
    """A one-line error from the registry's `{"errors": [...]}` body (secrets scrubbed)."""
    code = ""
    detail = ""
    try:
        body = resp.raw.read(1 << 16)
    except (OSError, http.client.HTTPException):
        body = b""
    resp.close()
    with contextlib.suppress(RegistryError, TypeError, AttributeError, IndexError, KeyError):
        obj = load_json(body, "error body", max_bytes=1 << 16, error=RegistryError)
        err = (obj.get("errors") or [{}])[0]
        code = str(err.get("code") or "")
        detail = str(err.get("message") or "")
    if not detail:
        detail = http.client.responses.get(resp.status, "error")
    text = f"{what}: {resp.status} {code + ': ' if code else ''}{detail}"
    return RegistryHTTPError(redact(text)[:400], resp.status, code)


class RegistryClient:
    """One registry, one set of token scopes; thread-safe for concurrent blob transfers."""

    def __init__(
        self,
        registry: str,
        *,
        scopes: Iterable[str] = (),
        insecure: Iterable[str] = (),
        transport: Transport | None = None,
        credentials: Credentials | None | bool = True,
        tokens: TokenCache | None = None,
        retries: int | None = None,
    ):
        self.registry = registry
        self.host = registry_api_host(registry)
        self.scopes = list(dict.fromkeys(scopes))
        self.transport = transport or Transport(insecure_hosts=insecure)
        if insecure:
            self.transport.insecure_hosts |= {_auth.normalize_host(h) for h in insecure}
        self._creds_arg = credentials
        self._creds: Credentials | None = None
        self._creds_loaded = False
        self.tokens = tokens or TokenCache()
        self.retries = (
            retries if retries is not None else int(_env_float("SLIMAGE_REGISTRY_RETRIES", 5))
        )
        self.backoff = _env_float("SLIMAGE_RETRY_BACKOFF", 0.25)
        self.base: str | None = None
        self._challenge: _auth.Challenge | None = None
        self._auth_header: str | None = None
        self._token_key: tuple[str, str, str] | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ credentials
    @property
    def credentials(self) -> Credentials | None:
        if not self._creds_loaded:
            self._creds_loaded = True
            if isinstance(self._creds_arg, Credentials):
                self._creds = self._creds_arg
                _auth.remember_secret(self._creds.secret)
            elif self._creds_arg is True:
                self._creds = _auth.get_credentials(self.registry)
        return self._creds

    # ------------------------------------------------------------------ ping
    def _origin_candidates(self) -> list[str]:
        hostname = urllib.parse.urlsplit("//" + self.host).hostname or self.host
        insecure = _auth.normalize_host(self.host) in self.transport.insecure_hosts or (
            hostname.lower() in self.transport.insecure_hosts
        )
        if _auth.is_loopback(hostname) or insecure:
            return [f"https://{self.host}", f"http://{self.host}"]
        return [f"https://{self.host}"]

    def ping(self) -> str:
        """GET /v2/ to pick the scheme and learn the auth challenge. Returns the base URL."""
        if self.base is not None:
            return self.base
        with self._lock:
            if self.base is not None:
                return self.base
            last: BaseException | None = None
            for base in self._origin_candidates():
                try:
                    resp = self._send_retrying("GET", base + "/v2/", {}, None)
                except ssl.SSLCertVerificationError as exc:
                    raise RegistryError(
                        f"{self.host}: TLS certificate not trusted ({exc.verify_message}); "
                        f"use --insecure {self.host} to skip verification for this host"
                    ) from None
                except (ssl.SSLError, ConnectionResetError, http.client.BadStatusLine) as exc:
                    last = exc  # e.g. https spoken to a plain-http registry; try the next
                    continue
                except TransientError as exc:
                    raise RegistryError(f"{self.host}: {exc}") from None
                except OSError as exc:
                    raise RegistryError(f"cannot reach registry {self.host}: {exc}") from None
                with resp:
                    if resp.status == 401:
                        self._challenge = self._pick_challenge(resp)
                    elif resp.status == 404:
                        raise RegistryError(
                            f"{self.host} does not speak the registry API v2 (/v2/ is 404)"
                        )
                    elif resp.status >= 400:
                        raise error_from_response(resp, f"{self.host} /v2/")
                self.base = base
                return base
            raise RegistryError(f"cannot reach registry {self.host}: {last}")

    def _pick_challenge(self, resp: Response) -> _auth.Challenge | None:
        header = resp.header("WWW-Authenticate")
        if not header:
            return None
        challenges = _auth.parse_challenges(header)
        for ch in challenges:
            if ch.scheme == "bearer":
                return ch
        for ch in challenges:
            if ch.scheme == "basic":
                return ch
        raise AuthError(f"{self.host}: unsupported auth scheme in challenge {header[:80]!r}")

    # ------------------------------------------------------------------ auth
    def _authorization(self, refresh: bool = False) -> str | None:
        ch = self._challenge
        if ch is None:
            return None
        if not refresh and self._auth_header and self._header_fresh():
            return self._auth_header
        with self._lock:
            if not refresh and self._auth_header and self._header_fresh():
                return self._auth_header
            if ch.scheme == "basic":
                creds = self.credentials
                if creds is None:
                    raise AuthError(
                        f"{self.host}: authentication required (run: slimage login {self.registry})"
                    )
                self._auth_header = creds.basic_header()
            else:
                self._auth_header = "Bearer " + self._bearer_token(ch, refresh)
            return self._auth_header

    def _header_fresh(self) -> bool:
        """A Bearer header is good until its token's expiry; Basic never expires."""
        return self._token_key is None or self.tokens.get(self._token_key) is not None

    def _bearer_token(self, ch: _auth.Challenge, refresh: bool) -> str:
        realm = ch.params.get("realm", "")
        service = ch.params.get("service", "")
        scopes = self.scopes or ([ch.params["scope"]] if ch.params.get("scope") else [])
        key = (realm, service, " ".join(scopes))
        self._token_key = key
        if not refresh:
            cached = self.tokens.get(key)
            if cached:
                return cached
        scheme = urllib.parse.urlsplit(self.base or "https://x").scheme
        parts = _auth.check_realm(
            realm, scheme, insecure=self.transport.is_insecure(Origin.of(self.base or "https://x"))
        )
        realm_origin = Origin(
            parts.scheme,
            parts.hostname or "",
            parts.port or (443 if parts.scheme == "https" else 80),
        )
        if realm_origin.scheme == "http" and not (
            _auth.is_loopback(realm_origin.host) or self.transport.is_insecure(realm_origin)
        ):
            raise AuthError(f"auth realm {realm!r} is plain http; refusing")
        creds = self.credentials
        headers: dict[str, str] = {}
        if creds is not None and creds.is_identity_token:
            form = urllib.parse.urlencode(
                {
                    "grant_type": "refresh_token",
                    "refresh_token": creds.secret,
                    "service": service,
                    "scope": " ".join(scopes),
                    "client_id": "slimage",
                }
            ).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            resp = self._send_retrying("POST", realm, headers, form)
        else:
            if creds is not None:
                headers["Authorization"] = creds.basic_header()
            resp = self._send_retrying(
                "GET", _auth.token_url(realm, service, scopes), headers, None
            )
        self.tokens.fetches += 1
        if resp.status in (401, 403):
            resp.close()
            if creds is None:
                raise AuthError(
                    f"{self.host}: authentication required (run: slimage login {self.registry})"
                )
            raise AuthError(
                f"{self.host}: token server {strip_query(realm)} refused the credentials "
                f"for {creds.username} ({resp.status})"
            )
        if resp.status != 200:
            raise error_from_response(resp, f"token server {strip_query(realm)}")
        token, lifetime = _auth.parse_token_response(resp.read_all(1 << 20, "token"), realm)
        self.tokens.put(key, token, lifetime)
        return token

    # ------------------------------------------------------------------ requests
    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return self.ping() + path

    def _sleep_before_retry(self, attempt: int, resp: Response | None) -> None:
        delay = self.backoff * (2**attempt) * (0.75 + random.random() / 2)
        if resp is not None:
            ra = resp.header("Retry-After")
            if ra.isdigit():
                delay = max(delay, min(float(ra), 30.0))
        time.sleep(min(delay, 10.0))

    def _send_retrying(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: Body,
        progress: ProgressFn | None = None,
        retry: bool = True,
        expect: int = 0,
    ) -> Response:
        attempts = self.retries + 1 if retry else 1
        last_exc: BaseException | None = None
        for attempt in range(attempts):
            try:
                resp = self.transport.send(method, url, headers, body, progress, expect)
            except ssl.SSLError:
                raise
            except ConnectionRefusedError:
                # Nothing listens there: retrying only makes the user wait.
                raise RegistryError(
                    f"cannot connect to {Origin.of(url).netloc}: connection refused"
                ) from None
            except TRANSIENT_ERRORS as exc:
                last_exc = exc
                if attempt + 1 < attempts:
                    self._sleep_before_retry(attempt, None)
                    continue
                break
            if resp.status in RETRY_STATUSES and attempt + 1 < attempts:
                self._sleep_before_retry(attempt, resp)
                resp.close()
                continue
            return resp
        what = f"{method} {strip_query(url)}"
        raise TransientError(
            redact(
                f"{what}: failed after {attempts} attempts ({type(last_exc).__name__}: {last_exc})"
            )
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: dict[str, str] | None = None,
        body: Body = None,
        progress: ProgressFn | None = None,
        follow_redirects: bool = True,
        retry: bool = True,
        expect: int = 0,
    ) -> Response:
        """An authenticated request with retries on 429/5xx/dropped connections, and
        redirects followed (for GET/HEAD) without leaking Authorization to other hosts.
        EXPECT (the size of the body wanted, when known) stretches the deadline."""
        url = self.url(path)
        home = Origin.of(url)
        hdrs = dict(headers or {})
        refreshed = False
        seen: set[str] = set()
        while True:
            send_headers = dict(hdrs)
            if Origin.of(url) == home:
                authz = self._authorization()
                if authz:
                    send_headers["Authorization"] = authz
            try:
                resp = self._send_retrying(method, url, send_headers, body, progress, retry, expect)
            except ssl.SSLCertVerificationError as exc:
                raise RegistryError(
                    f"{Origin.of(url).netloc}: TLS certificate not trusted ({exc.verify_message})"
                ) from None
            except (ssl.SSLError, http.client.HTTPException) as exc:
                raise RegistryError(f"{method} {strip_query(url)}: {exc}") from None
            except OSError as exc:
                if isinstance(exc, TRANSIENT_ERRORS):
                    raise
                raise RegistryError(f"{method} {strip_query(url)}: {exc}") from None
            if resp.status == 401 and Origin.of(url) == home:
                if refreshed:
                    resp.close()
                    raise AuthError(self._unauthorized_message())
                challenge = self._pick_challenge(resp)
                resp.close()
                if challenge is None:
                    raise AuthError(self._unauthorized_message())
                self._challenge = challenge
                self._auth_header = None
                self._authorization(refresh=True)
                refreshed = True
                continue
            if resp.status == 403 and Origin.of(url) == home:
                raise error_from_response(
                    resp, f"{self.host}: access denied ({method} {strip_query(url)})"
                )
            if follow_redirects and resp.status in REDIRECT_STATUSES and method in ("GET", "HEAD"):
                location = resp.header("Location")
                resp.close()
                if not location:
                    raise RedirectError(f"{strip_query(url)}: redirect without a Location")
                nxt = urllib.parse.urljoin(url, location)
                if nxt in seen or len(seen) >= MAX_REDIRECTS:
                    raise RedirectError(
                        f"redirect loop fetching {strip_query(self.url(path))} "
                        f"(after {len(seen) + 1} hops, at {strip_query(nxt)})"
                    )
                seen.add(url)
                new_origin = Origin.of(nxt)
                if (
                    Origin.of(url).scheme == "https"
                    and new_origin.scheme == "http"
                    and not (
                        _auth.is_loopback(new_origin.host) or self.transport.is_insecure(new_origin)
                    )
                ):
                    raise RedirectError(f"refusing redirect from https to {strip_query(nxt)}")
                url = nxt
                continue
            return resp

    def _unauthorized_message(self) -> str:
        if self.credentials is None:
            return f"{self.host}: authentication required (run: slimage login {self.registry})"
        return (
            f"{self.host}: unauthorized: the credentials for {self.credentials.username} "
            f"were refused for {', '.join(self.scopes) or 'this request'}"
        )

    def close(self) -> None:
        self.transport.close()
