"""`slimage dive` opens its window before the layers are read: the layer list at once,
each size as its layer is read, the totals and the tree at the end. Driven for real (the
Textual pilot, and `slimage dive` itself on a pseudo-terminal) on the seed's vanilla image.

The pass is held back by a gate in some tests so that the loading state can be looked
at without racing it; everything else is the code a user runs."""

from __future__ import annotations

import asyncio
import fcntl
import multiprocessing
import os
import pty
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("textual")

from slimage.analysis.efficiency import Analysis, AnalysisCancelled  # noqa: E402
from slimage.analysis.target import open_target  # noqa: E402
from slimage.tui.app import DiveApp  # noqa: E402
from slimage.tui.filetree import FileTree  # noqa: E402
from slimage.tui.model import UNCHANGED, DiveLoad, DiveModel  # noqa: E402
from slimage.units import human_size  # noqa: E402
from tests.tui.test_dive import screen_text  # noqa: E402

pytestmark = pytest.mark.docker

SIZE = (150, 50)
SLIMAGE = [sys.executable, "-c", "import sys; from slimage.cli.main import main; sys.exit(main())"]


class GatedApp(DiveApp):
    """The real app, whose pass waits for `gate` before it reads the first layer."""

    def __init__(self, source: DiveLoad) -> None:
        super().__init__(source, started=time.perf_counter())
        self.gate = threading.Event()
        self.pass_ended = threading.Event()

    def _read_layers(self) -> None:
        self.gate.wait(60)
        try:
            super()._read_layers()
        finally:
            self.pass_ended.set()


@pytest.fixture(scope="module")
def model(vanilla_archive: Path) -> DiveModel:
    return DiveModel.load(open_target(str(vanilla_archive)))


def test_window_shows_layers_before_the_pass_and_fills_in(
    vanilla_archive: Path, model: DiveModel
) -> None:
    pending = DiveLoad(open_target(str(vanilla_archive)))
    pending.start()
    npm = next(i for i in range(model.layers) if "npm install" in model.command(i))

    async def main() -> None:
        app = GatedApp(pending)
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            text = screen_text(app)
            assert f"Reading layers: 0 of {model.layers} done" in text
            row = next(ln for ln in text.splitlines() if ln.startswith(f" {npm} "))
            assert "npm install" in row and "…" in row  # the command now, the size later
            assert "Efficiency" not in text
            # The keys work meanwhile: move to the npm layer, toggle a filter, search.
            while app.at_layer > npm:
                await pilot.press("up")
            await pilot.pause()
            assert "reading the layers…" in screen_text(app)
            await pilot.press("w")  # the wasted view needs the pass: a notice, no crash
            await pilot.press("ctrl+u")  # hide unchanged entries
            await pilot.press("slash", *"node_modules", "enter")
            await pilot.pause()
            assert app.dive is None
            app.gate.set()
            for _ in range(600):
                if app.first_screen_seconds is not None:
                    break
                await pilot.pause(0.05)
            assert app.dive is not None and app.failure is None
            assert app.frame_seconds is not None
            assert app.frame_seconds < app.first_screen_seconds
            await pilot.pause()
            text = screen_text(app)
            assert "Efficiency" in text and "Reading layers" not in text
            for lay in model.report.layers:  # every size arrived, as the loaded model says
                row = next(ln for ln in text.splitlines() if ln.startswith(f" {lay.index}"))
                assert human_size(lay.size_bytes) in row, row
            # What was asked for during the pass is in force: the search and the toggle.
            assert app.at_layer == npm
            assert "filter: node_modules" in text
            assert not app.query_one(FileTree).view.show & UNCHANGED
            assert "node_modules/" in text

    asyncio.run(main())


def test_leaving_during_the_pass_cancels_it(vanilla_archive: Path) -> None:
    pending = DiveLoad(open_target(str(vanilla_archive)))
    pending.start()
    app = GatedApp(pending)

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            await pilot.press("q")
        app.gate.set()  # the pass starts only now, after the user left

    asyncio.run(main())
    assert app.pass_ended.wait(30)
    assert app.dive is None and app.failure is None


def test_a_cancelled_pass_kills_its_helper_process(vanilla_archive: Path) -> None:
    os.environ["SLIMAGE_ANALYZE_JOBS"] = "2"  # always fork the helper, whatever the load
    try:
        analysis = Analysis(str(vanilla_archive), detail=True)
        analysis.start()
    finally:
        del os.environ["SLIMAGE_ANALYZE_JOBS"]
    assert multiprocessing.active_children(), "the helper process was not started"
    cancel = threading.Event()
    cancel.set()
    t0 = time.monotonic()
    with pytest.raises(AnalysisCancelled):
        analysis.run(cancel=cancel)
    assert time.monotonic() - t0 < 10
    for _ in range(100):
        if not multiprocessing.active_children():
            break
        time.sleep(0.05)
    assert not multiprocessing.active_children()


def _run_on_pty(args: list[str], keys: bytes, timeout: float = 120) -> tuple[int, str]:
    """Run ARGS with a pseudo-terminal as its stdin and stdout (150x50), send KEYS once
    it has drawn something, and return its exit status and everything it wrote."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 150, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color"}
    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env)
    os.close(slave)
    out = b""
    sent = False
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                out += chunk
                if not sent and keys and b"Command" in out:
                    os.write(master, keys)
                    sent = True
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return code, out.decode("utf-8", "replace")


def test_a_corrupt_layer_ends_the_window_with_a_one_line_error(
    vanilla_archive: Path, tmp_path: Path
) -> None:
    """The layers are hashed while the window is up; a mismatch closes it and says what
    and where, as `analyze` would, with no traceback."""
    bad = tmp_path / "corrupt.tar"
    shutil.copyfile(vanilla_archive, bad)
    target = open_target(str(bad))
    where = max((s for s in target.slices if s is not None), key=lambda s: s.length)
    with open(bad, "r+b") as f:  # one byte in the middle of the biggest layer's data
        f.seek(where.offset + where.length // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    code, out = _run_on_pty([*SLIMAGE, "dive", str(bad)], b"")
    assert code != 0
    assert "Traceback" not in out
    assert "corrupt.tar" in out and "layer" in out, out[-2000:]


def test_dive_on_a_terminal_opens_and_quits(vanilla_archive: Path) -> None:
    code, out = _run_on_pty([*SLIMAGE, "dive", str(vanilla_archive)], b"q")
    assert code == 0, out[-2000:]
    assert "npm install" in out  # the layer list was drawn


@pytest.mark.parametrize("how", ["SIGTERM", "SIGHUP", "terminal closed"])
def test_a_signal_ends_dive_and_its_helper_process(vanilla_archive: Path, how: str) -> None:
    """`kill`, or the terminal closing (tmux killing the pane), ends dive at once, with
    its helper process (a dive whose terminal was gone once ran on for good, its helper
    with it)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 150, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "SLIMAGE_ANALYZE_JOBS": "2"}
    tty = os.ttyname(slave)

    def own_terminal() -> None:  # as a terminal's shell: session leader, tty controlling
        os.setsid()
        os.close(os.open(tty, os.O_RDWR))

    proc = subprocess.Popen(
        [*SLIMAGE, "dive", str(vanilla_archive)],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        preexec_fn=own_terminal,
    )
    os.close(slave)
    out = b""
    try:
        deadline = time.monotonic() + 60
        while b"Command" not in out and time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                out += os.read(master, 65536)
        assert b"Command" in out
        helpers = _children(proc.pid)
        if how == "terminal closed":
            os.close(master)
            master = -1
            assert proc.wait(timeout=20) == 128 + signal.SIGHUP
        else:
            proc.send_signal(signal.Signals[how])
        deadline = time.monotonic() + 20
        while master >= 0 and proc.poll() is None and time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:  # it restores the terminal: read on
                try:
                    os.read(master, 65536)
                except OSError:
                    break
        if how != "terminal closed":
            assert proc.wait(timeout=5) == 128 + signal.Signals[how]
    finally:
        if proc.poll() is None:
            proc.kill()
        if master >= 0:
            os.close(master)
    for _ in range(100):
        if not any(Path(f"/proc/{pid}").exists() for pid in helpers):
            break
        time.sleep(0.1)
    assert not [pid for pid in helpers if Path(f"/proc/{pid}").exists()]


def _children(pid: int) -> list[int]:
    kids = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(k) for k in kids.read_text().split()] if kids.exists() else []


def test_the_helper_process_dies_with_its_parent(vanilla_archive: Path) -> None:
    """An analysing process killed outright (SIGKILL: no cleanup runs) takes its helper
    with it; a forked helper would otherwise wait on its own pipe forever."""
    code = (
        "import os, sys, time\n"
        "os.environ['SLIMAGE_ANALYZE_JOBS'] = '2'\n"
        "from slimage.analysis.efficiency import Analysis\n"
        "a = Analysis(sys.argv[1])\n"
        "a.start()\n"
        "print('started', flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(vanilla_archive)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "started"
        helpers = _children(proc.pid)
        assert helpers, "no helper process was forked"
        proc.kill()
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    for _ in range(100):
        if not any(Path(f"/proc/{pid}").exists() for pid in helpers):
            break
        time.sleep(0.1)
    assert not [pid for pid in helpers if Path(f"/proc/{pid}").exists()]
