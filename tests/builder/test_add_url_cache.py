"""`ADD <url>` and the build cache: the step is keyed by what the URL serves, asked again
on every build (as BuildKit does), so a changed remote file gives a new layer and an
unchanged one is a cache hit, without downloading it again when the server can say so.

Everything here is real: an HTTP server on 127.0.0.1 whose body and headers each test
changes between builds (it logs what it was asked and how much body it sent), builds
into the session's build store, the CLI for the no-op path and the one-line errors, and
the Debian engine's BuildKit side by side.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import re
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.builder.conftest import cli_env
from tests.support import testbed

DEBIAN = testbed.DEBIAN_IMAGE
OLD_DATE = "Mon, 01 Jan 2024 00:00:00 GMT"
NOOP = "nothing changed since the last identical build"


@dataclass
class Hit:
    method: str
    path: str
    if_none_match: str | None
    if_modified_since: str | None
    status: int
    sent: int  # body bytes the server got out before the client hung up (or all)


@dataclass
class Remote:
    """What the server serves now; tests change it between builds."""

    body: bytes = b"v1\n"
    etag: bool = True
    last_modified: str | None = OLD_DATE
    status: int = 200
    date: str | None = None  # the Date header, when not now
    log: list[Hit] = field(default_factory=list)
    url: str = ""
    busy: int = 0  # requests being answered

    def tag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'

    def take_log(self) -> list[Hit]:
        """What was asked since the last call (once every answer is finished)."""
        deadline = time.monotonic() + 10
        while self.busy and time.monotonic() < deadline:
            time.sleep(0.01)
        out, self.log = self.log, []
        return out


def _handler(remote: Remote) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a: object) -> None:
            pass

        def date_time_string(self, timestamp: float | None = None) -> str:
            return remote.date or super().date_time_string(timestamp)

        def _serve(self, head: bool) -> None:
            remote.busy += 1
            try:
                self._answer(head)
            finally:
                remote.busy -= 1

        def _answer(self, head: bool) -> None:
            body, tag = remote.body, remote.tag()
            inm = self.headers.get("If-None-Match")
            code = remote.status
            if code == 200 and remote.etag and inm:
                sent_tags = [t.strip().removeprefix("W/") for t in inm.split(",")]
                if tag in sent_tags:
                    code = 304
            self.send_response(code)  # (adds Date: now)
            if remote.etag:
                self.send_header("ETag", tag)
            if remote.last_modified:
                self.send_header("Last-Modified", remote.last_modified)
            self.send_header("Content-Length", str(len(body) if code == 200 else 0))
            self.send_header("Connection", "close")
            self.end_headers()
            sent = 0
            if code == 200 and not head:
                try:
                    for i in range(0, len(body), 1 << 16):
                        self.wfile.write(body[i : i + (1 << 16)])
                        sent += len(body[i : i + (1 << 16)])
                except OSError:
                    pass
            remote.log.append(
                Hit(
                    self.command,
                    self.path,
                    inm,
                    self.headers.get("If-Modified-Since"),
                    code,
                    sent,
                )
            )

        def do_GET(self) -> None:  # noqa: N802
            self._serve(False)

        def do_HEAD(self) -> None:  # noqa: N802
            self._serve(True)

    return Handler


@pytest.fixture
def remote() -> Iterator[Remote]:
    state = Remote()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    state.url = f"http://127.0.0.1:{srv.server_address[1]}"
    try:
        yield state
    finally:
        srv.shutdown()
        srv.server_close()


def _ctx(tmp_path: Path, dockerfile: str, name: str = "ctx") -> Path:
    ctx = tmp_path / name
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    return ctx


def _build(store: Any, ctx: Path, **kw: Any) -> Any:
    """A build through the API, without the no-op record: the step cache decides."""
    from slimage.builder import BuildOptions, build

    kw.setdefault("quiet", True)
    kw.setdefault("noop_cache", False)
    return build(BuildOptions(str(ctx), **kw), store=store)


def _cli(store: Any, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "slimage.cli.main", *args],
        env=cli_env(store),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _members(store: Any, ref: str) -> dict[str, tarfile.TarInfo | bytes]:
    """name -> content (files) of the last layer of REF, plus name+"#" -> its TarInfo."""
    from slimage.store.images import open_image

    out: dict[str, Any] = {}
    layer = open_image(store, ref).layers[-1]
    with tarfile.open(fileobj=layer.open_tar(), mode="r|") as tf:
        for m in tf:
            if m.isreg():
                fh = tf.extractfile(m)
                out[m.name] = fh.read() if fh else b""
                out[m.name + "#"] = m
    return out


def _all_cached(result: Any) -> bool:
    """Every step after FROM came from the cache (FROM counts as a step, never cached)."""
    return bool(result.cached_steps == result.steps - 1)


def _one_line_error(res: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert res.returncode != 0, res.stderr
    assert "Traceback" not in res.stderr, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("slimage: error:")]
    assert len(lines) == 1, res.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


# ---------------------------------------------------------------- the step cache


def test_a_changed_file_is_a_new_layer_an_unchanged_one_is_not_downloaded(
    build_store: Any, remote: Remote, tmp_path: Path
) -> None:
    ctx = _ctx(tmp_path, f"FROM {DEBIAN}\nADD {remote.url}/f /f\n")
    r1 = _build(build_store, ctx, tags=["slimage-test/addurl-etag:1"])
    assert [(h.method, h.if_none_match, h.status) for h in remote.take_log()] == [
        ("GET", None, 200)
    ]
    files = _members(build_store, "slimage-test/addurl-etag:1")
    assert files["f"] == b"v1\n"
    info = files["f#"]
    assert isinstance(info, tarfile.TarInfo)
    assert oct(info.mode) == oct(0o600) and info.mtime == 1704067200  # Last-Modified

    # Unchanged: asked with its ETag, answered 304, the layer reused.
    r2 = _build(build_store, ctx, tags=["slimage-test/addurl-etag:1"])
    v1_tag = remote.tag()
    assert [(h.if_none_match, h.status, h.sent) for h in remote.take_log()] == [(v1_tag, 304, 0)]
    assert r2.image_id == r1.image_id and _all_cached(r2)

    # Changed: a 200, a new layer with the new body.
    remote.body = b"v2, longer\n"
    r3 = _build(build_store, ctx, tags=["slimage-test/addurl-etag:1"])
    assert [(h.if_none_match, h.status) for h in remote.take_log()] == [(v1_tag, 200)]
    assert r3.image_id != r1.image_id
    assert _members(build_store, "slimage-test/addurl-etag:1")["f"] == b"v2, longer\n"

    # Put back: both ETags are sent (as BuildKit does), the 304 names v1's, and v1's
    # layer is reused without a download.
    remote.body = b"v1\n"
    r4 = _build(build_store, ctx, tags=["slimage-test/addurl-etag:1"])
    (hit,) = remote.take_log()
    assert hit.status == 304 and hit.if_none_match is not None
    assert set(hit.if_none_match.split(", ")) == {
        v1_tag,
        '"' + hashlib.sha256(b"v2, longer\n").hexdigest()[:16] + '"',
    }
    assert r4.image_id == r1.image_id
    # Nothing left behind: the downloads waited in the store's tmp/ and are gone.
    assert not [p.name for p in build_store.tmp_dir.iterdir() if p.name.startswith(".slimage-add")]


def test_the_key_is_the_content_with_the_usual_parts(
    build_store: Any, remote: Remote, tmp_path: Path
) -> None:
    """The same body without its ETag: downloaded, and cached (the key is its digest);
    another --chmod: a new layer even though the server says "not modified"."""
    ctx = _ctx(tmp_path, f"FROM {DEBIAN}\nADD {remote.url}/g /g\n")
    r1 = _build(build_store, ctx)
    remote.take_log()
    remote.last_modified = None
    remote.etag = False  # the server no longer says: downloaded, same digest
    r2 = _build(build_store, ctx)
    assert [(h.status, h.sent) for h in remote.take_log()] == [(200, 3)]
    assert r2.image_id == r1.image_id
    remote.etag = True
    remote.last_modified = OLD_DATE
    _build(build_store, ctx)  # records the ETag
    remote.take_log()
    ctx2 = _ctx(tmp_path, f"FROM {DEBIAN}\nADD --chmod=644 {remote.url}/g /g\n", "ctx2")
    r3 = _build(build_store, ctx2, tags=["slimage-test/addurl-chmod:1"])
    # Not modified, but the step is not cached: the body is fetched for it and must be
    # the recorded one.
    assert [h.status for h in remote.take_log()] == [304, 200]
    assert r3.image_id != r1.image_id
    info = _members(build_store, "slimage-test/addurl-chmod:1")["g#"]
    assert isinstance(info, tarfile.TarInfo) and info.mode == 0o644


def test_without_etag_an_exact_last_modified_stands_in(
    build_store: Any, remote: Remote, tmp_path: Path
) -> None:
    """No ETag: a 200 whose Last-Modified and length are those of a recorded body reuses
    its digest, and the body is not read (the server got out only part of 32 MiB). A file
    put back to an older version is that version again; If-Modified-Since (not sent) would
    have had a 304 for it, and the newer body's digest reused."""
    size = 32 << 20
    remote.etag = False
    remote.body = b"a" * size
    ctx = _ctx(tmp_path, f"FROM {DEBIAN}\nADD {remote.url}/big /big\n")
    r1 = _build(build_store, ctx)
    assert [(h.status, h.sent) for h in remote.take_log()] == [(200, size)]

    r2 = _build(build_store, ctx)
    (hit,) = remote.take_log()
    assert hit.if_modified_since is None and hit.if_none_match is None
    assert hit.status == 200 and hit.sent < size  # hung up after the headers
    assert r2.image_id == r1.image_id

    remote.body = b"b" * size
    remote.last_modified = "Tue, 02 Jan 2024 00:00:00 GMT"
    r3 = _build(build_store, ctx)
    assert [(h.status, h.sent) for h in remote.take_log()] == [(200, size)]
    assert r3.image_id != r1.image_id

    remote.body = b"a" * size  # put back, with its older date
    remote.last_modified = OLD_DATE
    r4 = _build(build_store, ctx, tags=["slimage-test/addurl-lm:1"])
    (hit,) = remote.take_log()
    assert hit.if_modified_since is None and hit.status == 200 and hit.sent < size
    assert r4.image_id == r1.image_id
    assert _members(build_store, "slimage-test/addurl-lm:1")["big"] == b"a" * size


def test_a_last_modified_of_this_second_is_not_trusted(
    build_store: Any, remote: Remote, tmp_path: Path
) -> None:
    """Date == Last-Modified: the file may change again within that second (RFC 9110
    8.8.2.2), so every build downloads it; an unchanged body is still a cache hit."""
    remote.etag = False
    remote.last_modified = remote.date = OLD_DATE
    ctx = _ctx(tmp_path, f"FROM {DEBIAN}\nADD {remote.url}/now /now\n")
    r1 = _build(build_store, ctx)
    r2 = _build(build_store, ctx)
    assert [(h.status, h.sent) for h in remote.take_log()] == [(200, 3), (200, 3)]
    assert r2.image_id == r1.image_id and _all_cached(r2)


# ---------------------------------------------------------------- --checksum, errors


def test_a_pinned_checksum_is_the_key_and_a_mismatch_names_the_line(
    build_store: Any, remote: Remote, tmp_path: Path
) -> None:
    v1 = hashlib.sha256(b"v1\n").hexdigest()
    plain = _ctx(tmp_path, f"FROM {DEBIAN}\nADD {remote.url}/p /p\n", "plain")
    pinned = _ctx(
        tmp_path, f"FROM {DEBIAN}\n# pinned\nADD --checksum=sha256:{v1} {remote.url}/p /p\n"
    )
    r1 = _build(build_store, plain)
    remote.take_log()
    # The pin is the body's digest: the unpinned build's layer answers, and (as in
    # BuildKit) nothing is asked.
    r2 = _build(build_store, pinned)
    assert remote.take_log() == []
    assert _all_cached(r2) and r2.image_id == r1.image_id

    remote.body = b"tampered\n"
    other = _ctx(
        tmp_path,
        f"FROM {DEBIAN}\nRUN true\n\nADD --checksum=sha256:{v1} {remote.url}/p /p\n",
        "other",
    )
    res = _cli(build_store, "build", str(other))
    line = _one_line_error(res, "Dockerfile:4: ADD", f"{remote.url}/p", "digest mismatch")
    assert f"expected sha256:{v1}" in line


def test_a_server_error_is_one_line_and_never_reuses_the_old_layer(
    build_store: Any, remote: Remote, tmp_path: Path
) -> None:
    ctx = _ctx(tmp_path, f"FROM {DEBIAN}\nADD {remote.url}/e /e\n")
    assert _cli(build_store, "build", "-q", str(ctx)).returncode == 0
    remote.status = 500
    res = _cli(build_store, "build", str(ctx))
    _one_line_error(res, "Dockerfile:2: ADD", f"{remote.url}/e", "500")
    remote.status = 404
    res = _cli(build_store, "build", "--no-cache", str(ctx))
    _one_line_error(res, "Dockerfile:2: ADD", "404")


# ---------------------------------------------------------------- the no-op path


def _cli_build(store: Any, ctx: Path, tag: str) -> tuple[str, bool]:
    """(image ID, answered by the no-op record) of `slimage build -t TAG CTX`."""
    from slimage.store.images import open_image

    res = _cli(store, "build", "-t", tag, str(ctx))
    assert res.returncode == 0, res.stderr
    return open_image(store, tag).id, NOOP in res.stderr


def test_the_noop_record_asks_the_url_again(
    build_store: Any, remote: Remote, tmp_path: Path
) -> None:
    tag = "slimage-test/addurl-noop:1"
    ctx = _ctx(tmp_path, f"FROM {DEBIAN}\nADD {remote.url}/n /n\n")
    first, _ = _cli_build(build_store, ctx, tag)
    remote.take_log()
    again, fast = _cli_build(build_store, ctx, tag)
    assert fast and again == first
    assert [(h.if_none_match, h.status) for h in remote.take_log()] == [(remote.tag(), 304)]

    remote.body = b"v2\n"
    changed, fast = _cli_build(build_store, ctx, tag)
    assert not fast and changed != first
    assert _members(build_store, tag)["n"] == b"v2\n"
    remote.take_log()
    again, fast = _cli_build(build_store, ctx, tag)
    assert fast and again == changed

    # A failing server is never answered from the record.
    remote.status = 503
    res = _cli(build_store, "build", "-t", tag, str(ctx))
    _one_line_error(res, "Dockerfile:2: ADD", "503")


def test_no_record_without_validators_and_none_needed_for_a_pin(
    build_store: Any, remote: Remote, tmp_path: Path
) -> None:
    remote.etag = False
    remote.last_modified = None
    ctx = _ctx(tmp_path, f"FROM {DEBIAN}\nADD {remote.url}/x /x\n")
    tag = "slimage-test/addurl-noop:2"
    first, _ = _cli_build(build_store, ctx, tag)
    second, fast = _cli_build(build_store, ctx, tag)
    assert not fast and second == first
    assert [h.status for h in remote.take_log()] == [200, 200]

    v1 = hashlib.sha256(remote.body).hexdigest()
    pinned = _ctx(tmp_path, f"FROM {DEBIAN}\nADD --checksum=sha256:{v1} {remote.url}/x /x\n", "p")
    _cli_build(build_store, pinned, tag)
    remote.take_log()
    _, fast = _cli_build(build_store, pinned, tag)
    assert fast and remote.take_log() == []


# ---------------------------------------------------------------- side by side with BuildKit


def _docker_add_cached(ctx: Path, tag: str) -> tuple[bool, str]:
    """(was the ADD step CACHED, image ID) of a BuildKit build of CTX."""
    res = testbed.docker(
        "build", "--network", "host", "--progress", "plain", "-t", tag, str(ctx),
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    steps = set(re.findall(r"^#(\d+) \[\d+/\d+\] ADD ", res.stderr, re.M))
    assert steps, res.stderr
    cached = {n for n in steps if re.search(rf"^#{n} CACHED$", res.stderr, re.M)}
    iid = testbed.docker("image", "inspect", "-f", "{{.Id}}", tag, capture_output=True, text=True)
    return cached == steps, iid.stdout.strip()


def _docker_file(tag: str, path: str) -> bytes:
    cid = testbed.docker("create", "--network", "host", tag, "true", capture_output=True, text=True)
    cid_s = cid.stdout.strip()
    try:
        out = testbed.docker("cp", f"{cid_s}:{path}", "-", capture_output=True).stdout
    finally:
        testbed.docker("rm", "-f", cid_s, capture_output=True)
    with tarfile.open(fileobj=io.BytesIO(out)) as tf:
        m = tf.next()
        assert m is not None
        fh = tf.extractfile(m)
        return fh.read() if fh else b""


def test_side_by_side_with_buildkit(
    build_store: Any, remote: Remote, tmp_path: Path, docker_engine: str
) -> None:
    """The same server, the same Dockerfile, the same sequence of remote changes: the
    ADD step is cached (or not) in the same builds, and holds the same bytes."""
    if not testbed.image_exists(DEBIAN):
        pytest.skip(f"needs {DEBIAN} in the engine")
    ctx = _ctx(tmp_path, f"FROM {DEBIAN}\nADD {remote.url}/s /s\n")
    tag = "slimage-test/addurl-bk:1"
    ours: list[bool] = []
    theirs: list[bool] = []
    ids: list[tuple[str, str]] = []
    # BuildKit keeps ETags across builds (by file name): bodies of this run only.
    nonce = hashlib.sha256(str(time.time_ns()).encode()).hexdigest()[:12]
    try:
        for word in ("one", "one", "two", "one"):
            body = remote.body = f"{word} {nonce}\n".encode()
            cached, iid = _docker_add_cached(ctx, tag)
            theirs.append(cached)
            assert _docker_file(tag, "/s") == body
            bk_log = remote.take_log()
            r = _build(build_store, ctx, tags=[tag])
            ours.append(_all_cached(r))
            assert _members(build_store, tag)["s"] == body
            our_log = remote.take_log()
            ids.append((iid, r.image_id))
            if len(ids) == 2:  # unchanged: neither downloaded the body again
                assert all(h.sent == 0 for h in bk_log), bk_log
                assert all(h.sent == 0 for h in our_log), our_log
    finally:
        testbed.docker("rmi", "-f", tag, capture_output=True, check=False)
    assert theirs == [False, True, False, True]
    assert ours == theirs
    # The put-back build is the first image again, on both sides.
    assert ids[3] == ids[0] and ids[1] == ids[0] and ids[2] != ids[0]
