"""Containers on runc: Docker's process rules, lifecycle verbs, and the seed app served
both ways (slimage-built under Docker, Docker-built under slimage)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.builder import standins
from tests.builder.conftest import cli_env, load_from_docker
from tests.runtime.conftest import port_3000
from tests.support import testbed


def _cli(store, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    return subprocess.run(
        [sys.executable, "-m", "slimage.cli.main", *args],
        env=cli_env(store),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _get(url: str, deadline: float = 30.0) -> str:
    end = time.monotonic() + deadline
    last: Exception | None = None
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.read().decode()
        except OSError as exc:
            last = exc
            time.sleep(0.3)
    raise AssertionError(f"{url} never answered: {last}")


def _our_mounts(store) -> list[str]:  # type: ignore[no-untyped-def]
    with open("/proc/self/mountinfo") as fh:
        return [ln.split()[4] for ln in fh if str(store.root) in ln.split()[4]]


PROBE_DOCKERFILE = """\
FROM slimage-test/debian:bookworm
RUN useradd -u 1234 -m probe && mkdir -p /srv/work
ENV FOO=image-foo KEEP=kept
WORKDIR /srv/work
ENTRYPOINT ["/bin/sh", "-c", "echo \\"argv:$0 $*\\"; echo uid:$(id -u) gid:$(id -g) groups:$(id -G); echo pwd:$(pwd); echo foo:$FOO keep:$KEEP home:$HOME path:$PATH"]
CMD ["default-arg"]
"""

FLAG_SETS = [
    [],
    ["one", "two"],
    ["-e", "FOO=from-flag", "-e", "NEW=1"],
    ["-w", "/tmp"],
    ["--user", "probe"],
    ["--user", "1000:1000"],
    ["--entrypoint", "/bin/echo"],
    ["--entrypoint", "/bin/echo", "x", "y"],
]


@pytest.fixture(scope="module")
def probe_image(build_store, docker_engine: str) -> str:  # type: ignore[no-untyped-def]
    tag = "slimage-test/runtime-probe:1"
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "Dockerfile").write_text(PROBE_DOCKERFILE)
        testbed.build(tag, Path(tmp))
    load_from_docker(build_store, tag)
    return tag


@pytest.mark.parametrize("flags", FLAG_SETS, ids=lambda f: " ".join(f) or "defaults")
def test_process_is_decided_as_docker_decides(
    build_store, probe_image: str, flags: list[str]
) -> None:  # type: ignore[no-untyped-def]
    opts = [f for f in flags if f.startswith("-") or flags[flags.index(f) - 1].startswith("-")]
    args = flags[len(opts) :]
    docker = testbed.docker(
        "run",
        "--rm",
        "--network",
        "host",
        *opts,
        probe_image,
        *args,
        capture_output=True,
        text=True,
    )
    ours = _cli(build_store, "run", "--rm", *opts, probe_image, *args)
    assert ours.returncode == docker.returncode == 0, ours.stderr
    assert ours.stdout == docker.stdout


def test_lifecycle_ps_logs_exec_stop_rm(build_store, probe_image: str) -> None:  # type: ignore[no-untyped-def]
    name = "slimage-life"
    _cli(build_store, "rm", "-f", name)
    run = _cli(
        build_store,
        "run",
        "-d",
        "--name",
        name,
        "--entrypoint",
        "/bin/sh",
        probe_image,
        "-c",
        "echo hello-from-log; trap 'echo got-term; exit 0' TERM; while true; do sleep 0.2; done",
    )
    assert run.returncode == 0, run.stderr
    cid = run.stdout.strip()
    assert len(cid) == 64
    ps = _cli(build_store, "ps")
    assert "CONTAINER ID" in ps.stdout and name in ps.stdout and "Up" in ps.stdout
    time.sleep(0.5)
    assert "hello-from-log" in _cli(build_store, "logs", name).stdout
    ex = _cli(build_store, "exec", name, "sh", "-c", "echo $FOO; pwd; id -u")
    assert ex.returncode == 0 and ex.stdout.split() == ["image-foo", "/srv/work", "0"]
    stop = _cli(build_store, "stop", "-t", "5", name)
    assert stop.returncode == 0
    assert "got-term" in _cli(build_store, "logs", name).stdout  # StopSignal went first
    assert name not in _cli(build_store, "ps").stdout
    assert "Exited" in _cli(build_store, "ps", "-a").stdout
    assert _cli(build_store, "rm", name).returncode == 0
    assert name not in _cli(build_store, "ps", "-a").stdout
    assert cid not in subprocess.run(["runc", "list", "-q"], capture_output=True, text=True).stdout
    assert _our_mounts(build_store) == []
    gone = _cli(build_store, "logs", name)
    assert gone.returncode != 0 and "No such container" in gone.stderr


def test_network_none_and_rm(build_store, probe_image: str) -> None:  # type: ignore[no-untyped-def]
    res = _cli(
        build_store,
        "run",
        "--rm",
        "--network",
        "none",
        "--entrypoint",
        "/bin/sh",
        probe_image,
        "-c",
        "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '",
    )
    assert res.returncode == 0 and res.stdout.split() == ["lo"]
    assert _cli(build_store, "ps", "-a", "-q").stdout.strip() == ""


@pytest.mark.parametrize("runtime", ["runc", "crun"])
def test_exit_code_is_passed_through(build_store, probe_image: str, runtime: str) -> None:  # type: ignore[no-untyped-def]
    res = _cli(
        build_store,
        "run",
        "--rm",
        "--runtime",
        runtime,
        "--entrypoint",
        "/bin/sh",
        probe_image,
        "-c",
        "echo ran-on-$0; exit 3",
    )
    assert res.returncode == 3, res.stderr
    assert "ran-on-/bin/sh" in res.stdout


def test_docker_built_vanilla_serves_under_slimage(build_store, vanilla_image: str) -> None:  # type: ignore[no-untyped-def]
    load_from_docker(build_store, vanilla_image)
    with port_3000():
        run = _cli(build_store, "run", "-d", "--name", "vanilla-from-docker", vanilla_image)
        assert run.returncode == 0, run.stderr
        try:
            assert _get("http://127.0.0.1:3000/") == "Hello World!"
            sh = _cli(build_store, "exec", "vanilla-from-docker", "sh", "-c", "echo shell-ok")
            assert sh.stdout.strip() == "shell-ok"
        finally:
            _cli(build_store, "rm", "-f", "vanilla-from-docker")
    assert _our_mounts(build_store) == []


def test_slimage_built_vanilla_serves_under_docker(
    build_store, tmp_path: Path, node8_image: str
) -> None:  # type: ignore[no-untyped-def]
    from slimage.builder import BuildOptions, build

    ctx = standins.scenario_context(tmp_path, "Dockerfile")
    tag = "slimage-test/built-by-slimage:vanilla"
    build(BuildOptions(str(ctx), tags=[tag], load=True, quiet=True), store=build_store)
    with port_3000():
        cid = testbed.docker(
            "run", "-d", "--network", "host", tag, capture_output=True, text=True
        ).stdout.strip()
        try:
            assert _get("http://127.0.0.1:3000/") == "Hello World!"
        finally:
            testbed.docker("rm", "-f", cid, capture_output=True)


def test_distroless_has_no_shell_but_runs_node(
    build_store, tmp_path: Path, node8_image: str
) -> None:  # type: ignore[no-untyped-def]
    from slimage.builder import BuildOptions, build

    ctx = standins.scenario_context(tmp_path, "Dockerfile.distroless")
    tag = "slimage-test/built-by-slimage:distroless"
    build(
        BuildOptions(str(ctx), str(ctx / "Dockerfile.distroless"), tags=[tag], quiet=True),
        store=build_store,
    )
    with port_3000():
        run = _cli(build_store, "run", "-d", "--name", "distroless-web", tag)
        assert run.returncode == 0, run.stderr
        try:
            assert _get("http://127.0.0.1:3000/") == "Hello World!"
            for shell in ("sh", "bash"):
                res = _cli(build_store, "exec", "-it", "distroless-web", shell)
                assert res.returncode != 0
                assert "no shell" in res.stderr and "exec -it distroless-web node" in res.stderr
                assert "Traceback" not in res.stderr
            node = _cli(build_store, "exec", "distroless-web", "node", "-e", "console.log(6*7)")
            assert node.returncode == 0 and node.stdout.strip() == "42"
        finally:
            _cli(build_store, "rm", "-f", "distroless-web")


def test_detached_rm_is_removed_after_exit_and_docker_daemon_refs_work(
    build_store, probe_image: str
) -> None:  # type: ignore[no-untyped-def]
    run = _cli(
        build_store,
        "run",
        "-d",
        "--rm",
        "--name",
        "short-lived",
        "--entrypoint",
        "/bin/true",
        f"docker-daemon:{probe_image}",
    )
    assert run.returncode == 0, run.stderr
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and "short-lived" in _cli(build_store, "ps", "-a").stdout:
        time.sleep(0.3)
    assert "short-lived" not in _cli(build_store, "ps", "-a").stdout
    assert _our_mounts(build_store) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "slimage-test/no-such-image:1"], "No such image"),
        (["exec", "no-such-container", "sh"], "No such container"),
        (["stop", "no-such-container"], "No such container"),
        (["logs", "no-such-container"], "No such container"),
        (
            ["run", "--rm", "-w", "relative/dir", "slimage-test/debian:bookworm", "true"],
            "needs to be an absolute path",
        ),
        (["run", "--rm", "slimage-test/debian:bookworm", "/no/such/binary"], "executable file not found"),
    ],
)
def test_runtime_errors_are_one_line(build_store, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    res = _cli(build_store, *args)
    assert res.returncode != 0
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("slimage: error:")]
    assert len(lines) == 1 and message in lines[0], res.stderr
    assert "Traceback" not in res.stderr
    assert _our_mounts(build_store) == []


def test_rm_refuses_a_running_container_without_force(build_store, probe_image: str) -> None:  # type: ignore[no-untyped-def]
    run = _cli(
        build_store, "run", "-d", "--name", "busy", "--entrypoint", "/bin/sleep", probe_image, "60"
    )
    assert run.returncode == 0, run.stderr
    try:
        res = _cli(build_store, "rm", "busy")
        assert res.returncode != 0 and "Stop the container before" in res.stderr
        assert "busy" in _cli(build_store, "ps").stdout
    finally:
        assert _cli(build_store, "rm", "-f", "busy").returncode == 0
    assert _our_mounts(build_store) == []


def test_foreground_output_is_shown_and_kept_for_logs_and_stdin_with_i(
    build_store, probe_image: str
) -> None:  # type: ignore[no-untyped-def]
    res = _cli(
        build_store,
        "run",
        "--name",
        "fg-logs",
        "--entrypoint",
        "/bin/sh",
        probe_image,
        "-c",
        "echo out-line; echo err-line >&2",
    )
    try:
        assert res.returncode == 0
        assert res.stdout == "out-line\n" and "err-line" in res.stderr
        logs = _cli(build_store, "logs", "fg-logs").stdout
        assert "out-line" in logs and "err-line" in logs
    finally:
        _cli(build_store, "rm", "-f", "fg-logs")
    piped = subprocess.run(
        [
            sys.executable,
            "-m",
            "slimage.cli.main",
            "run",
            "-i",
            "--rm",
            "--entrypoint",
            "/bin/cat",
            probe_image,
        ],
        input="through stdin\n",
        env=cli_env(build_store),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert piped.returncode == 0 and piped.stdout == "through stdin\n"
