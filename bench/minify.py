"""`slimage minify` on the project's example apps: size before/after, and time next to a
plain `slimage run` of the same image with the same probes (the issue's speed target is
minify <= 3x that).

Usage (as root, Docker engine running, the images built; tests/minify builds the Python
and static ones, tests/support/testbed.py the node one):

    python bench/minify.py [--repeat N] [IMAGE=PORT:PROBE,PROBE ...]

Default: the three examples, 3 repeats. Each image is loaded into a fresh temp store,
minified once to warm the unpacked layers (not counted), then timed N times, minify and
the plain run (start, wait for the port, the probes, stop) taking turns so that a change
in the machine's load hits both: minify (two traced runs, closure, write, verification)
and the plain run, medians. Prints a markdown table, the load average, and the median of
each phase minify reports (`seconds`; the closure, the writing and the size count overlap
other phases, see slimage.minify.api).
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from bench.common import slimage_command, user_env  # noqa: E402
from slimage.units import human_size  # noqa: E402

DOCKER = "/usr/bin/docker"


def _defaults() -> list[str]:
    from tests.minify.conftest import PYWEB_IMAGE, STATIC_IMAGE

    return [
        f"{PYWEB_IMAGE}=8080:/,/json,/items/2,/health",
        f"{STATIC_IMAGE}=8081:/,/health",
        "slimage-test/node-vanilla:latest=3000:/",
    ]


def _wait_port(port: int, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"port {port} never answered")


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([*slimage_command(), *args], env=env, capture_output=True, text=True)
    if res.returncode != 0:
        raise SystemExit(f"slimage {' '.join(args)}: {res.stderr.strip()}")
    return res


def plain_run(env: dict[str, str], image: str, port: int, paths: list[str]) -> float:
    t0 = time.monotonic()
    _run(env, "run", "-d", "--name", "bench-plain", image)
    _wait_port(port)
    for p in paths:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{p}", timeout=10) as r:
            r.read()
    _run(env, "stop", "-t", "2", "bench-plain")
    _run(env, "rm", "bench-plain")
    return time.monotonic() - t0


def main(specs: list[str], repeat: int) -> None:
    rows = []
    phases: list[str] = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-minify-") as tmp:
        env = user_env(SLIMAGE_HOME=os.path.join(tmp, "store"), SOURCE_DATE_EPOCH="1700000000")
        for spec in specs:
            image, _, rest = spec.partition("=")
            port_s, _, paths_s = rest.partition(":")
            port, paths = int(port_s), paths_s.split(",")
            archive = os.path.join(tmp, "img.tar")
            subprocess.run([DOCKER, "save", "-o", archive, image], check=True)
            _run(env, "load", "-i", archive)
            os.unlink(archive)
            probes = [a for p in paths for a in ("--http-probe", f"GET:{p}")]
            _run(env, "minify", image, *probes, "-q", "--json")  # warm: unpack layers
            t_mins, t_plains, seconds = [], [], []
            for _ in range(repeat):
                t0 = time.monotonic()
                rep = json.loads(_run(env, "minify", image, *probes, "--json").stdout)
                t_mins.append(time.monotonic() - t0)
                seconds.append(rep["seconds"])
                t_plains.append(plain_run(env, image, port, paths))
            t_min, t_plain = statistics.median(t_mins), statistics.median(t_plains)
            ratio = t_min / t_plain
            rows.append(
                [
                    image,
                    human_size(rep["image_size_before"]),
                    human_size(rep["image_size_after"]),
                    f"{rep['factor']:.1f}x",
                    f"{rep['after']['elf']}/{rep['before']['elf']}",
                    f"{t_min:.1f} s",
                    f"{t_plain:.1f} s",
                    f"{ratio:.1f}x ({'met' if ratio <= 3 else 'not met'})",
                ]
            )
            keys = [k for k in seconds[0] if all(k in s for s in seconds)]
            split = ", ".join(f"{k} {statistics.median(s[k] for s in seconds):.2f}" for k in keys)
            phases.append(
                f"- {image}: minify {' '.join(f'{t:.1f}' for t in t_mins)} s, "
                f"plain {' '.join(f'{t:.1f}' for t in t_plains)} s; phases (median): {split}"
            )
    load_after = os.getloadavg()
    print(
        "| image | before | after | factor | ELF kept | minify (2 traced runs + verify)"
        " | plain run + probes | ratio (target <= 3x) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print("| " + " | ".join(r) + " |")
    print()
    print(
        f"{repeat} timed runs each (medians above); load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after"
    )
    for line in phases:
        print(line)


if __name__ == "__main__":
    args = sys.argv[1:]
    n = 3
    if args[:1] == ["--repeat"]:
        n, args = int(args[1]), args[2:]
    main(args or _defaults(), n)
