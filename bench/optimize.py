"""`slimage optimize` vs the Docker engine doing the same work by hand, side by side.

    python bench/optimize.py [--rounds 2] [--context examples/hello-express]

The same variant Dockerfiles (as-written, fixed, multi-stage, distroless: the ones
`slimage optimize --json` generated; musl is skipped by compat and minified has no Docker
equivalent, so both sides leave them out) are:

- slimage: `slimage optimize CONTEXT --skip minified`: every variant built with slimage's
  builder, measured (size, files, surface, compat), run under runc and probed;
- Docker: `docker build` of each Dockerfile one after another, then for each `docker run
  -d --network host`, the same probe (GET / on the EXPOSEd port, through slimage's probe
  code), `docker rm -f`. BuildKit (DOCKER_BUILDKIT=1): Debian's docker client has it
  built in, without buildx; if the client refuses, the engine's classic builder, and the
  output says which.

Both sides are warm: each is run once untimed first (bases in place: the slimage store has
the example base and the presets; they are loaded into the engine with `slimage save |
docker load`). Wall times are the medians over rounds, alternating sides.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import slimage_command, user_env  # noqa: E402

DOCKER = "/usr/bin/docker"


def _buildkit() -> bool:
    """Does this client build with BuildKit? Debian's 20.10 client has it built in (no
    buildx plugin), so ask it to build an empty image with DOCKER_BUILDKIT=1 and see."""
    env = dict(os.environ, DOCKER_BUILDKIT="1")
    r = subprocess.run(
        [DOCKER, "build", "-q", "--network", "host", "-"],
        input=b"FROM scratch\nLABEL slimage-bench=probe\n",
        capture_output=True,
        env=env,
    )
    return r.returncode == 0 and b"buildx" not in r.stderr


def _slimage(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*slimage_command(), *args], capture_output=True, text=True, env=user_env()
    )


def _load_into_engine(ref: str) -> None:
    have = subprocess.run([DOCKER, "image", "inspect", ref], capture_output=True)
    if have.returncode == 0:
        return
    save = subprocess.Popen([*slimage_command(), "save", ref], stdout=subprocess.PIPE)
    subprocess.run([DOCKER, "load"], stdin=save.stdout, check=True, capture_output=True)
    save.wait()


def interop(tags: dict[str, str], port: int) -> dict[str, str]:
    """Each variant `slimage save`d, `docker load`ed and run by Docker: does it answer?"""
    from slimage.minify.probe import HttpProbe, run_http, wait_for_port

    out = {}
    for name, tag in tags.items():
        save = subprocess.Popen([*slimage_command(), "save", tag], stdout=subprocess.PIPE)
        subprocess.run([DOCKER, "load"], stdin=save.stdout, check=True, capture_output=True)
        save.wait()
        cid = subprocess.run(
            [DOCKER, "run", "-d", "--network", "host", tag],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        try:
            ok = wait_for_port(port, time.monotonic() + 60, lambda: True)
            res = run_http(HttpProbe("GET", "/", port), timeout=30) if ok else None
            out[name] = f"{res.status} ({res.body_bytes} bytes)" if res else "no answer"
        finally:
            subprocess.run([DOCKER, "rm", "-f", cid], capture_output=True)
    return out


def run_slimage(context: str, name: str, *, minified: bool = False) -> tuple[float, dict]:
    t0 = time.monotonic()
    skip = [] if minified else ["--skip", "minified"]
    r = _slimage("optimize", context, "--name", name, *skip, "--json")
    secs = time.monotonic() - t0
    if r.returncode != 0:
        raise SystemExit(f"slimage optimize failed: {r.stderr[-2000:]}")
    return secs, json.loads(r.stdout)


def run_docker(context: str, dockerfiles: dict[str, str], port: int, buildkit: bool) -> float:
    from slimage.minify.probe import HttpProbe, run_http, wait_for_port

    env = dict(os.environ, DOCKER_BUILDKIT="1" if buildkit else "0")
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        tags = {}
        for name, text in dockerfiles.items():
            path = Path(tmp) / f"Dockerfile.{name}"
            path.write_text(text)
            tag = f"slimage-test/bench-optimize:{name}"
            subprocess.run(
                [DOCKER, "build", "-q", "--network", "host", "-f", str(path), "-t", tag, context],
                check=True,
                capture_output=True,
                env=env,
            )
            tags[name] = tag
        for name, tag in tags.items():
            cid = subprocess.run(
                [DOCKER, "run", "-d", "--network", "host", tag],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
            try:
                if not wait_for_port(port, time.monotonic() + 60, lambda: True):
                    raise SystemExit(f"docker: {name} never answered on {port}")
                res = run_http(HttpProbe("GET", "/", port), timeout=30)
                if not res.ok:
                    raise SystemExit(f"docker: {name}: {res.error}")
            finally:
                subprocess.run([DOCKER, "rm", "-f", cid], capture_output=True)
    return time.monotonic() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument(
        "--context", default=str(Path(__file__).resolve().parents[1] / "examples/hello-express")
    )
    ap.add_argument("--name", default="slimage-test/bench-optimize")
    ap.add_argument("--port", type=int, default=3000)
    args = ap.parse_args()
    buildkit = _buildkit()
    # Warm-up (untimed): the slimage side builds everything once; its Dockerfiles are the
    # ones Docker builds.
    _, full = run_slimage(args.context, args.name, minified=True)
    _, report = run_slimage(args.context, args.name)
    dockerfiles = {
        r["name"]: r["dockerfile"]
        for r in report["rows"]
        if r["status"] == "ok" and r["dockerfile"]
    }
    bases = {r["base"] for r in report["rows"] if r["base"]}
    for text in dockerfiles.values():
        for line in text.splitlines():
            if line.startswith("FROM "):
                bases.add(line.split()[1])
    for ref in sorted(bases):
        _load_into_engine(ref)
    run_docker(args.context, dockerfiles, args.port, buildkit)
    answers = interop({r["name"]: r["tag"] for r in full["rows"] if r["status"] == "ok"}, args.port)
    for name, answer in answers.items():
        print(f"interop: {name}: slimage save | docker load | docker run -> {answer}")
    s_times, d_times = [], []
    for _ in range(args.rounds):
        s_times.append(run_slimage(args.context, args.name)[0])
        d_times.append(run_docker(args.context, dockerfiles, args.port, buildkit))
    s, d = statistics.median(s_times), statistics.median(d_times)
    engine = "BuildKit" if buildkit else "Docker's classic builder (this client has no BuildKit)"
    print(f"variants: {', '.join(dockerfiles)}; Docker side: {engine}")
    print(f"slimage optimize (build + measure + run + probe, warm): {s:.2f} s  {s_times}")
    print(f"docker build x{len(dockerfiles)} + docker run + probe (warm): {d:.2f} s  {d_times}")
    print(f"ratio: {s / d:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
