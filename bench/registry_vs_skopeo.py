"""slimage push / pull vs skopeo copy, side by side, against a real registry on loopback.

    python bench/registry_vs_skopeo.py [ARCHIVE] [--rounds 3] [--write bench/results/registry.md]

ARCHIVE defaults to the seed's vanilla image (`python -m tests.support.testbed` prints
it). Each round uses fresh registries (so neither tool can mount or skip what the other,
or an earlier round, left behind) and a fresh store / OCI dir for pulls; the two tools
alternate within a round so machine noise hits both. Targets (issue 5):

    slimage push       <= 0.33 x skopeo copy docker-archive:A docker://R
    slimage pull       <= 1.0  x skopeo copy docker://R oci:DIR
    re-push            <= 0.1 s + one HEAD per blob
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    def __init__(self, workdir: Path):
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.dir = Path(tempfile.mkdtemp(dir=workdir, prefix="reg-"))
        cfg = {
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": False}},
            "storage": {"filesystem": {"rootdirectory": str(self.dir / "data")}},
            "http": {"addr": self.host, "secret": "bench"},
        }
        (self.dir / "config.yml").write_text(json.dumps(cfg))
        self.log = self.dir / "registry.log"
        self._fh = open(self.log, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            ["docker-registry", "serve", str(self.dir / "config.yml")],
            stdout=self._fh,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                c.request("GET", "/v2/")
                c.getresponse().read()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("registry did not start")

    def count(self, method: str) -> int:
        self._fh.flush()
        text = self.log.read_text(errors="replace")
        return sum(
            1
            for line in text.splitlines()
            if "response completed" in line and f"http.request.method={method} " in line
        )

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self._fh.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    # Start every measurement with no dirty pages left by the previous one, so neither
    # tool pays for the other's writeback (slimage fsyncs its blobs; skopeo does not).
    os.sync()
    started = time.perf_counter()
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - started
    if res.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{res.stderr}")
    return took


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="slimage-bench-registry-"))
    try:
        return run(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(work: Path) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("archive", nargs="?")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--write", help="write a markdown summary to this file")
    args = ap.parse_args()
    if not shutil.which("skopeo") or not shutil.which("docker-registry"):
        print("needs skopeo and docker-registry")
        return 1
    archive = args.archive
    if not archive:
        archive = (
            subprocess.run(
                [sys.executable, "-m", "tests.support.testbed"],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
    archive_size = os.path.getsize(archive)
    load_before = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["SLIMAGE_HOME"] = str(work / "store")
    env["DOCKER_CONFIG"] = str(work / "docker-config")
    slimage = [sys.executable, "-m", "slimage.cli.main"]

    # One-time: the image into the store (this is `slimage load`, not part of push).
    from slimage.store.images import ingest
    from slimage.store.store import Store
    from slimage.transports.sources import open_source

    t0 = time.perf_counter()
    store = Store(work / "store")
    ingest(store, open_source(f"docker-archive:{archive}"), tags=["bench/vanilla:1"])
    ingest_s = time.perf_counter() - t0
    stored = sum(p.stat().st_size for p in store.blobs_dir.iterdir())

    rows: dict[str, list[float]] = {
        k: []
        for k in (
            "skopeo_push",
            "slimage_push",
            "repush",
            "repush_api",
            "skopeo_pull",
            "slimage_pull",
            "cli_startup",
            "head_rtt",
        )
    }
    heads = blobs = 0
    for rnd in range(args.rounds):
        reg_sk, reg_sl = Registry(work), Registry(work)
        try:
            rows["skopeo_push"].append(
                timed(
                    [
                        "skopeo",
                        "copy",
                        "-q",
                        "--dest-tls-verify=false",
                        f"docker-archive:{archive}",
                        f"docker://{reg_sk.host}/bench/vanilla:1",
                    ],
                    env,
                )
            )
            store.tag("bench/vanilla:1", f"{reg_sl.host}/bench/vanilla:1")
            rows["slimage_push"].append(
                timed([*slimage, "push", "-q", f"{reg_sl.host}/bench/vanilla:1"], env)
            )
            before = reg_sl.count("HEAD")
            rows["repush"].append(
                timed([*slimage, "push", "-q", f"{reg_sl.host}/bench/vanilla:1"], env)
            )
            heads = reg_sl.count("HEAD") - before
            rows["cli_startup"].append(timed([*slimage, "--version"], env))
            from slimage.transports.registry import push

            os.sync()
            t0 = time.perf_counter()
            rep = push(store, f"{reg_sl.host}/bench/vanilla:1")
            rows["repush_api"].append(time.perf_counter() - t0)
            blobs = len(rep.blobs)
            assert rep.bytes_sent == 0
            # What one HEAD costs here (warm connection, sequential): the budget's unit.
            from slimage.transports.registry.client import RegistryClient

            client = RegistryClient(reg_sl.host)
            client.ping()
            samples = []
            for b in rep.blobs:
                t1 = time.perf_counter()
                client.request("HEAD", f"/v2/bench/vanilla/blobs/{b.digest}").release()
                samples.append(time.perf_counter() - t1)
            client.close()
            rows["head_rtt"].append(statistics.median(samples))
            # Pulls of the same registry image (the one skopeo pushed), fresh targets.
            oci_dir = work / f"oci-{rnd}"
            rows["skopeo_pull"].append(
                timed(
                    [
                        "skopeo",
                        "copy",
                        "-q",
                        "--src-tls-verify=false",
                        f"docker://{reg_sk.host}/bench/vanilla:1",
                        f"oci:{oci_dir}",
                    ],
                    env,
                )
            )
            pull_env = dict(env, SLIMAGE_HOME=str(work / f"pull-{rnd}"))
            rows["slimage_pull"].append(
                timed([*slimage, "pull", "-q", f"{reg_sk.host}/bench/vanilla:1"], pull_env)
            )
            shutil.rmtree(oci_dir, ignore_errors=True)
            shutil.rmtree(work / f"pull-{rnd}", ignore_errors=True)
        finally:
            reg_sk.stop()
            reg_sl.stop()
        print(
            f"round {rnd + 1}: " + ", ".join(f"{k}={v[-1]:.2f}s" for k, v in rows.items()),
            flush=True,
        )

    med = {k: statistics.median(v) for k, v in rows.items()}
    push_ratio = med["slimage_push"] / med["skopeo_push"]
    pull_ratio = med["slimage_pull"] / med["skopeo_pull"]
    lines = [
        "# Registry transport: slimage vs skopeo",
        "",
        f"Input: the seed's vanilla image, `{Path(archive).name}` ({archive_size / 1e6:.0f} MB docker archive; "
        f"{stored / 1e6:.0f} MB of gzip blobs in the store). Registry: Debian's docker-registry "
        f"(distribution 2.8) on 127.0.0.1, fresh per round. Machine: {os.cpu_count()} cores. "
        f"Load average when the run started: {load_before}, when it ended: "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} (other jobs shared the machine). "
        f"Median of {args.rounds} rounds, tools alternating within each round, `sync` before "
        "each timed command. slimage fsyncs every blob it stores; skopeo's oci: copy does not.",
        "",
        "| operation | skopeo 1.9 | slimage | ratio | target |",
        "| --- | --- | --- | --- | --- |",
        f"| push (archive / store -> registry) | {med['skopeo_push']:.2f} s | {med['slimage_push']:.2f} s | {push_ratio:.2f}x | <= 0.33x |",
        f"| pull (registry -> oci dir / store) | {med['skopeo_pull']:.2f} s | {med['slimage_pull']:.2f} s | {pull_ratio:.2f}x | <= 1.0x |",
        f"| re-push, nothing to send (CLI, wall) | - | {med['repush']:.2f} s | - | |",
        f"| re-push, API call in-process | - | {med['repush_api'] * 1000:.0f} ms | - | "
        f"0.1 s + {blobs} x {med['head_rtt'] * 1000:.1f} ms HEAD = {(0.1 + blobs * med['head_rtt']) * 1000:.0f} ms |",
        f"| `slimage --version` (interpreter + CLI start) | - | {med['cli_startup']:.2f} s | - | |",
        "",
        f"Re-push sent {heads} HEAD requests for {blobs} blobs (counted in the registry's log) and 0 bytes.",
        f"One-time `ingest` of the archive into the store (not part of push): {ingest_s:.1f} s.",
        "",
        "Commands:",
        "```",
        f"skopeo copy -q --dest-tls-verify=false docker-archive:{archive} docker://127.0.0.1:PORT/bench/vanilla:1",
        "slimage push -q 127.0.0.1:PORT/bench/vanilla:1            # image already in the store",
        "slimage push -q 127.0.0.1:PORT/bench/vanilla:1            # again: re-push",
        "skopeo copy -q --src-tls-verify=false docker://127.0.0.1:PORT/bench/vanilla:1 oci:DIR",
        "SLIMAGE_HOME=EMPTY slimage pull -q 127.0.0.1:PORT/bench/vanilla:1",
        "python bench/registry_vs_skopeo.py --rounds 5 --write bench/results/registry.md",
        "```",
        "",
        "All rounds (seconds): "
        + json.dumps({k: [round(x, 3) for x in v] for k, v in rows.items()}),
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        Path(args.write).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
