"""minify's second round: shared run flags (-v/--mount/--tmpfs, with `slimage run`), the
seccomp profile served by Docker, --http-crawl, and the unpacked form of the new layers
(built from hardlinks) compared with what extracting the written blobs gives."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.minify.conftest import PYWEB_IMAGE, STATIC_IMAGE, app_ports, slimage
from tests.minify.test_minify import _get, _leftovers, _one_line_error
from tests.support import testbed

pytestmark = pytest.mark.usefixtures("minify_ready")

# The app a bind mount puts over python-web's own package: HTML pages with links for the
# crawler, and a page that reads what it wrote to a tmpfs at start-up.
MOUNTED_APP = """
import http.server
open("/scratch/started", "w").write("tmpfs ok")
PAGES = {
    "/": (b'<html><a href="/a.html">a</a> <a href="scratch">s</a>'
          b'<link rel=stylesheet href="style.css"><img src="/img/x.png">'
          b'<a href="http://example.com/out">out</a><a href="//localhost:9/p">p</a>'
          b'<a href="/a.html#top">again</a></html>', "text/html"),
    "/a.html": (b'<a href="/b.html">b</a>', "text/html"),
    "/b.html": (b"<p>end</p>", "text/html"),
    "/style.css": (b"body{}", "text/css"),
    "/img/x.png": (b"PNG", "image/png"),
}
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/scratch":
            body, ctype = open("/scratch/started", "rb").read(), "text/plain"
        else:
            body, ctype = PAGES.get(self.path, (b"nope", "text/plain"))
        self.send_response(200 if self.path in PAGES or self.path == "/scratch" else 404)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("0.0.0.0", 8080), H).serve_forever()
"""


@pytest.fixture()
def host_dir() -> Iterator[Path]:
    """A host directory the container's `nobody` can read (pytest's tmp dirs are 0700)."""
    d = Path(tempfile.mkdtemp(prefix="slimage-minify-mount-", dir="/tmp"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_run_takes_bind_and_tmpfs_mounts(minify_store, host_dir: Path) -> None:  # type: ignore[no-untyped-def]
    (host_dir / "data.txt").write_text("from the host\n")
    script = (
        "cat /data/data.txt; echo scratch > /scratch/f && cat /scratch/f; "
        "grep ' /scratch ' /proc/mounts | cut -d' ' -f3; "
        "touch /data/new 2>/dev/null && echo WRITABLE || echo read-only; pwd; id -un; echo $X"
    )
    res = slimage(
        minify_store, "run", "--rm", "-v", f"{host_dir}:/data:ro",
        "--mount", "type=tmpfs,target=/scratch,tmpfs-size=1m", "-w", "/data", "-u", "nobody",
        "-e", "X=42", "--entrypoint", "/bin/sh", STATIC_IMAGE, "-c", script,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert res.stdout.split("\n") == [
        "from the host", "scratch", "tmpfs", "read-only", "/data", "nobody", "42", "",
    ]  # fmt: skip
    assert not (host_dir / "new").exists()
    bad = slimage(minify_store, "run", "--rm", "-v", "relative:/x", STATIC_IMAGE)
    err = _one_line_error(bad)
    assert "-v 'relative:/x': named volumes are not supported" in err
    bad = slimage(minify_store, "minify", STATIC_IMAGE, "--mount", "type=volume,target=/x")
    assert "type=volume is not supported" in _one_line_error(bad)


def test_minify_with_mounts_and_crawl(minify_store, host_dir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The app comes from a bind mount and writes to a tmpfs, in both runs; the crawler
    follows same-origin links only, stops at --crawl-max, and the verification run
    repeats exactly its requests."""
    pkg = host_dir / "webapp"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(MOUNTED_APP)
    with app_ports():
        res = slimage(
            minify_store, "minify", PYWEB_IMAGE, "--http-crawl", "--crawl-max", "4",
            "-v", f"{pkg}:/opt/webapp/site-packages/webapp:ro",
            "--mount", "type=tmpfs,destination=/scratch",
            "--report", str(tmp_path / "r"), "--json",
        )  # fmt: skip
    assert res.returncode == 0, res.stderr
    rep = json.loads(res.stdout)
    names = [p["name"] for p in rep["probes"]]
    assert names == [
        "GET :8080/",
        "GET :8080/a.html",
        "GET :8080/scratch",
        "GET :8080/style.css",
        "GET :8080/img/x.png",
    ]  # fmt: skip  (b.html is past --crawl-max; example.com and :9 are other origins)
    scratch = rep["probes"][2]
    assert scratch["status"] == 200
    assert scratch["body_sha256"] == "sha256:" + hashlib.sha256(b"tmpfs ok").hexdigest()
    assert [p["name"] for p in rep["verify_probes"]] == names
    assert rep["verified"] == "passed"
    kept = (tmp_path / "r" / "kept.txt").read_text().split()
    assert "/scratch" not in kept and not any(k.startswith("/scratch/") for k in kept)
    assert _leftovers(minify_store) == []


def test_crawl_bounds_in_time_and_origin() -> None:
    """The crawler against a real server on 127.0.0.1 whose pages link on forever: it
    stops at the deadline, never leaves the origin, never asks twice."""
    from slimage.minify.probe import HttpProbe, crawl

    asked: list[str] = []

    class Endless(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            n = int(self.path.lstrip("/p") or 0)
            body = (
                f'<a href="/p{n + 1}">next</a><a href="{self.path}">self</a>'
                f'<a href="http://10.0.0.1/x">far</a>'
            ).encode()
            time.sleep(0.05)
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Endless)
    port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        t0 = time.monotonic()
        got = crawl([HttpProbe("GET", "/", port)], max_pages=10_000, deadline=t0 + 1.0)
        assert time.monotonic() - t0 < 2.5
        assert 3 <= len(got) < 60
        assert len(asked) == len(set(asked))  # nothing fetched twice
        assert [p.path for p, _ in got[:3]] == ["/p1", "/p2", "/p3"]
        few = crawl([HttpProbe("GET", "/", port)], max_pages=2, deadline=time.monotonic() + 30)
        assert len(few) == 2
    finally:
        server.shutdown()


def _tree(root: Path) -> dict[str, tuple]:
    """Everything extraction sets, per path; hardlinked files share a group name."""
    out: dict[str, tuple] = {}
    inodes: dict[int, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            xattrs = {
                k: os.getxattr(full, k, follow_symlinks=False)
                for k in os.listxattr(full, follow_symlinks=False)
            }
            kind: tuple = ()
            if stat.S_ISREG(st.st_mode):
                group = inodes.setdefault(st.st_ino, rel) if st.st_nlink > 1 else rel
                data = Path(full).read_bytes()
                kind = ("file", st.st_size, hashlib.sha256(data).hexdigest(), group)
            elif stat.S_ISLNK(st.st_mode):
                kind = ("link", os.readlink(full))
            elif stat.S_ISDIR(st.st_mode):
                kind = ("dir",)
            else:
                kind = ("other", st.st_rdev)
            out[rel] = (st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, xattrs, *kind)
    return out


def test_unpacked_layers_equal_their_extraction(minify_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The verification run's layers come from hardlinks into the original's unpacked
    layers (copies where SOURCE_DATE_EPOCH clamps a time): the result must be exactly what
    extracting the written blobs gives."""
    # An epoch before most of Debian's file times: most files are copies, with clamped
    # mtimes; one far ahead: nothing is clamped, so most files are hardlinks.
    for epoch in ("1700000003", "1990000000"):
        with app_ports():
            res = slimage(
                minify_store, "minify", PYWEB_IMAGE, "--http-probe", "GET:/json", "--json",
                env={"SOURCE_DATE_EPOCH": epoch},
            )  # fmt: skip
        assert res.returncode == 0, res.stderr
        rep = json.loads(res.stdout)
        assert "unpack" in rep["seconds"]
        linked = _compare_layers(minify_store, rep["minified"], tmp_path / epoch)
    assert linked > 100  # the speed-up was taken: most files are links, not copies


def _compare_layers(store, manifest: str, tmp: Path) -> int:  # type: ignore[no-untyped-def]
    from slimage.layers.extract import extract_layer
    from slimage.store.images import open_image

    image = open_image(store, manifest)
    linked = 0
    for layer in image.layers:
        adopted = store.root / "layers-unpacked" / layer.diff_id.split(":", 1)[1]
        fresh = tmp / layer.diff_id.split(":", 1)[1]
        with layer.open_tar() as stream:
            extract_layer(stream, fresh, mode="overlay", label="test")
        want, got = _tree(fresh), _tree(adopted)
        assert sorted(got) == sorted(want)
        diffs = [p for p in want if want[p] != got[p]]
        assert diffs == [], (diffs[:3], [(want[p], got[p]) for p in diffs[:3]])
        linked += sum(1 for p in got if got[p][5] == "file" and os.stat(adopted / p).st_nlink > 1)
    return linked


def test_seccomp_profile_runs_under_docker(minify_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`--seccomp-profile` of the static server: Docker's JSON format, a short allowlist,
    and `docker run --security-opt seccomp=FILE` of the minified image still serves."""
    prof = tmp_path / "seccomp.json"
    tag = "slimage-test/static-seccomp:1"
    with app_ports():
        res = slimage(
            minify_store, "minify", STATIC_IMAGE, "-t", tag, "--http-probe", "GET:/health",
            "--seccomp-profile", str(prof), "--json",
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        rep = json.loads(res.stdout)
        data = json.loads(prof.read_text())
        assert data["defaultAction"] == "SCMP_ACT_ERRNO"
        assert data["architectures"][0] == "SCMP_ARCH_X86_64"
        (rule,) = data["syscalls"]
        assert rule["action"] == "SCMP_ACT_ALLOW"
        names = set(rule["names"])
        assert {"accept", "bind", "listen", "execve"} <= names  # what a server does
        assert not {"reboot", "mount", "kexec_load", "ptrace"} & names
        assert rep["seccomp_syscalls"] == len(names) < 150
        archive = tmp_path / "min.tar"
        assert slimage(minify_store, "save", "-o", str(archive), tag).returncode == 0
        testbed.docker("load", "-i", str(archive), capture_output=True)
        name = f"slimage-seccomp-test-{os.getpid()}"
        testbed.docker("rm", "-f", name, check=False, capture_output=True)
        try:
            testbed.docker(
                "run", "-d", "--name", name, "--network", "host",
                "--security-opt", f"seccomp={prof}", tag, capture_output=True,
            )  # fmt: skip
            status = None
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and status is None:
                try:
                    status = _get("http://127.0.0.1:8081/health")
                except OSError:
                    time.sleep(0.2)
            logs = testbed.docker("logs", name, check=False, capture_output=True)
            assert status is not None and status[0] == 200, logs
        finally:
            testbed.docker("rm", "-f", name, check=False, capture_output=True)
            testbed.docker("rmi", tag, check=False, capture_output=True)
    bad = slimage(minify_store, "minify", STATIC_IMAGE, "--seccomp-profile", "/nonexistent/x.json")
    assert "directory /nonexistent does not exist" in _one_line_error(bad)


def test_staged_layers_found_again_and_checked(minify_store) -> None:  # type: ignore[no-untyped-def]
    """A second minify of the same paths under the same epoch runs its verification on the
    unpacked layers the first one left in the cache, found through the index. An index
    entry that names another layer (slimage changed since it was written) is caught once
    the layers are written: verification runs again on fresh ones, the index is fixed."""
    env = {"SOURCE_DATE_EPOCH": "1700000007"}
    args = ("minify", STATIC_IMAGE, "--http-probe", "GET:/health", "--json")
    index = minify_store.root / "layers-unpacked" / ".minify-index"
    with app_ports():
        first = slimage(minify_store, *args, env=env)
        assert first.returncode == 0, first.stderr
        diff_ids = [layer["diff_id"] for layer in json.loads(first.stdout)["layers"]]
        entries = {p: p.read_text() for p in index.iterdir() if not p.name.startswith(".")}
        assert set(diff_ids) <= set(entries.values())
        mine = [p for p, d in entries.items() if d in diff_ids]
        # Point this image's entries at other layers that are unpacked too.
        others = [
            "sha256:" + p.name
            for p in (minify_store.root / "layers-unpacked").iterdir()
            if len(p.name) == 64 and "sha256:" + p.name not in diff_ids
        ]
        for p, other in zip(mine, others, strict=False):
            p.write_text(other)
        again = slimage(minify_store, *args, env=env)
        assert again.returncode == 0, again.stderr
        rep = json.loads(again.stdout)
    assert [layer["diff_id"] for layer in rep["layers"]] == diff_ids
    assert rep["verified"] == "passed" and rep["verify_probes"][0]["status"] == 200
    assert sorted(p.read_text() for p in mine) == sorted(diff_ids)
    assert _leftovers(minify_store) == []
