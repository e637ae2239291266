"""Probes: what exercises the application while it is traced, and the record of each answer.

HTTP probes only ever go to 127.0.0.1 (the container shares the host network). Each result
keeps the status, the SHA-256 of the body and the time taken, so that the verification run
can be compared with the original one probe by probe.
"""

from __future__ import annotations

import hashlib
import http.client
import shlex
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

from slimage.errors import UsageError

METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"}


@dataclass(frozen=True)
class HttpProbe:
    method: str
    path: str
    port: int
    expect: int | None = None

    @property
    def name(self) -> str:
        return f"{self.method} :{self.port}{self.path}"


@dataclass(frozen=True)
class ExecProbe:
    argv: tuple[str, ...]

    @property
    def name(self) -> str:
        return "exec " + shlex.join(self.argv)


@dataclass
class ProbeResult:
    name: str
    ok: bool
    status: int | None = None  # HTTP status, or the exit code of an exec probe
    body_sha256: str = ""
    body_bytes: int = 0
    seconds: float = 0.0
    error: str = ""
    differs: list[str] = field(default_factory=list)  # filled in by verification


def parse_http_probe(spec: str, ports: list[int]) -> list[HttpProbe]:
    """`METHOD:PATH`, `PATH`, or `METHOD:PATH:STATUS`, once per port."""
    text = spec.strip()
    method, sep, rest = text.partition(":")
    if not sep or method.upper() not in METHODS:
        method, rest = "GET", text
    path, _, status = rest.rpartition(":") if rest.rsplit(":", 1)[-1].isdigit() else (rest, "", "")
    path = path or "/"
    if not path.startswith("/"):
        raise UsageError(f"--http-probe {spec!r}: the path must start with / (GET:/health)")
    if not ports:
        raise UsageError(f"--http-probe {spec!r}: the image EXPOSEs no port; name one with --port")
    expect = int(status) if status else None
    return [HttpProbe(method.upper(), path, p, expect) for p in ports]


def parse_probe_file(path: str, ports: list[int]) -> list[HttpProbe]:
    """One probe per line: `METHOD PATH [STATUS]`; `#` starts a comment."""
    try:
        text = open(path, encoding="utf-8").read()
    except OSError as exc:
        raise UsageError(f"--http-probe-file {path}: {exc.strerror}") from None
    out: list[HttpProbe] = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if (
            len(parts) not in (2, 3)
            or parts[0].upper() not in METHODS
            or not parts[1].startswith("/")
        ):
            raise UsageError(f"{path}:{n}: expected `METHOD /path [STATUS]`, got {line!r}")
        if len(parts) == 3 and not parts[2].isdigit():
            raise UsageError(f"{path}:{n}: status {parts[2]!r} is not a number")
        spec = f"{parts[0]}:{parts[1]}" + (f":{parts[2]}" if len(parts) == 3 else "")
        out += parse_http_probe(spec, ports)
    return out


def build_probes(
    ports: list[int],
    http_probes: list[str],
    execs: list[str],
    *,
    probe_file: str | None = None,
    default_get: bool = True,
) -> list[HttpProbe | ExecProbe]:
    """The probes `--http-probe`, `--http-probe-file` and `--exec` name, HTTP first; with
    no HTTP probe named and DEFAULT_GET, a GET of / on each of PORTS (minify and optimize
    probe an app the same way)."""
    http: list[HttpProbe] = []
    for spec in http_probes:
        http += parse_http_probe(spec, ports)
    if probe_file:
        http += parse_probe_file(probe_file, ports)
    if not http and not http_probes and default_get:
        http = [HttpProbe("GET", "/", p) for p in ports]
    found: list[HttpProbe | ExecProbe] = [*http]
    for cmd in execs:
        argv = shlex.split(cmd)
        if not argv:
            raise UsageError("--exec needs a command")
        found.append(ExecProbe(tuple(argv)))
    return found


def exposed_ports(config: dict) -> list[int]:
    """The image's EXPOSEd TCP ports, in order."""
    ports = []
    for key in sorted(config.get("ExposedPorts") or {}):
        num, _, proto = key.partition("/")
        if (proto or "tcp") == "tcp" and num.isdigit():
            ports.append(int(num))
    return ports


def port_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_port(
    port: int, deadline: float, alive: Callable[[], bool], *, poll: float = 0.02
) -> bool:
    """True once 127.0.0.1:PORT accepts; False at DEADLINE or when ALIVE() turns False."""
    while time.monotonic() < deadline:
        if port_answers(port):
            return True
        if not alive():
            return False
        time.sleep(poll)
    return False


def run_http(probe: HttpProbe, timeout: float) -> ProbeResult:
    return fetch(probe, timeout)[0]


def fetch(probe: HttpProbe, timeout: float) -> tuple[ProbeResult, bytes, str]:
    """PROBE's result, with the body and Content-Type (for the crawler)."""
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", probe.port, timeout=timeout)
    try:
        conn.request(probe.method, probe.path, headers={"User-Agent": "slimage-minify"})
        resp = conn.getresponse()
        body = resp.read(MAX_BODY + 1)[:MAX_BODY]
        status = resp.status
        ctype = resp.getheader("Content-Type") or ""
    except (OSError, http.client.HTTPException) as exc:
        res = ProbeResult(
            probe.name,
            False,
            seconds=round(time.monotonic() - t0, 4),
            error=str(exc) or type(exc).__name__,
        )
        return res, b"", ""
    finally:
        conn.close()
    ok = status == probe.expect if probe.expect is not None else status < 500
    res = ProbeResult(
        probe.name,
        ok,
        status=status,
        body_sha256="sha256:" + hashlib.sha256(body).hexdigest(),
        body_bytes=len(body),
        seconds=round(time.monotonic() - t0, 4),
        error="" if ok else f"status {status}",
    )
    return res, body, ctype


# ----------------------------------------------------------------------------- --http-crawl
MAX_BODY = 16 << 20  # an answer larger than this is hashed on its first 16 MiB
_LINK_ATTRS = {
    "a": "href",
    "link": "href",
    "script": "src",
    "img": "src",
    "source": "src",
    "iframe": "src",
    "video": "src",
    "audio": "src",
}


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[str] = []
        self.base: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "base" and values.get("href"):
            self.base = values["href"]
        want = _LINK_ATTRS.get(tag)
        if want and values.get(want):
            self.links.append(str(values[want]))
        if tag in ("img", "source") and values.get("srcset"):
            for part in str(values["srcset"]).split(","):
                url = part.strip().split(" ")[0]
                if url:
                    self.links.append(url)


def same_origin_links(page_path: str, port: int, html: str) -> list[str]:
    """The paths of PAGE_PATH's links and assets on the same origin (127.0.0.1 or
    localhost, same port, http), fragments dropped, in document order."""
    parser = _Links()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # a broken page: what was read so far still counts
        pass
    origin = f"http://127.0.0.1:{port}"
    base = urljoin(origin + page_path, parser.base) if parser.base else origin + page_path
    out: list[str] = []
    for link in parser.links:
        url = urljoin(base, link.strip())
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost"):
            continue
        if (parts.port or 80) != port:
            continue
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if path not in out:
            out.append(path)
    return out


def crawl(
    starts: list[HttpProbe], *, max_pages: int, deadline: float
) -> list[tuple[HttpProbe, ProbeResult]]:
    """Breadth-first GETs of the same-origin links and assets of HTML answers, from
    STARTS' paths (which are not fetched again), at most MAX_PAGES new requests and never
    after DEADLINE. Only ever 127.0.0.1. Returns each new probe with its result, so the
    verification run can send exactly the same requests."""
    seen = {(p.port, p.path) for p in starts}
    queue: list[tuple[int, str]] = []
    out: list[tuple[HttpProbe, ProbeResult]] = []
    for p in starts:
        if p.method != "GET":
            continue
        res, body, ctype = fetch(HttpProbe("GET", p.path, p.port), 10.0)
        _enqueue(p.port, p.path, body, ctype, seen, queue)
    while queue and len(out) < max_pages and time.monotonic() < deadline:
        port, path = queue.pop(0)
        probe = HttpProbe("GET", path, port)
        res, body, ctype = fetch(probe, max(1.0, min(10.0, deadline - time.monotonic())))
        out.append((probe, res))
        _enqueue(port, path, body, ctype, seen, queue)
    return out


def _enqueue(
    port: int,
    path: str,
    body: bytes,
    ctype: str,
    seen: set[tuple[int, str]],
    queue: list[tuple[int, str]],
) -> None:
    if "html" not in ctype.lower():
        return
    for link in same_origin_links(path, port, body.decode("utf-8", "replace")):
        if (port, link) not in seen:
            seen.add((port, link))
            queue.append((port, link))


def exec_result(probe: ExecProbe, rc: int, output: bytes, seconds: float) -> ProbeResult:
    return ProbeResult(
        probe.name,
        rc == 0,
        status=rc,
        body_sha256="sha256:" + hashlib.sha256(output).hexdigest(),
        body_bytes=len(output),
        seconds=round(seconds, 4),
        error="" if rc == 0 else f"exit code {rc}",
    )
