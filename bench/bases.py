"""Base assembly and compat speed, against the obvious peers, on the same inputs.

Usage: python bench/bases.py [VANILLA_ARCHIVE]

1. `base build nodejs` with a warm package cache (resolve from the cached signed index,
   verify every .deb, extract, write layers into a fresh store), median of 3 runs.
   Peer: the same .debs made into a base by hand: `dpkg-deb -x` each into a directory,
   `tar -c`, `docker import` (what the seed did for its distroless stand-in). Sizes of
   both as the Docker engine reports them (our image via `docker load`).
2. `compat` of the seed's vanilla image (docker save archive, ~560 MB, ~20k files) against
   the nodejs preset: slimage's struct-based ELF reader vs the same analysis with
   pyelftools reading every ELF file.
Writes nothing but a temp store; prints a markdown table.
"""

from __future__ import annotations

import glob
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from slimage.analysis import compat as compat_mod  # noqa: E402
from slimage.bases.builder import BaseSpec, build, fetch_debs, make_repository, plan  # noqa: E402
from slimage.bases.cache import DebCache  # noqa: E402
from slimage.store.images import open_image  # noqa: E402
from slimage.store.store import Store  # noqa: E402
from slimage.transports.docker_engine import load_into_engine  # noqa: E402
from slimage.transports.sources import open_source  # noqa: E402
from slimage.units import human_size  # noqa: E402

CACHE = Path(os.environ.get("SLIMAGE_TEST_CACHE", "/var/cache/slimage-tests")) / "bases"
DOCKER = "/usr/bin/docker"


def docker_size(ref: str) -> int:
    out = subprocess.run(
        [DOCKER, "image", "inspect", "-f", "{{.Size}}", ref],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout)


def bench_build(tmp: Path) -> dict[str, object]:
    spec = BaseSpec(preset="nodejs")
    lock, _ = plan(spec, make_repository(spec, CACHE))  # warm the cache
    fetch_debs(lock, DebCache(CACHE))
    times = []
    digests = set()
    for i in range(3):
        t = time.perf_counter()
        lock_i, _ = plan(spec, make_repository(spec, CACHE))
        res = build(lock_i, Store(tmp / f"s{i}"), tags=["bench/nodejs:latest"], cache_dir=CACHE)
        times.append(time.perf_counter() - t)
        digests.add(res.manifest_digest)
    # Rebuild into a store that already holds the layers: the group-layer cache hits.
    t = time.perf_counter()
    lock_w, _ = plan(spec, make_repository(spec, CACHE))
    res_w = build(lock_w, Store(tmp / "s0"), tags=["bench/nodejs:again"], cache_dir=CACHE)
    warm_store_s = time.perf_counter() - t
    digests.add(res_w.manifest_digest)
    # Peer: by hand from the same .debs.
    debs = fetch_debs(lock, DebCache(CACHE))
    t = time.perf_counter()
    root = tmp / "handmade"
    root.mkdir()
    for path in debs.values():
        subprocess.run(["dpkg-deb", "-x", str(path), str(root)], check=True)
    tar = tmp / "handmade.tar"
    subprocess.run(["tar", "-C", str(root), "-cf", str(tar), "."], check=True)
    hand_s = time.perf_counter() - t
    subprocess.run(
        [DOCKER, "import", str(tar), "bench/handmade-nodejs:latest"],
        check=True,
        capture_output=True,
    )
    load_into_engine(open_image(Store(tmp / "s0"), "bench/nodejs:latest"), ["bench/nodejs:latest"])
    return {
        "slimage_s": statistics.median(times),
        "all_s": times,
        "deterministic": len(digests) == 1,
        "hand_s": hand_s,
        "warm_store_s": warm_store_s,
        "reused": res_w.reused_layers,
        "slimage_size": docker_size("bench/nodejs:latest"),
        "hand_size": docker_size("bench/handmade-nodejs:latest"),
        "packages": len(lock.packages),
    }


def bench_compat(archive: str, tmp: Path) -> dict[str, object]:
    spec = BaseSpec(preset="nodejs")
    store = Store(tmp / "s0")
    if not store.refs():
        lock, _ = plan(spec, make_repository(spec, CACHE))
        build(lock, store, tags=["bench/nodejs:latest"], cache_dir=CACHE)
    target = "bench/nodejs:latest"
    times = []
    for _ in range(3):
        t = time.perf_counter()
        rep = compat_mod.check_compat(open_source(archive, store), open_source(target, store))
        times.append(time.perf_counter() - t)
    fast = compat_mod.read_elf
    compat_mod.read_elf = compat_mod.parse_elf_pyelftools  # the peer: pyelftools for every file
    try:
        t = time.perf_counter()
        rep_py = compat_mod.check_compat(open_source(archive, store), open_source(target, store))
        py_s = time.perf_counter() - t
    finally:
        compat_mod.read_elf = fast
    same = [(v.path, v.verdict) for v in rep.files] == [(v.path, v.verdict) for v in rep_py.files]
    return {
        "slimage_s": statistics.median(times),
        "pyelftools_s": py_s,
        "elf_files": rep.elf_files,
        "files": rep.files_scanned,
        "same_verdicts": same,
        "counts": rep.counts,
    }


def main() -> int:
    archive = (
        sys.argv[1]
        if len(sys.argv) > 1
        else (sorted(glob.glob("/var/cache/slimage-tests/node-vanilla-*.tar")) or [""])[-1]
    )
    if not archive or not Path(archive).exists():
        print("bench/bases.py: no vanilla archive (run python -m tests.support.testbed)")
        return 1
    size = Path(archive).stat().st_size
    with tempfile.TemporaryDirectory(prefix="slimage-bench-bases-") as tmp_s:
        tmp = Path(tmp_s)
        b = bench_build(tmp)
        c = bench_compat(archive, tmp)
        subprocess.run(
            [DOCKER, "rmi", "bench/nodejs:latest", "bench/handmade-nodejs:latest"],
            capture_output=True,
        )
    print("| measure | slimage | peer | ratio |")
    print("| --- | --- | --- | --- |")
    print(
        f"| nodejs preset, warm cache ({b['packages']} packages): resolve+verify+assemble | "
        f"{b['slimage_s']:.2f} s (runs {', '.join(f'{x:.2f}' for x in b['all_s'])}; one digest: {b['deterministic']}) | "
        f"dpkg-deb -x + tar: {b['hand_s']:.2f} s | {b['hand_s'] / b['slimage_s']:.2f}x |"
    )
    print(
        f"| same, into a store that already has the layers ({b['reused']} layers reused) | "
        f"{b['warm_store_s']:.2f} s | dpkg-deb -x + tar: {b['hand_s']:.2f} s | {b['hand_s'] / b['warm_store_s']:.1f}x |"
    )
    print(
        f"| nodejs base size (docker images) | {human_size(b['slimage_size'])} | hand-made from the same .debs: "
        f"{human_size(b['hand_size'])} | {b['slimage_size'] / b['hand_size']:.2f} |"
    )
    print(
        f"| compat vanilla ({human_size(size)}, {c['files']} files, {c['elf_files']} ELF) vs nodejs preset | "
        f"{c['slimage_s']:.2f} s | pyelftools reader: {c['pyelftools_s']:.2f} s (same verdicts: {c['same_verdicts']}) | "
        f"{c['pyelftools_s'] / c['slimage_s']:.1f}x |"
    )
    print(f"\ncompat verdicts: {c['counts']}; host: {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
