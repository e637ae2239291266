"""`slimage minify` on the project's example apps, with the real runtime, strace and Docker.

Each test runs the real CLI against a session store holding the examples (conftest), then
checks the result the way a user would: the report, the store, and `docker load` of
`slimage save` served by the Docker engine on the host network.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests.minify.conftest import PYWEB_IMAGE, STATIC_IMAGE, app_ports, slimage
from tests.support import testbed

pytestmark = pytest.mark.usefixtures("minify_ready")

REPORT_MODULE = "/opt/webapp/site-packages/webapp/reports.py"


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _leftovers(store) -> list[str]:  # type: ignore[no-untyped-def]
    """Mounts, runc containers, work dirs and staged layers a minify left behind."""
    out = []
    with open("/proc/self/mountinfo") as fh:
        out += [line.split()[4] for line in fh if str(store.root) in line.split()[4]]
    # Only this store's: other sessions (optimize, the benchmark) run minify at the same time.
    res = subprocess.run(["runc", "list", "--format", "json"], capture_output=True, text=True)
    out += [
        c["id"]
        for c in json.loads(res.stdout or "null") or []
        if str(c.get("bundle", "")).startswith(str(store.root))
    ]
    work = Path(store.root) / "minify-work"
    if work.is_dir():
        out += [str(p) for p in work.iterdir()]
    # The new layers' unpacked form, staged for the verification run.
    unpacked = Path(store.root) / "layers-unpacked"
    if unpacked.is_dir():
        out += [str(p) for p in unpacked.iterdir() if p.name.startswith(".tmp-")]
    return out


def _served_by_docker(store, tag: str, port: int, paths: list[str], tmp: Path) -> dict:  # type: ignore[no-untyped-def]
    """`slimage save` -> `docker load` -> `docker run --network host`; path -> (status, body)."""
    archive = tmp / "min.tar"
    res = slimage(store, "save", "-o", str(archive), tag)
    assert res.returncode == 0, res.stderr
    testbed.docker("load", "-i", str(archive), capture_output=True)
    name = f"slimage-minify-test-{os.getpid()}"
    testbed.docker("rm", "-f", name, check=False, capture_output=True)
    testbed.docker(
        "run", "-d", "--rm", "--name", name, "--network", "host", tag, capture_output=True
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                _get(f"http://127.0.0.1:{port}/")
                break
            except OSError:
                time.sleep(0.2)
        return {p: _get(f"http://127.0.0.1:{port}{p}") for p in paths}
    finally:
        testbed.docker("rm", "-f", name, check=False, capture_output=True)
        testbed.docker("rmi", tag, check=False, capture_output=True)


def test_python_web_minified_verified_and_served(minify_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """>=15x smaller, verified, every probed route (and the lazily-imported /report route,
    never probed: keep-packages kept its module) served by Docker."""
    report_dir = tmp_path / "report"
    with app_ports():
        res = slimage(
            minify_store, "minify", PYWEB_IMAGE, "-t", "slimage-test/pyweb-min:1",
            "--http-probe", "GET:/", "--http-probe", "GET:/json", "--http-probe", "GET:/items/2",
            "--http-probe", "GET:/health", "--report", str(report_dir), "--json",
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        rep = json.loads(res.stdout)
        assert rep["verified"] == "passed"
        assert rep["factor"] >= 15, rep["factor"]
        assert rep["image_size_before"] / rep["image_size_after"] >= 15
        assert [p["status"] for p in rep["probes"]] == [200, 200, 200, 200]
        assert all(not p["differs"] for p in rep["verify_probes"])
        assert "/opt/webapp/site-packages/webapp" in rep["keep_packages"]
        assert {"sh", "apt-get", "dpkg"} <= set(rep["gone"])
        kept = (report_dir / "kept.txt").read_text().split()
        assert REPORT_MODULE in kept  # never traced, kept by the package guard
        assert "/usr/bin/python3" in kept and "/etc/passwd" in kept
        traced = (report_dir / "traced.txt").read_text().split()
        assert REPORT_MODULE not in traced
        assert any(p.endswith("/webapp/server.py") for p in traced)
        # The original is untouched and the new image is tagged.
        images = slimage(minify_store, "images", "--json")
        assert PYWEB_IMAGE.split(":")[0] in images.stdout and "pyweb-min" in images.stdout
        served = _served_by_docker(
            minify_store,
            "slimage-test/pyweb-min:1",
            8080,
            ["/", "/json", "/items/2", "/health", "/report"],
            tmp_path,
        )
    assert served["/"] == (200, b"Hello from python-web!\n")
    assert served["/items/2"][0] == 200 and b"banana" in served["/items/2"][1]
    assert served["/report"] == (200, b"id,name\n1,apple\n2,banana\n3,cherry\n")
    assert all(status == 200 for status, _ in served.values())
    assert _leftovers(minify_store) == []


def test_keep_packages_off_keeps_only_what_was_traced(minify_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """With the guard off, /report works only because a probe reached it and the trace saw
    the module; without that probe the module is gone."""
    with app_ports():
        probed = slimage(
            minify_store, "minify", PYWEB_IMAGE, "--keep-packages=off",
            "--http-probe", "GET:/report", "--report", str(tmp_path / "a"), "-q",
        )  # fmt: skip
        assert probed.returncode == 0, probed.stderr
        kept = (tmp_path / "a" / "kept.txt").read_text().split()
        assert REPORT_MODULE in kept
        assert json.loads((tmp_path / "a" / "report.json").read_text())["keep_packages"] == {}
        unprobed = slimage(
            minify_store, "minify", PYWEB_IMAGE, "--keep-packages=off",
            "--http-probe", "GET:/json", "--report", str(tmp_path / "b"), "-q",
        )  # fmt: skip
        assert unprobed.returncode == 0, unprobed.stderr
        assert REPORT_MODULE not in (tmp_path / "b" / "kept.txt").read_text().split()


def test_exclude_of_the_lazy_module_fails_verification(minify_store) -> None:  # type: ignore[no-untyped-def]
    before = slimage(minify_store, "images", "-q").stdout
    with app_ports():
        res = slimage(
            minify_store, "minify", PYWEB_IMAGE, "-t", "slimage-test/pyweb-broken:1",
            "--http-probe", "GET:/report", "--exclude", REPORT_MODULE, "-q",
        )  # fmt: skip
    assert res.returncode != 0
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in res.stderr, res.stderr
    assert "verification failed" in err[0]
    assert "GET :8080/report: status 200 -> 500" in err[0]
    assert REPORT_MODULE in err[0]
    # Nothing tagged, no untagged half image either.
    assert slimage(minify_store, "images", "-q").stdout == before
    assert _leftovers(minify_store) == []


def test_a_new_enoent_alone_fails_verification(minify_store) -> None:  # type: ignore[no-untyped-def]
    """Every probe answers the same, but the minified run looked for a file the original
    has and found it gone (here the compiled json module: Python falls back to the source,
    so no answer changes). That fails the job, naming the path."""
    pyc = "/usr/lib/python3.11/json/__pycache__/__init__.cpython-311.pyc"
    before = slimage(minify_store, "images", "-q").stdout
    with app_ports():
        res = slimage(
            minify_store, "minify", PYWEB_IMAGE, "-t", "slimage-test/pyweb-enoent:1",
            "--exclude", pyc, "-q",
        )  # fmt: skip
    assert res.returncode != 0
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and "Traceback" not in res.stderr, res.stderr
    assert "verification failed" in err[0] and "probes differ" not in err[0], err[0]
    assert "looked for paths it lacks" in err[0], err[0]
    assert f"{pyc} (excluded by --exclude {pyc})" in err[0], err[0]
    assert slimage(minify_store, "images", "-q").stdout == before
    assert _leftovers(minify_store) == []


def test_static_server_50x_and_reproducible(minify_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = {"SOURCE_DATE_EPOCH": "1700000000"}
    with app_ports():
        runs = [
            slimage(
                minify_store,
                "minify",
                STATIC_IMAGE,
                "-t",
                "slimage-test/static-min:1",
                "--http-probe",
                "GET:/health",
                "--json",
                env=env,
            )  # fmt: skip
            for _ in range(2)
        ]
        for r in runs:
            assert r.returncode == 0, r.stderr
        reps = [json.loads(r.stdout) for r in runs]
        assert reps[0]["minified"] == reps[1]["minified"]  # same digest, twice
        rep = reps[0]
        assert rep["factor"] >= 50, rep["factor"]
        assert rep["after"]["elf"] == 1  # the static binary, nothing else
        assert rep["probes"][0]["name"] == "GET :8081/health" and rep["probes"][0]["status"] == 200
        served = _served_by_docker(
            minify_store, "slimage-test/static-min:1", 8081, ["/", "/health", "/nope"], tmp_path
        )
    assert served["/"] == (200, b"Hello from static-server!\n")
    assert served["/nope"][0] == 404
    inspect = slimage(minify_store, "inspect", "slimage-test/static-min:1")
    cfg = json.loads(inspect.stdout)[0]["Config"]
    assert cfg["User"] == "nobody" and cfg["Cmd"] == ["/usr/local/bin/static-server"]
    assert "8081/tcp" in cfg["ExposedPorts"]


# ----------------------------------------------------------------------------- faults


def _one_line_error(res) -> str:  # type: ignore[no-untyped-def]
    assert res.returncode != 0
    assert "Traceback" not in res.stderr, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    return lines[0]


def test_no_command_is_refused(minify_store) -> None:  # type: ignore[no-untyped-def]
    from slimage.mutate import ImageAssembler
    from slimage.store.images import open_image

    asm = ImageAssembler(minify_store, open_image(minify_store, STATIC_IMAGE))
    asm.runtime["Cmd"] = None
    asm.runtime["Entrypoint"] = None
    asm.commit(tags=["slimage-test/no-cmd:1"])
    err = _one_line_error(slimage(minify_store, "minify", "slimage-test/no-cmd:1", "-q"))
    assert "no Entrypoint or Cmd" in err
    assert _leftovers(minify_store) == []


def test_port_that_never_answers(minify_store) -> None:  # type: ignore[no-untyped-def]
    with app_ports():
        res = slimage(
            minify_store, "minify", STATIC_IMAGE, "--port", "18099", "--probe-timeout", "3", "-q"
        )
    err = _one_line_error(res)
    assert "port 18099/tcp never answered on 127.0.0.1 within 3s" in err
    assert _leftovers(minify_store) == []


def test_app_exits_during_probing(minify_store) -> None:  # type: ignore[no-untyped-def]
    with app_ports():
        res = slimage(minify_store, "minify", PYWEB_IMAGE, "-e", "PORT=not-a-port", "-q")
    err = _one_line_error(res)
    assert "the application exited (code 1) before port 8080 answered" in err
    assert "ValueError" in err  # the last lines of its output
    assert _leftovers(minify_store) == []


def test_tracer_that_cannot_attach(minify_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A tracer that exits at once (here /bin/false as $SLIMAGE_STRACE): a clear error and
    no image, never an untraced one."""
    before = slimage(minify_store, "images", "-q").stdout
    with app_ports():
        res = slimage(
            minify_store, "minify", STATIC_IMAGE, "-q", env={"SLIMAGE_STRACE": "/bin/false"}
        )
    err = _one_line_error(res)
    assert "strace could not attach to the container's process" in err
    assert slimage(minify_store, "images", "-q").stdout == before
    assert _leftovers(minify_store) == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_interrupt_leaves_nothing(minify_store, sig: signal.Signals) -> None:  # type: ignore[no-untyped-def]
    before = slimage(minify_store, "images", "-q").stdout
    with app_ports():
        p = subprocess.Popen(
            ["python3", "-m", "slimage.cli.main", "minify", STATIC_IMAGE, "-t", "x/y:1",
             "--continue-after", "signal"],
            env=dict(os.environ, SLIMAGE_HOME=str(minify_store.root)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the traced app is up and probed
            runs = subprocess.run(["runc", "list", "-q"], capture_output=True, text=True).stdout
            if "slimage-minify-" in runs:
                try:
                    if _get("http://127.0.0.1:8081/health")[0] == 200:
                        break
                except OSError:
                    pass
            time.sleep(0.1)
        time.sleep(0.5)
        p.send_signal(sig)
        _, err = p.communicate(timeout=60)
    assert p.returncode == 128 + sig or (sig == signal.SIGINT and p.returncode == 130), err
    assert "Traceback" not in err and "interrupted" in err
    assert slimage(minify_store, "images", "-q").stdout == before
    assert _leftovers(minify_store) == []


def test_node_example_5x_and_served(minify_store, vanilla_image: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The seed's express app on the Debian node stand-in: >=5x smaller, node's ELF closure
    in the base layer, the app and its node_modules in a small top layer."""
    from tests.builder.conftest import load_from_docker
    from tests.runtime.conftest import port_3000

    load_from_docker(minify_store, vanilla_image)
    with port_3000():
        res = slimage(
            minify_store, "minify", vanilla_image, "-t", "slimage-test/node-min:1", "--json"
        )
        assert res.returncode == 0, res.stderr
        rep = json.loads(res.stdout)
        assert rep["factor"] >= 5, rep["factor"]
        assert rep["probes"][0]["name"] == "GET :3000/" and rep["verified"] == "passed"
        base, app = rep["layers"]
        assert base["part"] == "the base" and app["part"] == "the application"
        assert app["size"] < 10_000_000 < base["size"]
        assert "/app/node_modules/express" in rep["keep_packages"]
        # The floor: what the trace and its ELF closure strictly need (node's libraries,
        # ICU data, the traced JavaScript). The image may exceed it only by 5% plus what
        # keep-packages added (the app's node_modules, whole); the 5% covers the config's
        # and runtime's small files and /etc/ssl/certs (node links OpenSSL).
        assert rep["floor_bytes"] > 90_000_000
        assert rep["image_size_after"] <= 1.05 * rep["floor_bytes"] + rep["keep_packages_bytes"]
        served = _served_by_docker(minify_store, "slimage-test/node-min:1", 3000, ["/"], tmp_path)
    assert served["/"] == (200, b"Hello World!")
    assert _leftovers(minify_store) == []
