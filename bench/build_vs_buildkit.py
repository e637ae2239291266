"""slimage build vs BuildKit on the seed's vanilla Dockerfile, from the same local base.

Usage: python bench/build_vs_buildkit.py [--runs N] [--out bench/results/build.md]

Both builders start with the base (`slimage-test/node:8`, the node:8 stand-in) already
at hand and unpacked: BuildKit has it as a snapshot in the engine, slimage in its store
(loaded via `docker save` and unpacked by one untimed build). Then, alternating the two
builders in the same run:

1. cold build: `--no-cache` (every step runs: WORKDIR, COPY, `RUN npm install`);
2. warm no-op rebuild: nothing changed, both answer from their cache;
3. layer compression speed: the base's biggest layer (~360 MB uncompressed) through the
   builder's compressor (isal gzip, zstd), and through `store_layer_tar` (hash + scan +
   compress + write, what every new layer goes through).

Wall times are for the commands as a user types them (`slimage build` is the installed
console script; `DOCKER_BUILDKIT=1 docker build`). Medians are reported.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from common import slimage_command, user_env  # noqa: E402

from tests.support import testbed  # noqa: E402

DOCKER = "/usr/bin/docker"


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3, help="cold runs per builder (warm: 3x)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "build.md"))
    args = ap.parse_args()
    if os.geteuid() != 0 or not testbed.docker_ok():
        print("needs root and a running Docker engine")
        return 1

    from slimage.store.images import ingest
    from slimage.store.store import Store
    from slimage.transports.docker_archive import open_archive

    base = testbed.ensure_node8()
    tmp = Path(tempfile.mkdtemp(prefix="slimage-bench-build-"))
    ctx = testbed.scenario_context(tmp)
    store_root = tmp / "store"
    store = Store(store_root)
    for image in open_archive(testbed.saved_archive(base, "node8-bench")):
        ingest(store, image, tags=[base])
    env_s = user_env(SLIMAGE_HOME=str(store_root))
    env_d = dict(os.environ, DOCKER_BUILDKIT="1")
    slim_build = [*slimage_command(), "build"]
    slim = [*slim_build, "-q", "-t", "bench-vanilla", str(ctx)]
    bk = [
        DOCKER,
        "build",
        "--network",
        "host",
        "-q",
        "-t",
        "slimage-bench/buildkit-vanilla",
        str(ctx),
    ]
    # Untimed: unpack the base for slimage; make sure BuildKit's snapshot of it exists.
    timed(slim, env_s)
    timed(bk, env_d)

    cold_s, cold_b = [], []
    for _ in range(args.runs):
        cold_b.append(timed(bk[:2] + ["--no-cache"] + bk[2:], env_d))
        cold_s.append(timed([*slim_build, "--no-cache", *slim[len(slim_build) :]], env_s))
    warm_s, warm_b = [], []
    for _ in range(args.runs * 3):
        warm_b.append(timed(bk, env_d))
        warm_s.append(timed(slim, env_s))

    # Compression: the biggest base layer, decompressed into memory once.
    from slimage.layers.compression import Compressor
    from slimage.store.images import open_image, store_layer_tar

    img = open_image(store, base)
    big = max(img.layers, key=lambda layer: store.layer_info(layer.diff_id).uncompressed_size)  # type: ignore[union-attr]
    data = big.open_tar().read()
    mb = len(data) / 1e6
    speeds = {}
    for kind in ("gzip", "zstd"):
        best = 0.0
        for _ in range(2):
            comp = Compressor(kind)
            view = memoryview(data)
            t = time.perf_counter()
            for off in range(0, len(data), 1 << 20):
                comp.compress(view[off : off + (1 << 20)])
            comp.flush()
            best = max(best, mb / (time.perf_counter() - t))
        speeds[kind] = best
    scratch = Store(tmp / "store-compress")
    t = time.perf_counter()
    store_layer_tar(scratch, io.BytesIO(data), compression="gzip")
    ingest_speed = mb / (time.perf_counter() - t)

    med = statistics.median
    rows = [
        ("cold build (--no-cache)", med(cold_s), med(cold_b), 1.2),
        ("warm no-op rebuild", med(warm_s), med(warm_b), 1.0),
    ]
    lines = [
        "# slimage build vs BuildKit",
        "",
        f"Seed vanilla Dockerfile (`FROM {base}`, WORKDIR, COPY, `RUN npm install`, CMD), same",
        "local base for both, alternating runs in one session; medians of "
        f"{args.runs} cold and {args.runs * 3} warm runs. Command: `python bench/build_vs_buildkit.py`.",
        f"Machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end (shared with other jobs).",
        "",
        "| case | slimage | BuildKit | ratio | target |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, s, b, target in rows:
        ok = "ok" if s / b <= target else "MISSED"
        lines.append(f"| {name} | {s:.2f} s | {b:.2f} s | {s / b:.2f}x | <= {target}x ({ok}) |")
    lines += [
        "",
        f"Layer compression ({mb:.0f} MB uncompressed layer, the base's largest):",
        "",
        "| path | MB/s (uncompressed input) | target |",
        "| --- | --- | --- |",
        f"| Compressor gzip (isal level 1) | {speeds['gzip']:.0f} | >= 300 |",
        f"| Compressor zstd (level 3) | {speeds['zstd']:.0f} | >= 300 |",
        f"| store_layer_tar gzip (hash + scan + compress + write) | {ingest_speed:.0f} | - |",
        "",
        "Raw runs (s): slimage cold "
        + ", ".join(f"{x:.2f}" for x in cold_s)
        + "; BuildKit cold "
        + ", ".join(f"{x:.2f}" for x in cold_b)
        + "; slimage warm "
        + ", ".join(f"{x:.2f}" for x in warm_s)
        + "; BuildKit warm "
        + ", ".join(f"{x:.2f}" for x in warm_b)
        + ".",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).write_text(text)
    subprocess.run(["rm", "-rf", str(tmp)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
