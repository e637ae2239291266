"""Two CI runners sharing a build cache through a registry: slimage vs BuildKit (issue 13).

Usage: python bench/fleet.py [--base slimage-example/node:bookworm]

The README's node example (examples/hello-express, base made by scripts/example-images.sh
into the default store). Two store roots stand in for two runners; they share only a
Debian `docker-registry` on 127.0.0.1. Every slimage build runs under SOURCE_DATE_EPOCH.

- cold:     runner A, empty cache, `--cache-to type=registry,ref=R,mode=max`;
- warm B:   runner B, empty store (the base only, as a CI runner that pulled it), same
            commit, `--cache-from type=registry,ref=R`: digest, RUN count, bytes pulled;
- B edited: runner B', empty store, index.js changed: which steps ran.
- BuildKit: `docker build --build-arg BUILDKIT_INLINE_CACHE=1`, push to the same registry,
            `docker rmi` + `docker builder prune -af` (runner B has nothing), then
            `docker build --cache-from R` (the Debian engine has no buildx: inline cache is
            the registry cache that works here).
Wall times are of the CLI as a user runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.registry import servers  # noqa: E402

DOCKER = "/usr/bin/docker"
EPOCH = "1700000000"


def slimage(root: Path, *args: str) -> tuple[float, dict]:  # type: ignore[type-arg]
    env = dict(servers.env_without_proxies(), SLIMAGE_HOME=str(root), SOURCE_DATE_EPOCH=EPOCH)
    t = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-m", "slimage.cli.main", "build", "--json", *args],
        env=env,
        capture_output=True,
        text=True,
    )
    took = time.perf_counter() - t
    if res.returncode != 0:
        raise SystemExit(res.stderr[-2000:])
    return took, json.loads(res.stdout)


def docker(*args: str) -> float:
    env = dict(os.environ, DOCKER_BUILDKIT="1")
    t = time.perf_counter()
    subprocess.run([DOCKER, *args], env=env, check=True, capture_output=True)
    return time.perf_counter() - t


def runner(name: str, work: Path, base: str) -> Path:
    """A store root holding only BASE, copied from the default store (as if pulled)."""
    from slimage.store.images import ingest, open_image
    from slimage.store.paths import default_root
    from slimage.store.store import Store

    src = Store(default_root())
    store = Store(work / name)
    ingest(store, open_image(src, src.resolve(base)), tags=[base])
    return store.root


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", default="slimage-example/node:bookworm")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="slimage-fleet-"))
    reg = servers.RegistryProc(work, name="fleet")
    try:
        ctx = work / "app"
        shutil.copytree(ROOT / "examples" / "hello-express", ctx)
        ref = f"{reg.host}/slimage-test/fleet-cache:main"
        a = runner("a", work, args.base)
        cold, ra = slimage(
            a, "--network", "host", "--cache-to", f"type=registry,ref={ref},mode=max", str(ctx)
        )
        b = runner("b", work, args.base)
        warm, rb = slimage(
            b, "--network", "host", "--cache-from", f"type=registry,ref={ref}", str(ctx)
        )
        from slimage.store.store import Store

        sb = Store(b)
        base_layers = {d.digest for d in sb.manifest_for(sb.resolve(args.base)).layers}
        final = sb.manifest_for(rb["manifest_digest"])
        image_bytes = sum(d.size for d in final.layers)
        own_bytes = sum(d.size for d in final.layers if d.digest not in base_layers)
        edited = work / "app2"
        shutil.copytree(ctx, edited)
        (edited / "index.js").write_text((ctx / "index.js").read_text() + "\n// edited\n")
        b2 = runner("b2", work, args.base)
        warm2, rb2 = slimage(
            b2, "--network", "host", "--cache-from", f"type=registry,ref={ref}", str(edited)
        )

        # BuildKit: same two-runner experiment through the same registry.
        bk_ref = f"{reg.host}/slimage-test/fleet-buildkit:main"
        tar = work / "base.tar"
        subprocess.run(
            [sys.executable, "-m", "slimage.cli.main", "save", "-o", str(tar), args.base],
            check=True,
            capture_output=True,
        )
        docker("load", "-i", str(tar))
        docker("builder", "prune", "-af")
        bk_cold = docker(
            "build",
            "--network",
            "host",
            "--build-arg",
            "BUILDKIT_INLINE_CACHE=1",
            "-t",
            bk_ref,
            str(ctx),
        )
        docker("push", bk_ref)
        docker("rmi", bk_ref)
        docker("builder", "prune", "-af")
        bk_warm = docker(
            "build", "--network", "host", "--cache-from", bk_ref, "-t", bk_ref, str(ctx)
        )
        docker("rmi", bk_ref)
        docker("builder", "prune", "-af")
    finally:
        reg.stop()
        shutil.rmtree(work, ignore_errors=True)

    layer_steps = 3  # WORKDIR, COPY, RUN npm install
    rows = [
        ("slimage runner A, cold, --cache-to mode=max", cold, f"{ra['steps']} steps"),
        (
            "slimage runner B, empty store, --cache-from",
            warm,
            f"{rb['remote_cached_steps']}/{layer_steps} layer steps from the cache, "
            f"{rb['bytes_pulled'] / 1e6:.2f} MB pulled (image's own layers "
            f"{own_bytes / 1e6:.2f} MB, whole image {image_bytes / 1e6:.1f} MB), "
            f"same digest: {rb['manifest_digest'] == ra['manifest_digest']}",
        ),
        (
            "slimage runner B, index.js edited",
            warm2,
            f"{rb2['remote_cached_steps']}/{layer_steps} layer steps from the cache",
        ),
        ("BuildKit cold, inline cache", bk_cold, ""),
        ("BuildKit runner B (prune -af), --cache-from", bk_warm, ""),
    ]
    print(f"machine: {platform.node()} {os.cpu_count()} cores, {platform.platform()}")
    print("| run | wall | notes |\n| --- | --- | --- |")
    for name, secs, note in rows:
        print(f"| {name} | {secs:.2f}s | {note} |")
    print(f"\nB / cold = {warm / cold:.2f}x; B / BuildKit B = {warm / bk_warm:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
