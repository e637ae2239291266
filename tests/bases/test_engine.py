"""The bases against the real Docker engine: the seed app on the nodejs preset, no shell
there, the musl preset really rejecting a glibc binary (as `compat` predicts), and the
`debian --full` wrapper."""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from slimage.analysis.compat import LOADS, MISSING_INTERPRETER, check_compat
from slimage.transports.sources import open_source
from tests.bases import support
from tests.support import testbed

pytestmark = [pytest.mark.docker, pytest.mark.slow]

PORT = 3000  # the seed app's port is hard-coded


# Several helpers' tests serve the seed app on localhost:3000; whoever binds it holds this
# lock (the same file the runtime tests use).
PORT_LOCK = "/tmp/slimage-port-3000.lock"


@contextlib.contextmanager
def port_3000() -> Iterator[None]:
    """Serialise use of port 3000 between test processes; wait for it to be free."""
    with open(PORT_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", PORT)) != 0:
                    break
            if time.monotonic() > deadline:
                pytest.skip("port 3000 is held by something else")
            time.sleep(1)
        yield


def _get(url: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=3) as r:
                return r.read().decode()
        except OSError as exc:
            last = exc
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer: {last}")


@pytest.fixture(scope="module")
def nodejs_base(docker_engine: str) -> str:
    tag, _ = support.preset_image("nodejs")
    return support.in_docker(tag)


@pytest.fixture(scope="module")
def musl_base(docker_engine: str) -> str:
    tag, _ = support.preset_image("musl")
    return support.in_docker(tag)


@pytest.fixture(scope="module")
def node8_archive(node8_image: str) -> Path:
    return testbed.saved_archive(node8_image, "node8")


def test_seed_app_runs_on_the_nodejs_preset(
    nodejs_base: str, node8_image: str, tmp_path: Path
) -> None:
    ctx = testbed.scenario_context(tmp_path, "Dockerfile.distroless")
    dockerfile = ctx / "Dockerfile.distroless"
    text = dockerfile.read_text()
    assert "FROM gcr.io/distroless/nodejs" in text
    dockerfile.write_text(text.replace("FROM gcr.io/distroless/nodejs", f"FROM {nodejs_base}"))
    app = "slimage-test/bases-hello:latest"
    testbed.build(app, ctx, dockerfile)
    with port_3000():
        cid = support.docker(
            "run", "-d", "--network", "host", app, capture_output=True, text=True
        ).stdout.strip()
        try:
            assert _get(f"http://127.0.0.1:{PORT}/") == "Hello World!"
        finally:
            support.docker("rm", "-f", cid, check=False, capture_output=True)
    shell = support.docker(
        "run",
        "--rm",
        "--network",
        "host",
        "--entrypoint",
        "/bin/sh",
        app,
        "-c",
        "true",
        check=False,
        capture_output=True,
        text=True,
    )
    assert shell.returncode != 0
    assert "no such file or directory" in shell.stderr
    cfg = support.docker(
        "image", "inspect", "-f", "{{json .Config.Entrypoint}}", app, capture_output=True, text=True
    ).stdout
    assert "/usr/bin/node" in cfg


def _runs(image: str) -> subprocess.CompletedProcess:
    return support.docker(
        "run", "--rm", "--network", "host", image, check=False, capture_output=True, text=True
    )


def test_compat_prediction_holds_on_musl_and_nodejs(
    musl_base: str, nodejs_base: str, node8_image: str, node8_archive: Path, tmp_path: Path
) -> None:
    from slimage.store.store import Store

    store = Store(support.session_store())
    source = open_source(str(node8_archive), store)
    on_musl = check_compat(source, open_source(musl_base, store), paths=["/usr/bin/node"])
    on_node = check_compat(source, open_source(nodejs_base, store), paths=["/usr/bin/node"])
    [v_musl] = [v for v in on_musl.files if v.path == "usr/bin/node"]
    [v_node] = [v for v in on_node.files if v.path == "usr/bin/node"]
    assert v_musl.verdict == MISSING_INTERPRETER and "ld-linux-x86-64.so.2" in v_musl.detail
    assert on_musl.compatible is False and on_musl.target_libc == "musl"
    assert v_node.verdict == LOADS and on_node.compatible is True

    # Now really run that node on both bases.
    for name, base in (("musl", musl_base), ("nodejs", nodejs_base)):
        ctx = tmp_path / name
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(
            f"FROM {base}\nCOPY --from={node8_image} /usr/bin/node /opt/node8\n"
            'ENTRYPOINT []\nCMD ["/opt/node8", "-e", "console.log(\'node ran \' + process.version)"]\n'
        )
        testbed.build(f"slimage-test/bases-node-on-{name}:latest", ctx)
    bad = _runs("slimage-test/bases-node-on-musl:latest")
    good = _runs("slimage-test/bases-node-on-nodejs:latest")
    assert bad.returncode != 0 and "no such file or directory" in (bad.stderr + bad.stdout)
    assert good.returncode == 0 and good.stdout.startswith("node ran v18")


def test_musl_preset_is_small_and_has_a_shell(musl_base: str) -> None:
    r = support.docker(
        "run",
        "--rm",
        "--network",
        "host",
        musl_base,
        "sh",
        "-c",
        "echo $((6*7)); ls /lib/ld-musl-x86_64.so.1",
        capture_output=True,
        text=True,
    )
    assert r.stdout.split() == ["42", "/lib/ld-musl-x86_64.so.1"]
    size = int(
        support.docker(
            "image", "inspect", "-f", "{{.Size}}", musl_base, capture_output=True, text=True
        ).stdout
    )
    assert size < 10_000_000


@pytest.mark.skipif(
    shutil.which("mmdebstrap") is None and shutil.which("debootstrap") is None,
    reason="needs mmdebstrap or debootstrap",
)
def test_debian_full_wraps_mmdebstrap(docker_engine: str, need_root: None, tmp_path: Path) -> None:
    support.need_debian()
    from slimage.bases.full import build_full
    from slimage.store.images import open_image
    from slimage.store.store import Store
    from slimage.transports.docker_engine import load_into_engine

    store = Store(tmp_path / "store")
    result = build_full(store, tags=["slimage-test/bases-debian-full:bookworm"])
    assert len(result.layers) == 1 and result.size > 50_000_000
    load_into_engine(
        open_image(store, "slimage-test/bases-debian-full:bookworm"),
        ["slimage-test/bases-debian-full:bookworm"],
    )
    r = support.docker(
        "run",
        "--rm",
        "--network",
        "host",
        "slimage-test/bases-debian-full:bookworm",
        "sh",
        "-c",
        "dpkg-query -W -f='${Status}\\n' | grep -c 'install ok installed'; apt-get --version | head -1",
        capture_output=True,
        text=True,
    )
    count, apt = r.stdout.strip().splitlines()
    assert int(count) > 80 and apt.startswith("apt ")


def test_add_ca_and_nonroot_on_a_network_that_intercepts_tls(
    nodejs_base: str, tmp_path: Path
) -> None:
    """Debian's node reads the system CA bundle; with the intercepting proxy's CA added by
    --add-ca, HTTPS works from the image, and --nonroot runs node as 65532."""
    support.need_debian()
    from slimage.bases.builder import BaseSpec, build, make_repository, plan
    from slimage.store.images import open_image
    from slimage.store.store import Store
    from slimage.transports.docker_engine import load_into_engine

    spec = BaseSpec(preset="nodejs", nonroot=True)
    lock, _ = plan(spec, make_repository(spec, support.CACHE))
    store = Store(tmp_path / "store")
    tag = "slimage-test/bases-nodejs-ca:nonroot"
    build(lock, store, tags=[tag], cache_dir=support.CACHE, add_ca=[testbed.HOST_CA])
    load_into_engine(open_image(store, tag), [tag])
    script = (
        "console.log(process.getuid());"
        "require('https').get('https://registry.npmjs.org/express', r => console.log(r.statusCode))"
        ".on('error', e => console.log(e.code))"
    )

    def fetch(image: str) -> list[str]:
        r = support.docker(
            "run",
            "--rm",
            "--network",
            "host",
            image,
            "-e",
            script,
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return r.stdout.split()

    with_ca = fetch(tag)
    without = fetch(nodejs_base)
    if (
        without[1:]
        and without[1] not in ("200",)
        and "CERT" not in without[1]
        and "SIGNED" not in without[1]
    ):
        pytest.skip(f"no HTTPS to registry.npmjs.org from here ({without[1]})")
    assert with_ca == ["65532", "200"]
    assert without[0] == "0"
    # On this network TLS is intercepted: the stock bundle alone does not trust it.
    if without[1] != "200":
        assert "CERT" in without[1] or "SIGNED" in without[1]


def test_python3_preset_runs_with_its_stdlib(docker_engine: str) -> None:
    tag, result = support.preset_image("python3")
    support.in_docker(tag)
    code = "import ssl, json, sqlite3, zoneinfo; print(ssl.OPENSSL_VERSION.split()[0], zoneinfo.ZoneInfo('Europe/Paris'))"
    r = support.docker(
        "run", "--rm", "--network", "host", tag, "-c", code, capture_output=True, text=True
    )
    assert r.stdout.split() == ["OpenSSL", "Europe/Paris"]
    assert [layer.group for layer in result.layers] == ["static", "base", "cc", "python3"]  # type: ignore[attr-defined]


def test_debug_variant_has_a_busybox_shell_the_plain_one_lacks(docker_engine: str) -> None:
    debug, _ = support.preset_image("cc", debug=True)
    plain, _ = support.preset_image("cc")
    support.in_docker(debug)
    support.in_docker(plain)
    r = support.docker(
        "run",
        "--rm",
        "--network",
        "host",
        debug,
        "-c",
        "echo $((2+3)) $(id -u)",
        capture_output=True,
        text=True,
    )
    assert r.stdout.split() == ["5", "0"]
    none = support.docker(
        "run",
        "--rm",
        "--network",
        "host",
        "--entrypoint",
        "/busybox/sh",
        plain,
        check=False,
        capture_output=True,
        text=True,
    )
    assert none.returncode != 0 and "no such file or directory" in none.stderr
