"""`slimage optimize` end to end on the example app, with real builds, runc and probes."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.optimize.conftest import EXAMPLES, cli
from tests.runtime.conftest import port_3000


def _rows(report: dict) -> dict[str, dict]:
    return {r["name"]: r for r in report["rows"]}


def test_node_every_variant_builds_and_answers(node_run: dict) -> None:
    rep = node_run["report"]
    rows = _rows(rep)
    assert list(rows) == ["as-written", "fixed", "multi-stage", "distroless", "musl", "minified"]
    for name in ("as-written", "fixed", "multi-stage", "distroless", "minified"):
        row = rows[name]
        assert row["status"] == "ok", (name, row["reason"])
        assert row["tag"] == f"slimage-test/hello-express:optimize-{name}"
        assert [p["status"] for p in row["probes"]] == [200], name
        # Every variant answers exactly what as-written answers (Hello World!).
        assert row["probes"][0]["body_sha256"] == rows["as-written"]["probes"][0]["body_sha256"]
        assert row["first_answer"] is not None and row["first_answer"] > 0
    # musl: skipped before anything breaks, with compat's reason.
    assert rows["musl"]["status"] == "skipped"
    assert "glibc loader" in rows["musl"]["reason"] and "node" in rows["musl"]["reason"]
    # The generated stages copy the app, not the npm cache; npm start became node index.js.
    assert rep["app_roots"] == ["/app"] and rep["dropped"].get("npm cache", 0) > 0
    assert any("node index.js" in n for n in rows["multi-stage"]["notes"])
    final = rows["distroless"]["dockerfile"].split("the run-time stage", 1)[1]
    assert 'CMD ["npm", "start"]' not in final and 'CMD ["index.js"]' in final
    assert rep["preset"] == "nodejs"
    # Sizes: the distroless variant is far smaller; nothing beats it but minify.
    size = {n: r["measures"]["size"] for n, r in rows.items() if r["measures"]}
    assert size["distroless"] * 3 < size["as-written"]
    assert size["minified"] <= size["distroless"]
    # The recommendation (safest): no shell and no package manager, and it passes.
    rec = rows[rep["recommended"]]
    assert rec["status"] == "ok"
    assert rec["measures"]["shells"] == [] and rec["measures"]["package_managers"] == []
    assert rows["as-written"]["measures"]["shells"]  # the article's point: it had them
    assert rep["advice"].startswith(f"Use {rec['name']} (") and "give up" in rep["advice"]


def test_node_written_dockerfile_builds_and_answers(node_run: dict, optimize_store) -> None:
    from slimage.builder.api import BuildOptions, build
    from slimage.minify.probe import HttpProbe
    from slimage.optimize.measure import probe_run

    path = node_run["dir"] / "Dockerfile.recommended"
    text = path.read_text()
    first = text.splitlines()[0]
    assert first.startswith("# ") and "slimage optimize" in first
    assert "slimage base build nodejs" in text and "--load" in text and "docker build" in text
    tag = "slimage-test/hello-express:written"
    build(
        BuildOptions(context=str(node_run["context"]), dockerfile=str(path), tags=[tag]),
        optimize_store,
    )
    with port_3000():
        out = probe_run(optimize_store, tag, [HttpProbe("GET", "/", 3000)], timeout=60)
    assert out.ok, out.error
    import hashlib

    assert out.results[0].body_sha256 == "sha256:" + hashlib.sha256(b"Hello World!").hexdigest()


def test_node_text_table_is_answer_first(node_run: dict, optimize_store) -> None:
    # Warm: everything is cached now; the text output leads with the advice, then the table.
    with port_3000():
        r = cli(
            optimize_store,
            "optimize",
            str(node_run["context"]),
            "--name",
            "slimage-test/hello-express",
            "--skip",
            "minified,fixed",
            "--prefer",
            "debuggable",
        )
    assert r.returncode == 0, r.stderr[-2000:]
    lines = r.stdout.splitlines()
    assert lines[0].startswith("Use multi-stage (") and "shell" in lines[0]
    assert lines[2].split()[:4] == ["VARIANT", "IMAGE", "SIZE", "LAYERS"]
    assert any(line.startswith("musl ") and "skipped" in line for line in lines)
    # SI units, Docker's style.
    assert any("MB" in line and line.startswith("distroless") for line in lines)


def test_faulty_variant_row_says_why_and_others_go_on(optimize_store, tmp_path) -> None:
    """An app that runs `ls` per request: without a shell toolbox (distroless) it answers
    500, so that row fails with the difference; the others go on and the exit is 0."""
    ctx = tmp_path / "needs-ls"
    shutil.copytree(EXAMPLES / "hello-express", ctx)
    (ctx / "index.js").write_text(
        "const express = require('express');\n"
        "const { execFileSync } = require('child_process');\n"
        "const app = express();\n"
        "app.get('/', (req, res) => {\n"
        "  try { execFileSync('ls', ['/']); res.send('listed'); }\n"
        "  catch (e) { res.status(500).send('no ls'); }\n"
        "});\n"
        "app.listen(3000);\n"
    )
    with port_3000():
        r = cli(
            optimize_store,
            "optimize",
            str(ctx),
            "--name",
            "slimage-test/needs-ls",
            "--skip",
            "fixed,minified,musl",
        )
    assert r.returncode == 0, r.stderr[-2000:]
    assert "Traceback" not in r.stderr
    notes = {line.split(":", 1)[0]: line for line in r.stdout.splitlines() if ": failed: " in line}
    assert "distroless" in notes and "answered 500 (as-written: 200)" in notes["distroless"]
    table = [line for line in r.stdout.splitlines() if line.startswith("multi-stage ")]
    assert table and "1/1 ok" in table[0]
    # Safest had to fall back: the only passing generated variant has a shell.
    assert "no passing variant is free of shells" in r.stdout.splitlines()[0]


def test_as_written_failure_is_one_line_with_file_line(optimize_store, tmp_path) -> None:
    ctx = tmp_path / "broken"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM slimage-example/node:bookworm\nWORKDIR /app\nRUN echo about to fail && exit 3\n"
    )
    r = cli(optimize_store, "optimize", str(ctx), "--name", "slimage-test/broken")
    assert r.returncode != 0
    err = [line for line in r.stderr.splitlines() if line.startswith("slimage:")]
    assert len(err) == 1 and "Traceback" not in r.stderr, r.stderr
    assert f"{ctx}/Dockerfile:3" in err[0] and "exit code: 3" in err[0]
    assert "about to fail" in err[0]  # the output tail
    # Nothing half-made: no tag for the failed build.
    images = cli(optimize_store, "images").stdout
    assert "slimage-test/broken" not in images
    # No Dockerfile and no image of that name: one line too.
    r2 = cli(optimize_store, "optimize", "no-such-dir-or-image")
    assert r2.returncode != 0 and len(r2.stderr.strip().splitlines()) == 1
    assert "no-such-dir-or-image" in r2.stderr and "Traceback" not in r2.stderr


def test_no_containers_or_mounts_left(node_run: dict, optimize_store) -> None:
    root = str(optimize_store.root)
    with open("/proc/self/mountinfo") as fh:
        mounts = [line.split()[4] for line in fh if root in line.split()[4]]
    assert mounts == []
    ps = subprocess.run(["runc", "list", "-q"], capture_output=True, text=True).stdout
    assert "slimage-optimize" not in ps
    work = optimize_store.root / "optimize-work"
    assert not work.exists() or not list(work.iterdir()), list(work.rglob("*"))[:5]


@pytest.mark.parametrize("prefer", ["smallest"])
def test_prefer_is_checked(optimize_store, prefer: str) -> None:
    r = cli(optimize_store, "optimize", ".", "--prefer", "tiniest")
    assert r.returncode == 2 and "Traceback" not in r.stderr


@pytest.mark.parametrize("when", ["optimize: running distroless", "optimize: building multi-stage"])
def test_ctrl_c_leaves_nothing_behind(node_run: dict, optimize_store, when: str) -> None:
    """SIGINT while a variant runs (or builds): exit 130, no container, mount or work
    directory left; the variants finished before stay tagged."""
    import os
    import signal
    import sys
    import time

    env = dict(os.environ, SLIMAGE_HOME=str(optimize_store.root))
    with port_3000():
        p = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "slimage.cli.main",
                "optimize",
                str(node_run["context"]),
                "--name",
                "slimage-test/interrupted",
                "--skip",
                "fixed,minified",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        seen = []
        assert p.stderr is not None
        deadline = time.monotonic() + 600
        for line in p.stderr:
            seen.append(line)
            if line.startswith(when) or time.monotonic() > deadline:
                break
        time.sleep(0.3)
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=120)
    assert p.returncode == 130, "".join(seen) + err
    assert "Traceback" not in err
    root = str(optimize_store.root)
    with open("/proc/self/mountinfo") as fh:
        assert [ln for ln in fh if root in ln.split()[4]] == []
    ps = subprocess.run(["runc", "list", "-q"], capture_output=True, text=True).stdout
    containers = optimize_store.root / "containers"
    assert not containers.exists() or list(containers.iterdir()) == [], ps
    work = optimize_store.root / "optimize-work"
    assert not work.exists() or list(work.iterdir()) == []
    images = subprocess.run(
        [sys.executable, "-m", "slimage.cli.main", "images"],
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    assert "optimize-as-written" in images
    fsck = subprocess.run(
        [sys.executable, "-m", "slimage.cli.main", "fsck"], capture_output=True, text=True, env=env
    )
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr


def test_written_dockerfile_builds_with_docker(
    node_run: dict, optimize_store, docker_engine
) -> None:
    """The written file, as its first comment says: the base into the engine with
    `slimage base build nodejs --load`, then `docker build`; it answers Hello World!.
    (Test-only names: the FROM lines are pointed at slimage-test/ tags of the same images.)"""
    import os
    import time

    from slimage.minify.probe import HttpProbe, run_http, wait_for_port
    from tests.bases.support import CACHE
    from tests.support import testbed

    base_tag = "slimage-test/optimize-base-nodejs:bookworm"
    r = cli(
        optimize_store, "base", "build", "nodejs", "-t", base_tag, "--load", "--cache", str(CACHE)
    )
    assert r.returncode == 0, r.stderr
    assert testbed.image_exists(base_tag)
    text = (node_run["dir"] / "Dockerfile.recommended").read_text()
    text = text.replace("FROM slimage-base/nodejs:bookworm", f"FROM {base_tag}")
    text = text.replace("FROM slimage-example/node:bookworm", f"FROM {testbed.NODE8_IMAGE}")
    path = node_run["dir"] / "Dockerfile.docker"
    path.write_text(text)
    tag = "slimage-test/optimize-written:docker"
    buildkit = subprocess.run([testbed.DOCKER, "buildx", "version"], capture_output=True)
    env = dict(os.environ, DOCKER_BUILDKIT="1" if buildkit.returncode == 0 else "0")
    b = subprocess.run(
        [testbed.DOCKER, "build", "-q", "--network", "host", "-f", str(path), "-t", tag]
        + [str(node_run["context"])],
        capture_output=True,
        text=True,
        env=env,
    )
    assert b.returncode == 0, b.stderr[-2000:]
    with port_3000():
        cid = testbed.docker("run", "-d", "--network", "host", tag, capture_output=True, text=True)
        try:
            assert wait_for_port(3000, time.monotonic() + 60, lambda: True)
            res = run_http(HttpProbe("GET", "/", 3000), timeout=30)
        finally:
            testbed.docker("rm", "-f", cid.stdout.strip(), check=False, capture_output=True)
    assert res.status == 200 and res.body_bytes == len(b"Hello World!")
