"""load / save / history: slimage vs the Docker engine on the same archive, same run.

Usage: python bench/transports.py [ARCHIVE] [IMAGE]
       (default: the seed's vanilla image archive and slimage-test/node-vanilla:latest)

Each command runs under /usr/bin/time for wall seconds and peak RSS (for docker that is
the client's RSS only: the engine does the work in dockerd, so RSS is not comparable and
is printed for slimage alone). Stores and outputs go to a temp dir that is removed.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile

IMAGE = "slimage-test/node-vanilla:latest"


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """(wall seconds, peak RSS KB); the CPU seconds go to CPU[-1] for the table."""
    res = subprocess.run(
        ["/usr/bin/time", "-f", "%e %M %U %S", *cmd],
        capture_output=True,
        text=True,
        env=env,
    )
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {res.stderr.strip()[-500:]}")
    wall, rss, user, sys_ = res.stderr.strip().splitlines()[-1].split()
    CPU.append(float(user) + float(sys_))
    return float(wall), int(rss)


CPU: list[float] = []


def main() -> int:
    archive = (
        sys.argv[1]
        if len(sys.argv) > 1
        else (sorted(glob.glob("/var/cache/slimage-tests/node-vanilla-*.tar")) or [None])[-1]
    )
    image = sys.argv[2] if len(sys.argv) > 2 else IMAGE
    if not archive:
        print("no archive: run `python -m tests.support.testbed` first")
        return 1
    slimage = [sys.executable, "-m", "slimage.cli.main"]
    size_mb = os.path.getsize(archive) / 1e6
    print(f"archive: {archive} ({size_mb:.0f} MB), image {image}, {os.cpu_count()} CPUs\n")
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    print(
        "| operation | slimage s | docker s | slimage/docker | slimage peak RSS | slimage CPU s |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    tmp = tempfile.mkdtemp(prefix="bench-transports-")

    def row(what: str, ours: tuple[float, int], theirs: float | None) -> None:
        wall, rss = ours
        cpu = CPU[-2] if theirs is not None else CPU[-1]
        d = f"{theirs:.2f}" if theirs is not None else "n/a"
        ratio = f"{wall / theirs:.2f}" if theirs else "n/a"
        print(f"| {what} | {wall:.2f} | {d} | {ratio} | {rss / 1024:.0f} MB | {cpu:.2f} |")

    try:
        env = dict(os.environ, SLIMAGE_HOME=os.path.join(tmp, "store"))
        ours = timed([*slimage, "load", "-i", archive], env)
        d_load, _ = timed(["docker", "load", "-i", archive])
        row("load (fresh store; the engine already has the layers)", ours, d_load)
        ours = timed([*slimage, "load", "-i", archive], env)
        row("load again (all layers present)", ours, None)
        out1, out2 = os.path.join(tmp, "s.tar"), os.path.join(tmp, "d.tar")
        ours = timed([*slimage, "save", "-o", out1, image], env)
        d_save, _ = timed(["docker", "save", "-o", out2, image])
        row(
            f"save -o (slimage: stored gzip blobs, {os.path.getsize(out1) / 1e6:.0f} MB; "
            f"docker: plain tars, {os.path.getsize(out2) / 1e6:.0f} MB)",
            ours,
            d_save,
        )
        ours = timed(
            [*slimage, "save", "--format", "oci", "-o", os.path.join(tmp, "oci"), image], env
        )
        row("save --format oci", ours, None)
        ours = timed([*slimage, "history", image], env)
        d_hist, _ = timed(["docker", "history", image])
        row("history (store)", ours, d_hist)
        ours = timed([*slimage, "history", archive], env)
        row("history straight from the archive (scans every layer)", ours, None)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
