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
    res = subprocess.run(
        ["/usr/bin/time", "-f", "%e %M", *cmd],
        capture_output=True,
        text=True,
        env=env,
    )
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {res.stderr.strip()[-500:]}")
    wall, rss = res.stderr.strip().splitlines()[-1].split()
    return float(wall), int(rss)


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
    print("| operation | slimage s | docker s | slimage/docker | slimage peak RSS |")
    print("| --- | --- | --- | --- | --- |")
    tmp = tempfile.mkdtemp(prefix="bench-transports-")
    try:
        env = dict(os.environ, SLIMAGE_HOME=os.path.join(tmp, "store"))
        s_wall, s_rss = timed([*slimage, "load", "-i", archive], env)
        d_wall, _ = timed(["docker", "load", "-i", archive])
        print(
            f"| load (fresh store; engine already has the layers) | {s_wall:.2f} | {d_wall:.2f} | {s_wall / d_wall:.2f} | {s_rss / 1024:.0f} MB |"
        )
        s2_wall, s2_rss = timed([*slimage, "load", "-i", archive], env)
        print(
            f"| load again (all layers present) | {s2_wall:.2f} | {d_wall:.2f} | {s2_wall / d_wall:.2f} | {s2_rss / 1024:.0f} MB |"
        )
        out1, out2 = os.path.join(tmp, "s.tar"), os.path.join(tmp, "d.tar")
        s_wall, s_rss = timed([*slimage, "save", "-o", out1, image], env)
        d_wall, _ = timed(["docker", "save", "-o", out2, image])
        print(
            f"| save -o (slimage: stored gzip blobs, {os.path.getsize(out1) / 1e6:.0f} MB; docker: plain tars, "
            f"{os.path.getsize(out2) / 1e6:.0f} MB) | {s_wall:.2f} | {d_wall:.2f} | {s_wall / d_wall:.2f} | {s_rss / 1024:.0f} MB |"
        )
        oci = os.path.join(tmp, "oci")
        s_wall, s_rss = timed([*slimage, "save", "--format", "oci", "-o", oci, image], env)
        print(f"| save --format oci | {s_wall:.2f} | n/a | n/a | {s_rss / 1024:.0f} MB |")
        s_wall, s_rss = timed([*slimage, "history", image], env)
        d_wall, _ = timed(["docker", "history", image])
        print(
            f"| history (store) | {s_wall:.2f} | {d_wall:.2f} | {s_wall / d_wall:.2f} | {s_rss / 1024:.0f} MB |"
        )
        s_wall, s_rss = timed([*slimage, "history", archive], env)
        print(
            f"| history straight from the archive (scans every layer) | {s_wall:.2f} | n/a | n/a | {s_rss / 1024:.0f} MB |"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
