"""Attacks on the runtime's and builder's cleanup: `slimage run --rm` and `slimage build`
killed by SIGTERM, SIGINT, SIGHUP, `timeout` and SIGKILL, with the real runtime (runc) as
root, against a temporary store holding a tiny busybox image made here.

After every kill: no mount under the store (read from /proc/self/mountinfo), no container
directory, no runc container with a bundle in the store, no `layers-unpacked/.tmp-*`, no
build workspace, and `slimage fsck` passes. A SIGKILLed process cannot clean up: the next
command (`ps`, `gc`, `run`, `build`) reaps what it left once its owner is gone.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

BUSYBOX = shutil.which("busybox")
RUNC = shutil.which("runc") or ("/usr/sbin/runc" if os.path.exists("/usr/sbin/runc") else None)
IMAGE = "slimage-test/busybox:adv"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0
    or not BUSYBOX
    or not RUNC
    or "overlay" not in open("/proc/filesystems").read(),
    reason="needs root, runc, overlayfs and a static busybox",
)


def _env(root: Path) -> dict[str, str]:
    return dict(os.environ, SLIMAGE_HOME=str(root))


def _cli(root: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "slimage.cli.main", *args],
        env=_env(root),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _spawn(root: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "slimage.cli.main", *args],
        env=_env(root),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def make_busybox_image(root: Path, work: Path, tag: str = IMAGE) -> None:
    """A one-layer image: the host's static busybox and a few applet links."""
    rootfs = work / "bbroot"
    (rootfs / "bin").mkdir(parents=True)
    (rootfs / "etc").mkdir()
    (rootfs / "tmp").mkdir()
    assert BUSYBOX is not None
    shutil.copy(BUSYBOX, rootfs / "bin" / "busybox")
    for applet in ("sh", "sleep", "echo", "cat", "ls", "true"):
        os.symlink("busybox", rootfs / "bin" / applet)
    (rootfs / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    tar = work / "bb.tar"
    subprocess.run(["tar", "-C", str(rootfs), "-cf", str(tar), "."], check=True)
    res = _cli(root, "import", str(tar), tag)
    assert res.returncode == 0, res.stderr


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "store"
    make_busybox_image(root, tmp_path)
    yield root
    # Whatever a failing test left must not outlive it.
    _cli(root, "ps", "-a")
    for target in sorted(_mounts(root), key=len, reverse=True):
        subprocess.run(["umount", "-l", target], capture_output=True)


def _mounts(root: Path) -> list[str]:
    with open("/proc/self/mountinfo") as fh:
        return [ln.split()[4] for ln in fh if ln.split()[4].startswith(str(root))]


def _runc_containers(root: Path) -> list[str]:
    res = subprocess.run([str(RUNC), "list", "--format", "json"], capture_output=True)
    listed = json.loads(res.stdout or b"null") or []
    return [c["id"] for c in listed if str(c.get("bundle", "")).startswith(str(root))]


def leftovers(root: Path) -> dict[str, list[str]]:
    def names(d: Path, pattern: str = "*") -> list[str]:
        return sorted(p.name for p in d.glob(pattern)) if d.is_dir() else []

    found = {
        "mounts": _mounts(root),
        "containers": names(root / "containers"),
        "runc": _runc_containers(root),
        "unpack-tmp": names(root / "layers-unpacked", ".tmp-*"),
        "build-work": names(root / "build-work"),
    }
    return {k: v for k, v in found.items() if v}


def _assert_clean(root: Path) -> None:
    assert leftovers(root) == {}
    fsck = _cli(root, "fsck")
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr


def _assert_one_line_exit(res_rc: int, stderr: str, expected_rc: int) -> None:
    assert res_rc == expected_rc, stderr
    assert "Traceback" not in stderr, stderr
    last = [ln for ln in stderr.splitlines() if ln.startswith("slimage:")]
    assert len(last) == 1, stderr


def _forget_unpacked(root: Path) -> None:
    """Drop the unpacked layers, so the next run extracts again (a kill can land there)."""
    base = root / "layers-unpacked"
    for d in base.iterdir() if base.is_dir() else []:
        if d.name != "empty":
            shutil.rmtree(d)


def _wait_running(root: Path, deadline: float = 30) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if _runc_containers(root):
            state = subprocess.run(
                [str(RUNC), "state", _runc_containers(root)[0]], capture_output=True
            )
            if b'"running"' in state.stdout:
                return
        time.sleep(0.05)
    raise AssertionError("the container never started")


EXIT = {signal.SIGTERM: 143, signal.SIGINT: 130, signal.SIGHUP: 129}


@pytest.mark.parametrize(
    "sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name
)
@pytest.mark.parametrize("delay", [0.15, 0.4, 0.8, "running"])
def test_run_rm_killed_leaves_nothing(root: Path, sig: signal.Signals, delay: object) -> None:
    """At several points of `run --rm` (start-up, extraction, mount, the running
    container): the signal ends the command and everything it made is gone."""
    _forget_unpacked(root)
    p = _spawn(root, "run", "--rm", IMAGE, "sleep", "300")
    if delay == "running":
        _wait_running(root)
    else:
        time.sleep(float(delay))  # type: ignore[arg-type]
    p.send_signal(sig)
    _, err = p.communicate(timeout=60)
    if p.returncode == -sig:
        # Killed before main() installed its handlers (interpreter start-up): nothing was
        # made yet, which the assertions below still check.
        pass
    else:
        _assert_one_line_exit(p.returncode, err, EXIT[sig])
    _assert_clean(root)


def test_run_rm_under_timeout_leaves_nothing(root: Path) -> None:
    """`timeout` signals the whole process group (slimage and runc) with SIGTERM."""
    _forget_unpacked(root)
    env = _env(root)
    res = subprocess.run(
        ["timeout", "3", sys.executable, "-m", "slimage.cli.main", "run", "--rm", IMAGE]
        + ["sleep", "300"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 124, res.stderr
    assert "Traceback" not in res.stderr
    _assert_clean(root)


def test_run_without_rm_interrupted_keeps_an_exited_container(root: Path) -> None:
    """As `docker run` without --rm: the container stays (exited, listed), nothing runs,
    and `rm` then removes its mount and directory."""
    p = _spawn(root, "run", "--name", "kept", IMAGE, "sleep", "300")
    _wait_running(root)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    _assert_one_line_exit(p.returncode, err, 143)
    assert _runc_containers(root) == []
    ps = _cli(root, "ps", "-a", "--json")
    rows = json.loads(ps.stdout)
    assert [(r["name"], r["status"]) for r in rows] == [("kept", "exited")]
    assert _cli(root, "rm", "kept").returncode == 0
    _assert_clean(root)


@pytest.mark.parametrize("next_command", [["ps", "-a"], ["gc"], ["run", "--rm", IMAGE, "true"]])
def test_sigkilled_run_is_reaped_by_the_next_command(root: Path, next_command: list[str]) -> None:
    p = _spawn(root, "run", "--rm", IMAGE, "sleep", "300")
    _wait_running(root)
    p.kill()
    p.communicate(timeout=30)
    left = leftovers(root)
    assert left.get("containers") and left.get("mounts") and left.get("runc")  # the attack
    res = _cli(root, *next_command)
    assert res.returncode == 0, res.stderr
    _assert_clean(root)


def test_live_runs_are_not_reaped(root: Path) -> None:
    """The reaper takes only what a dead process owned: a running `run --rm` survives
    `ps` from another process, and still cleans up after itself."""
    p = _spawn(root, "run", "--rm", IMAGE, "sh", "-c", "sleep 2; echo survived")
    _wait_running(root)
    assert _cli(root, "ps").returncode == 0
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert out.strip() == "survived"
    _assert_clean(root)


def _dead_owner_token() -> str:
    from slimage.runtime import owner

    p = subprocess.Popen(["sleep", "60"])
    token = owner.token(p.pid)
    p.kill()
    p.wait()
    return token


def test_dead_extraction_is_reaped(root: Path) -> None:
    """A layer extraction whose process was SIGKILLed (`.tmp-<owner>-*`) is removed by
    the next command that unpacks layers; a live owner's is left alone."""
    from slimage.runtime import owner

    base = root / "layers-unpacked"
    base.mkdir(exist_ok=True)
    dead = base / f".tmp-{_dead_owner_token()}-0123456789ab"
    (dead / "usr" / "bin").mkdir(parents=True)
    (dead / "usr" / "bin" / "half-written").write_bytes(b"x" * 1000)
    live = base / f".tmp-{owner.token()}-ba9876543210"  # this test process: alive
    live.mkdir()
    res = _cli(root, "run", "--rm", IMAGE, "true")
    assert res.returncode == 0, res.stderr
    assert not dead.exists()
    assert live.exists()
    live.rmdir()
    _assert_clean(root)


def _build_context(tmp: Path, body: str) -> Path:
    ctx = tmp / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(f"FROM {IMAGE}\n{body}")
    return ctx


@pytest.mark.parametrize(
    "sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name
)
def test_build_killed_during_run_leaves_nothing(
    root: Path, tmp_path: Path, sig: signal.Signals
) -> None:
    # The marker is computed by the RUN, so only its output (not the step line) shows it.
    ctx = _build_context(tmp_path, "RUN echo marker-$((40 + 2)); sleep 300\n")
    p = _spawn(root, "build", "--progress", "plain", "-t", "slimage-test/killed:1", str(ctx))
    assert p.stderr is not None
    seen = ""
    end = time.monotonic() + 60
    while "marker-42" not in seen and time.monotonic() < end:
        line = p.stderr.readline()
        if not line:
            break
        seen += line
    assert "marker-42" in seen, seen
    assert leftovers(root).get("mounts")  # the RUN's overlay is up
    p.send_signal(sig)
    _, err = p.communicate(timeout=60)
    _assert_one_line_exit(p.returncode, err, EXIT[sig])
    assert "build interrupted" in err
    assert _cli(root, "images", "-q", "slimage-test/killed:1").stdout.strip() == ""
    _assert_clean(root)


def test_build_under_timeout_leaves_nothing(root: Path, tmp_path: Path) -> None:
    ctx = _build_context(tmp_path, "RUN sleep 300\n")
    res = subprocess.run(
        ["timeout", "4", sys.executable, "-m", "slimage.cli.main", "build", "-q", str(ctx)],
        env=_env(root),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 124, res.stderr
    assert "Traceback" not in res.stderr
    _assert_clean(root)
