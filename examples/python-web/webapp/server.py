"""Routes: / (text), /json (JSON), /health, /items/<n>, /report (imports webapp.reports
only when called: the lazily imported module the keep-packages guard is tested with)."""

from __future__ import annotations

import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ITEMS = {1: "apple", 2: "banana", 3: "cherry"}


class Handler(BaseHTTPRequestHandler):
    server_version = "python-web/1.0"
    sys_version = ""

    def _send(self, status: int, body: bytes, ctype: str = "text/plain; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def date_time_string(self, timestamp=None):  # fixed, so bodies and headers compare
        return "Thu, 01 Jan 1970 00:00:00 GMT"

    def log_message(self, fmt, *args):
        print(f"{self.command} {self.path}", flush=True)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/":
            self._send(200, b"Hello from python-web!\n")
        elif path == "/json":
            body = json.dumps({"app": "python-web", "items": len(ITEMS)}, sort_keys=True)
            self._send(200, body.encode(), "application/json")
        elif path == "/health":
            self._send(200, b"ok\n")
        elif path.startswith("/items/"):
            key = path.rsplit("/", 1)[-1]
            if key.isdigit() and int(key) in ITEMS:
                self._send(200, json.dumps({"id": int(key), "name": ITEMS[int(key)]}).encode())
            else:
                self._send(404, b"no such item\n")
        elif path == "/report":
            try:
                from webapp import reports  # imported here only: the lazy import
            except ImportError as exc:
                self._send(500, f"report unavailable: {exc}\n".encode())
                return
            self._send(200, reports.render(ITEMS).encode(), "text/csv")
        else:
            self._send(404, b"not found\n")

    do_HEAD = do_GET


def main() -> None:
    port = int(os.environ.get("PORT", "8080"))
    # As PID 1 in a container, SIGTERM is ignored unless handled: handle it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    server = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    print(f"python-web listening on :{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
