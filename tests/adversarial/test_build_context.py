"""Hostile Dockerfiles and build contexts against the real `slimage build` (runc, overlayfs).

Issue 9: C1 (a RUN bind mount reached host paths through a glob), H1 (COPY/ADD copied host
files through symlinks), M2 (a read-write RUN mount wrote into the user's context) and the
builder's Low findings. The rule slimage now follows is BuildKit's, checked against Docker
20.10 here: the context is its own `/`; `..` stops at its root and a symlink at any depth,
named or matched by a glob, is followed *inside* it (a link to `/H/secret` reads
CONTEXT/H/secret). Inside a copied directory, links stay links. Every test plants a real
host secret next to a same-named decoy inside the context and asserts that only the decoy
ever reaches an image, that nothing is written outside the store and the context, and that
every refusal is one line naming the file, line and instruction.
"""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

BASE = "slimage-test/adv-bbox:1"
HOST_SECRET = "HOSTSECRET-must-never-reach-an-image"
DECOY = "CONTEXT-DECOY"


# ---------------------------------------------------------------------------- fixtures


def _busybox() -> str:
    for p in ("/bin/busybox", "/usr/bin/busybox"):
        if os.path.exists(p):
            return p
    pytest.skip("needs a static busybox for the base image")
    raise AssertionError


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A temporary store holding a busybox-only base made by `slimage import`."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    if not any(os.path.exists(p) for p in ("/usr/sbin/runc", "/usr/bin/runc")):
        pytest.skip("needs runc")
    root = tmp_path_factory.mktemp("adv-build") / "store"
    rootfs = root.parent / "bb.tar"
    with tarfile.open(rootfs, "w") as tf:
        for d in ("bin", "tmp", "etc"):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tf.addfile(info)
        tf.add(_busybox(), "bin/busybox")
        for cmd in ("sh", "cat", "ls", "echo", "rm", "ln", "mkdir", "readlink", "touch"):
            info = tarfile.TarInfo(f"bin/{cmd}")
            info.type, info.linkname = tarfile.SYMTYPE, "busybox"
            tf.addfile(info)
    res = _slimage(root, "import", str(rootfs), BASE)
    assert res.returncode == 0, res.stderr
    yield root
    fsck = _slimage(root, "fsck")
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    _unmount_under(root)


def _unmount_under(root: Path) -> None:
    from slimage.runtime.overlay import unmount

    with open("/proc/self/mountinfo") as fh:
        targets = [line.split()[4] for line in fh if str(root) in line.split()[4]]
    for t in sorted(targets, key=len, reverse=True):
        unmount(t)


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Path]:
    """(host dir holding the secret, context full of escaping links and decoys)."""
    host = tmp_path / "host"
    host.mkdir()
    (host / "secret").write_text(HOST_SECRET)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    # What each link means when the context is `/`: CONTEXT/<host path>/secret.
    shadow = ctx / str(host).lstrip("/")
    shadow.mkdir(parents=True)
    (shadow / "secret").write_text(DECOY)
    depth = len(ctx.parts) + 2
    (ctx / "hostlink").symlink_to(host)  # absolute dir link
    (ctx / "hostroot").symlink_to(host)
    (ctx / "rellink").symlink_to("../" * depth + str(host).lstrip("/"))  # relative escape
    (ctx / "leak.txt").symlink_to(host / "secret")  # absolute file link
    (ctx / "dir").mkdir()
    (ctx / "dir" / "file.txt").write_text("plain")
    (ctx / "dir" / "inner").symlink_to(host)  # escaping link inside a copied tree
    (ctx / "dir" / "ok").symlink_to("file.txt")  # a link inside the context
    (ctx / "sub").mkdir()
    # `..` past the context root stops at it (BuildKit), so this is the decoy too.
    (ctx / "sub" / "relsecret").symlink_to("../../" + str(host / "secret").lstrip("/"))
    (ctx / "f").write_text("F")
    return host, ctx


def _slimage(root: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300):  # type: ignore[no-untyped-def]
    return subprocess.run(
        [sys.executable, "-m", "slimage.cli.main", *args],
        env=dict(os.environ, SLIMAGE_HOME=str(root), **(env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _build(store: Path, ctx: Path, dockerfile: str, tag: str, **env: str):  # type: ignore[no-untyped-def]
    (ctx / "Dockerfile").write_text(dockerfile)
    return _slimage(store, "build", "--no-cache", "-t", tag, str(ctx), env=env)


def _image_tree(store: Path, tag: str) -> dict[str, tuple[str, str]]:
    """name -> (kind, content or link target), last layer wins, straight from the blobs."""
    from slimage.store.images import open_image
    from slimage.store.store import Store

    out: dict[str, tuple[str, str]] = {}
    for layer in open_image(Store(store), tag).layers:
        with tarfile.open(fileobj=layer.open_tar(), mode="r|") as tf:
            for m in tf:
                name = m.name.rstrip("/")
                if m.isreg():
                    fh = tf.extractfile(m)
                    out[name] = ("file", (fh.read() if fh else b"").decode(errors="replace"))
                elif m.issym():
                    out[name] = ("link", m.linkname)
                elif m.isdir():
                    out[name] = ("dir", "")
    return out


def _assert_clean_refusal(res, *needles: str) -> None:  # type: ignore[no-untyped-def]
    assert res.returncode != 0, res.stdout
    assert "Traceback" not in res.stderr, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("slimage: error:")]
    assert len(lines) == 1, res.stderr
    for n in needles:
        assert n in lines[0], lines[0]


def _no_secret_anywhere(tree: dict[str, tuple[str, str]]) -> None:
    assert not any(HOST_SECRET in body for kind, body in tree.values() if kind == "file")


# ------------------------------------------------------- H1: COPY/ADD through symlinks


@pytest.mark.parametrize(
    ("source", "name"),
    [
        ("leak.txt", "leak.txt"),  # absolute link to a host file
        ("lea*", "leak.txt"),  # the glob
        ("le?k.txt", "leak.txt"),
        ("[l]eak.txt", "leak.txt"),
        ("**/leak.txt", "leak.txt"),
        ("hostlink/secret", "secret"),  # symlinked dir in the middle
        ("hostlink", "secret"),  # symlinked dir named: its contents
        ("hostl?nk", "secret"),  # ... matched by a glob
        ("rellink/secret", "secret"),  # relative link climbing out
        ("sub/relsecret", "relsecret"),  # `..` past the root, inside a subdir
        ("dir/inner/secret", "secret"),  # nested link inside a real dir
        ("../../leak.txt", "leak.txt"),  # `..` in the source stops at the context root
    ],
)
@pytest.mark.parametrize("instruction", ["COPY", "ADD"])
def test_copy_follows_links_only_inside_the_context(
    store: Path, world: tuple[Path, Path], source: str, name: str, instruction: str
) -> None:
    host, ctx = world
    tag = "slimage-test/adv-copy:1"
    res = _build(store, ctx, f"FROM scratch\n{instruction} {source} /out/\n", tag)
    assert res.returncode == 0, res.stderr
    tree = _image_tree(store, tag)
    assert tree.get(f"out/{name}") == ("file", DECOY), tree
    _no_secret_anywhere(tree)
    assert sorted(os.listdir(host)) == ["secret"]


def test_directory_copy_keeps_inner_links_as_links(store: Path, world: tuple[Path, Path]) -> None:
    host, ctx = world
    tag = "slimage-test/adv-dir:1"
    res = _build(store, ctx, "FROM scratch\nCOPY dir /out/\nCOPY di? /out2/\n", tag)
    assert res.returncode == 0, res.stderr
    tree = _image_tree(store, tag)
    for top in ("out", "out2"):
        assert tree[f"{top}/inner"] == ("link", str(host))  # copied as a link, like Docker
        assert tree[f"{top}/ok"] == ("link", "file.txt")
        assert tree[f"{top}/file.txt"] == ("file", "plain")
        assert not any(k.startswith(f"{top}/inner/") for k in tree)
    _no_secret_anywhere(tree)


@pytest.mark.parametrize("source", ["gone", "gon?", "nested/gone"])
def test_link_to_a_path_the_context_lacks_is_not_found(
    store: Path, world: tuple[Path, Path], source: str
) -> None:
    host, ctx = world
    (ctx / "nested").mkdir()
    for d in (ctx, ctx / "nested"):
        (d / "gone").symlink_to(host / "only-on-the-host")
    (host / "only-on-the-host").write_text(HOST_SECRET)
    res = _build(store, ctx, f"FROM scratch\nCOPY {source} /out/\n", "slimage-test/adv-gone:1")
    _assert_clean_refusal(res, "Dockerfile:2", "COPY", "not found", "only-on-the-host")


def test_symlink_loop_is_a_clean_error(store: Path, world: tuple[Path, Path]) -> None:
    _, ctx = world
    (ctx / "loop").symlink_to("loop")
    res = _build(store, ctx, "FROM scratch\nADD loop /out/\n", "slimage-test/adv-loop:1")
    _assert_clean_refusal(res, "Dockerfile:2", "ADD", "too many levels of symbolic links")


def test_link_to_an_ignored_file_is_not_found(store: Path, world: tuple[Path, Path]) -> None:
    _, ctx = world
    (ctx / "secret.env").write_text("API_KEY=1")
    (ctx / "envlink").symlink_to("secret.env")
    (ctx / ".dockerignore").write_text("secret.env\n")
    res = _build(store, ctx, "FROM scratch\nCOPY envlink /out/\n", "slimage-test/adv-ign:1")
    _assert_clean_refusal(res, "COPY", '"/envlink": not found', "secret.env")


# ----------------------------------------------------------------- C1: RUN bind mounts


@pytest.mark.parametrize("source", ["hostlink", "rellink", "dir/inner", "leak.txt"])
def test_run_mount_source_resolves_inside_the_context(
    store: Path, world: tuple[Path, Path], source: str
) -> None:
    host, ctx = world
    tag = "slimage-test/adv-mount:1"
    read = "cat /h > /seen" if source == "leak.txt" else "cat /h/secret > /seen"
    res = _build(
        store,
        ctx,
        f"FROM {BASE}\nRUN --mount=type=bind,source={source},target=/h,rw=true "
        f'sh -c "{read}; echo X > /h/pwned || true"\n'
        if source != "leak.txt"
        else f"FROM {BASE}\nRUN --mount=type=bind,source={source},target=/h {read}\n",
        tag,
    )
    assert res.returncode == 0, res.stderr
    assert _image_tree(store, tag)["seen"] == ("file", DECOY)
    assert sorted(os.listdir(host)) == ["secret"]  # nothing written to the host


@pytest.mark.parametrize("source", ["hostroo?", "hostroo*", "hostroo[t]", "**/secret"])
def test_run_mount_source_is_never_a_glob(
    store: Path, world: tuple[Path, Path], source: str
) -> None:
    """The issue's C1: BuildKit takes a mount source literally, so a glob names nothing."""
    host, ctx = world
    res = _build(
        store,
        ctx,
        f"FROM {BASE}\nRUN --mount=type=bind,source={source},target=/h,rw=true "
        'sh -c "cat /h/secret; echo X > /h/pwned"\n',
        "slimage-test/adv-mglob:1",
    )
    _assert_clean_refusal(res, "Dockerfile:2", "RUN --mount", "not found")
    assert "COPY" not in res.stderr
    assert HOST_SECRET not in res.stdout + res.stderr
    assert sorted(os.listdir(host)) == ["secret"]


# --------------------------------------------------------- M2: rw mounts are throw-away


def test_rw_mount_never_writes_through_to_the_context(
    store: Path, world: tuple[Path, Path]
) -> None:
    host, ctx = world
    before = sorted(p.name for p in (ctx / "dir").iterdir())
    tag = "slimage-test/adv-rw:1"
    res = _build(
        store,
        ctx,
        f"FROM {BASE}\n"
        "RUN --mount=type=bind,source=dir,target=/h,rw=true "
        'sh -c "rm /h/file.txt && echo X > /h/new && ls /h > /first"\n'
        "RUN --mount=type=bind,target=/c,rw=true "
        'sh -c "rm -r /c/dir /c/f && ls /c/dir > /second 2>&1 || ls /c > /second"\n'
        "RUN --mount=type=bind,source=dir,target=/h ls /h > /third\n",
        tag,
    )
    assert res.returncode == 0, res.stderr
    tree = _image_tree(store, tag)
    assert tree["first"][1].split() == ["inner", "new", "ok"]
    assert tree["third"][1].split() == ["file.txt", "inner", "ok"]  # fresh copy each time
    assert sorted(p.name for p in (ctx / "dir").iterdir()) == before
    assert (ctx / "dir" / "file.txt").read_text() == "plain"
    assert (ctx / "f").read_text() == "F"
    assert sorted(os.listdir(host)) == ["secret"]


def test_mount_hides_dockerignored_files(store: Path, world: tuple[Path, Path]) -> None:
    _, ctx = world
    (ctx / "secret.env").write_text("API_KEY=1")
    (ctx / ".dockerignore").write_text("secret.env\n")
    tag = "slimage-test/adv-mign:1"
    res = _build(store, ctx, f"FROM {BASE}\nRUN --mount=type=bind,target=/c ls /c > /seen\n", tag)
    assert res.returncode == 0, res.stderr
    seen = _image_tree(store, tag)["seen"][1].split()
    assert "secret.env" not in seen and "f" in seen and "Dockerfile" in seen


# ------------------------------------------------------ destination links in the rootfs


def test_dangling_absolute_dest_link_resolves_inside_the_rootfs(
    store: Path, world: tuple[Path, Path], tmp_path: Path
) -> None:
    """Docker: `COPY f /app/` with `/app -> /X/deep` (dangling) creates /X/deep in the image."""
    _, ctx = world
    outside = tmp_path / "never-created"
    tag = "slimage-test/adv-dangle:1"
    res = _build(
        store,
        ctx,
        f"FROM {BASE}\nRUN ln -s {outside}/deep /app && ln -s ../../../../../../{outside}/r /rel\n"
        "COPY f /app/\nCOPY f /rel/x/\n",
        tag,
    )
    assert res.returncode == 0, res.stderr
    tree = _image_tree(store, tag)
    inside = str(outside).lstrip("/")
    assert tree[f"{inside}/deep/f"] == ("file", "F")
    assert tree[f"{inside}/r/x/f"] == ("file", "F")
    assert tree["app"] == ("link", f"{outside}/deep")
    assert not outside.exists()


def test_nested_dest_dir_that_is_a_link_is_refused(
    store: Path, world: tuple[Path, Path], tmp_path: Path
) -> None:
    """Docker refuses too ("cannot copy to non-directory"); following it would write to
    the host path the absolute link names."""
    _, ctx = world
    target = tmp_path / "host-target"
    target.mkdir()
    (ctx / "tree" / "sub").mkdir(parents=True)
    (ctx / "tree" / "sub" / "evil").write_text("EVIL")
    res = _build(
        store,
        ctx,
        f"FROM {BASE}\nRUN mkdir /out && ln -s {target} /out/sub\nCOPY tree /out/\n",
        "slimage-test/adv-nest:1",
    )
    _assert_clean_refusal(res, "symbolic link")
    assert list(target.iterdir()) == []


def test_heredoc_and_file_dest_links_are_not_written_through(
    store: Path, world: tuple[Path, Path], tmp_path: Path
) -> None:
    _, ctx = world
    target = tmp_path / "host-target"
    target.mkdir()
    tag = "slimage-test/adv-hd:1"
    res = _build(
        store,
        ctx,
        f"FROM {BASE}\nRUN mkdir /d && ln -s {target}/a /d/doc && ln -s {target}/b /d/f\n"
        "COPY <<doc /d\nhello\ndoc\nCOPY f /d/\n",
        tag,
    )
    assert res.returncode == 0, res.stderr
    assert list(target.iterdir()) == []
    tree = _image_tree(store, tag)
    # As Docker does for a file COPY: the links themselves are replaced.
    assert tree["d/doc"] == ("file", "hello\n")
    assert tree["d/f"] == ("file", "F")


# ---------------------------------------------------------------- ADD <url>, hostile


class _Hostile(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        if self.path.startswith("/endless"):
            self.send_response(200)
            self.end_headers()
            chunk = b"A" * 65536
            try:
                for _ in range(2000):  # 128 MB if nobody stops reading
                    self.wfile.write(chunk)
            except OSError:
                pass
            return
        if self.path.startswith("/liar"):
            self.send_response(200)
            self.send_header("Content-Length", str(50 * 1024**3))
            self.end_headers()
            return
        body = b"payload\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Last-Modified", "Mon, 99 Foo 20x5 25:61:61 XYZ")
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def hostile() -> Iterator[str]:
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def test_add_url_with_a_bad_last_modified_is_ignored(
    store: Path, world: tuple[Path, Path], hostile: str, tmp_path: Path
) -> None:
    _, ctx = world
    target = tmp_path / "host-target"
    target.mkdir()
    tag = "slimage-test/adv-url:1"
    res = _build(
        store,
        ctx,
        f"FROM {BASE}\nRUN mkdir /d && ln -s {target}/x /d/file.bin\n"
        f"ADD {hostile}/file.bin /d/\nADD {hostile}/x/.. /e/\n",
        tag,
    )
    assert res.returncode == 0, res.stderr
    tree = _image_tree(store, tag)
    assert tree["d/file.bin"] == ("file", "payload\n")  # the link was replaced, not followed
    assert tree["e/index.html"] == ("file", "payload\n")
    assert list(target.iterdir()) == []


@pytest.mark.parametrize("path", ["/endless", "/liar"])
def test_add_url_stops_at_the_size_cap(
    store: Path, world: tuple[Path, Path], hostile: str, path: str
) -> None:
    _, ctx = world
    res = _build(
        store,
        ctx,
        f"FROM {BASE}\nADD {hostile}{path} /big\n",
        "slimage-test/adv-big:1",
        SLIMAGE_ADD_URL_MAX_BYTES=str(1024 * 1024),
    )
    _assert_clean_refusal(res, "Dockerfile:2", "ADD", "1048576-byte limit")


@pytest.mark.parametrize(
    ("checksum", "needle"),
    [("nosuchalgo:abc", "nosuchalgo"), ("sha256:xyz", "sha256:xyz")],
)
def test_add_url_bad_checksum_flag_is_a_clean_error(
    store: Path, world: tuple[Path, Path], hostile: str, checksum: str, needle: str
) -> None:
    _, ctx = world
    res = _build(
        store,
        ctx,
        f"FROM {BASE}\nADD --checksum={checksum} {hostile}/f /f\n",
        "slimage-test/adv-sum:1",
    )
    _assert_clean_refusal(res, "Dockerfile:2", needle)


def test_add_url_checksum_mismatch_and_match(
    store: Path, world: tuple[Path, Path], hostile: str
) -> None:
    import hashlib

    _, ctx = world
    good = hashlib.sha256(b"payload\n").hexdigest()
    res = _build(
        store,
        ctx,
        f"FROM {BASE}\nADD --checksum=sha256:{'0' * 64} {hostile}/f /f\n",
        "slimage-test/adv-s:1",
    )
    _assert_clean_refusal(res, "digest mismatch", good)
    res = _build(
        store,
        ctx,
        f"FROM {BASE}\nADD --checksum=sha256:{good} {hostile}/f /f\n",
        "slimage-test/adv-s:2",
    )
    assert res.returncode == 0, res.stderr
    assert _image_tree(store, "slimage-test/adv-s:2")["f"] == ("file", "payload\n")
