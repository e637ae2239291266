"""Layer compression throughput: isal gzip vs zstd vs the stdlib's zlib, on a real layer.

Usage: python bench/compression.py [ARCHIVE]   (default: the seed's vanilla image archive)

Takes the largest layer of a `docker save` archive (node-vanilla's apt layer, ~380 MB of
binaries, libraries and text), and for each codec compresses it in 1 MiB chunks, the way
the store does, reporting MB/s of *uncompressed* input per wall second, the ratio, and the
cores used. Then decompression of the isal and zstd outputs.
"""

from __future__ import annotations

import glob
import os
import sys
import time
import zlib

import zstandard
from isal import igzip_threaded, isal_zlib

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from slimage.transports.tarindex import TarIndex  # noqa: E402

CHUNK = 1 << 20


def largest_layer(archive: str) -> bytes:
    index = TarIndex.open(archive)
    name = max(
        (m for m in index.members.values() if m.name.endswith("layer.tar") and m.kind == "file"),
        key=lambda m: m.size,
    ).name
    with index.open_member(name) as fh:
        return fh.read()


def run(label: str, fn, data: bytes, cores: int) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    """Wall MB/s, and MB/s per CPU-second (process CPU time over all threads): the
    per-core figure, which stays honest when other jobs share the machine."""
    c0 = time.process_time()
    t = time.perf_counter()
    out = fn(data)
    dt = time.perf_counter() - t
    cpu = time.process_time() - c0
    mbps = len(data) / dt / 1e6
    per_core = len(data) / max(cpu, 1e-9) / 1e6
    print(
        f"| {label:<34} | {cores} | {mbps:6.0f} | {per_core:6.0f} | {len(data) / max(out, 1):5.2f} | {dt:6.2f} | {cpu:6.2f} |"
    )
    return per_core, out


def chunked(make):  # type: ignore[no-untyped-def]
    def fn(data: bytes) -> int:
        obj = make()
        n = 0
        view = memoryview(data)
        for i in range(0, len(data), CHUNK):
            n += len(obj.compress(view[i : i + CHUNK]))
        n += len(obj.flush())
        return n

    return fn


class _Count:
    def __init__(self) -> None:
        self.n = 0

    def write(self, b) -> int:  # type: ignore[no-untyped-def]
        self.n += len(b)
        return len(b)

    def flush(self) -> None:
        pass


def isal_threaded(threads: int):  # type: ignore[no-untyped-def]
    def fn(data: bytes) -> int:
        sink = _Count()
        with igzip_threaded.open(sink, "wb", compresslevel=1, threads=threads) as fh:  # type: ignore[arg-type]
            view = memoryview(data)
            for i in range(0, len(data), CHUNK):
                fh.write(view[i : i + CHUNK])
        return sink.n

    return fn


def main() -> int:
    archive = sys.argv[1] if len(sys.argv) > 1 else None
    if archive is None:
        found = sorted(glob.glob("/var/cache/slimage-tests/node-vanilla-*.tar"))
        if not found:
            print("no archive: pass one, or run `python -m tests.support.testbed` first")
            return 1
        archive = found[-1]
    data = largest_layer(archive)
    print(f"input: largest layer of {archive}: {len(data) / 1e6:.1f} MB, {os.cpu_count()} CPUs\n")
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    print("| codec | threads | MB/s wall | MB/s per CPU-second | ratio | wall s | CPU s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    results = {}
    results["isal1"] = run(
        "isal gzip level 1 (store default)",
        chunked(lambda: isal_zlib.compressobj(1, isal_zlib.DEFLATED, 31)),
        data,
        1,
    )
    results["isal0"] = run(
        "isal gzip level 0",
        chunked(lambda: isal_zlib.compressobj(0, isal_zlib.DEFLATED, 31)),
        data,
        1,
    )
    results["isal2"] = run(
        "isal gzip level 2",
        chunked(lambda: isal_zlib.compressobj(2, isal_zlib.DEFLATED, 31)),
        data,
        1,
    )
    if (os.cpu_count() or 1) > 1:
        results["isalt"] = run("isal gzip level 1, 2 threads", isal_threaded(2), data, 2)
    results["zstd1"] = run(
        "zstd level 1", chunked(lambda: zstandard.ZstdCompressor(level=1).compressobj()), data, 1
    )
    results["zstd3"] = run(
        "zstd level 3 (store zstd default)",
        chunked(lambda: zstandard.ZstdCompressor(level=3).compressobj()),
        data,
        1,
    )
    results["zlib1"] = run(
        "stdlib zlib level 1", chunked(lambda: zlib.compressobj(1, zlib.DEFLATED, 31)), data, 1
    )
    results["zlib6"] = run(
        "stdlib zlib level 6 (gzip default)",
        chunked(lambda: zlib.compressobj(6, zlib.DEFLATED, 31)),
        data,
        1,
    )

    print("\ndecompression (MB/s of output):")
    comp = isal_zlib.compressobj(1, isal_zlib.DEFLATED, 31)
    gz = comp.compress(data) + comp.flush()
    zs = zstandard.ZstdCompressor(level=3).compress(data)
    for label, fn in (
        ("isal gunzip", lambda: isal_zlib.decompress(gz, 31)),
        ("stdlib zlib gunzip", lambda: zlib.decompress(gz, 31)),
        ("zstd", lambda: zstandard.ZstdDecompressor().decompress(zs, max_output_size=len(data))),
    ):
        t = time.perf_counter()
        fn()
        dt = time.perf_counter() - t
        print(f"  {label:<20} {len(data) / dt / 1e6:8.0f} MB/s")
    fast = results["isal1"][0]
    base = results["zlib6"][0]
    print(
        f"\nper CPU-second: isal gzip level 1 {fast:.0f} MB/s, stdlib zlib level 6 {base:.0f} MB/s "
        f"({fast / base:.1f}x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
