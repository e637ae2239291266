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
    t0 = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", probe.port, timeout=timeout)
    try:
        conn.request(probe.method, probe.path, headers={"User-Agent": "slimage-minify"})
        resp = conn.getresponse()
        body = resp.read()
        status = resp.status
    except (OSError, http.client.HTTPException) as exc:
        return ProbeResult(
            probe.name,
            False,
            seconds=round(time.monotonic() - t0, 4),
            error=str(exc) or type(exc).__name__,
        )
    finally:
        conn.close()
    ok = status == probe.expect if probe.expect is not None else status < 500
    return ProbeResult(
        probe.name,
        ok,
        status=status,
        body_sha256="sha256:" + hashlib.sha256(body).hexdigest(),
        body_bytes=len(body),
        seconds=round(time.monotonic() - t0, 4),
        error="" if ok else f"status {status}",
    )


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
