#!/usr/bin/env python3
"""Faults, measured: SIGKILL `load`, `pull`, `push`, `build` and `gc` at random points
while other processes write to the same store, then check that the store survived.

Why: a store shared by several processes (a CI job loading while a build runs and a gc
sweeps) must stay consistent whatever dies when. After every kill this script asks:

- does `slimage fsck` pass (every blob hashes to its name, every image is whole)?
- is every image that any command reported as loaded, pulled or built still whole
  (it resolves, its manifest, config and layer blobs are present and verify)?

Each round kills one process of one kind (rotating load, pull, push, build, gc) at a
random moment, while a witness process of another kind writes a *different* image (or
re-ingests one already stored, which races gc) into the same store, untouched. Pulls
and pushes go to a real `docker-registry` started on 127.0.0.1.

    python3 scripts/faults.py --kills 60 [--seed N] [--json]

Prints "kills survived / kills made", corrupt stores and lost images; exits 1 if any
kill was not survived. Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from slimage.errors import SlimageError  # noqa: E402
from slimage.imageops import save  # noqa: E402
from slimage.mutate import ImageAssembler  # noqa: E402
from slimage.oci.model import HistoryEntry  # noqa: E402
from slimage.store.images import open_image  # noqa: E402
from slimage.store.store import Store  # noqa: E402

KINDS = ("load", "pull", "push", "build", "gc")


def _env(store: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy")}
    env["PYTHONPATH"] = str(ROOT / "src")
    env["SLIMAGE_NO_PULL"] = "1"
    if store is not None:
        env["SLIMAGE_HOME"] = str(store)
    return env


def slimage(*args: str) -> list[str]:
    return [sys.executable, "-m", "slimage.cli.main", *args]


# ---------------------------------------------------------------------------- registry


class Registry:
    """Debian's `docker-registry` on a free port of 127.0.0.1."""

    def __init__(self, workdir: Path):
        binary = shutil.which("docker-registry")
        if binary is None:
            raise SystemExit(
                "faults.py needs Debian's docker-registry (apt-get install docker-registry)"
            )
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.host = f"127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        config = {
            "version": 0.1,
            "log": {"level": "error"},
            "storage": {"filesystem": {"rootdirectory": str(workdir / "storage")}},
            "http": {"addr": self.host, "secret": "slimage-faults"},
        }
        (workdir / "config.yml").write_text(json.dumps(config))
        self._log = open(workdir / "registry.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [binary, "serve", str(workdir / "config.yml")],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
                opener.open(f"http://{self.host}/v2/", timeout=2).read()
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("docker-registry did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self._log.close()


# ---------------------------------------------------------------------------- inputs


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1700000000
            tf.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_inputs(
    workdir: Path, registry: Registry, n: int, rng: random.Random
) -> list[dict[str, str]]:
    """N images, each with a shared base layer and 2 of its own (0.5-3 MB, random bytes
    so compression cannot shrink them): saved as docker-archives (for load) and pushed
    to the registry (for pull). Made with slimage's own image core, in a source store."""
    src = Store(workdir / "source-store")
    base = _tar({"base/data": os.urandom(1_500_000)})
    out = []
    for i in range(n):
        tag = f"slimage-test/faults-{i}:1"
        asm = ImageAssembler(src)
        asm.add_layer(io.BytesIO(base), HistoryEntry(created_by="base"))
        for j in range(2):
            size = rng.randrange(500_000, 3_000_000)
            asm.add_layer(
                io.BytesIO(_tar({f"l{j}/f": os.urandom(size)})), HistoryEntry(created_by=f"l{j}")
            )
        asm.commit(tags=[tag], created="2024-01-01T00:00:00Z")
        archive = workdir / f"faults-{i}.tar"
        save(src, [tag], output=archive)
        remote = f"{registry.host}/faults/img{i}:1"
        src.tag(tag, remote)
        subprocess.run(
            slimage("push", "-q", remote), env=_env(src.root), check=True, capture_output=True
        )
        out.append({"tag": tag, "archive": str(archive), "remote": remote})
    return out


# ---------------------------------------------------------------------------- checks


def image_whole(store_root: Path, name: str) -> str | None:
    """None if NAME resolves and all its blobs are present and verify, else why not."""
    try:
        store = Store(store_root)
        image = open_image(store, name)
        for layer in image.layers:
            with store.open_blob(layer.digest) as fh:
                while fh.read(1 << 20):
                    pass
        return None
    except SlimageError as exc:
        return str(exc)


def fsck(store_root: Path) -> str | None:
    proc = subprocess.run(slimage("fsck"), env=_env(store_root), capture_output=True, text=True)
    if proc.returncode != 0 or "Traceback" in proc.stderr:
        return (proc.stdout + proc.stderr).strip().replace("\n", " | ")[:400]
    return None


# ---------------------------------------------------------------------------- the run


@dataclass
class Stats:
    kills: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    survived: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    finished_before_kill: int = 0
    corrupt_stores: int = 0
    lost_images: int = 0
    witnesses: int = 0
    witness_failures: int = 0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def made(self) -> int:
        return sum(self.kills.values())

    @property
    def ok(self) -> int:
        return sum(self.survived.values())


class Run:
    def __init__(
        self, workdir: Path, inputs: list[dict[str, str]], registry: Registry, rng: random.Random
    ):
        self.workdir = workdir
        self.inputs = inputs
        self.registry = registry
        self.rng = rng
        self.store = workdir / "store"
        self.expected: set[str] = set()  # names some command reported as stored
        self.counter = 0
        self.stats = Stats()

    # One command of KIND, as argv, plus the name it stores when it succeeds (or None).
    def command(self, kind: str, *, victim: bool) -> tuple[list[str], str | None]:
        self.counter += 1
        n = self.counter
        pick = self.rng.choice(self.inputs)
        if kind == "load":
            return slimage("load", "-q", "-i", pick["archive"]), pick["tag"]
        if kind == "pull":
            return slimage("pull", "-q", pick["remote"]), pick["remote"]
        if kind == "push":
            have = sorted(t for t in self.expected if t.startswith("slimage-test/"))
            if not have:
                return slimage("load", "-q", "-i", pick["archive"]), pick["tag"]
            target = f"{self.registry.host}/faults/pushed{n}:1"
            subprocess.run(
                slimage("tag", self.rng.choice(have), target), env=_env(self.store), check=True
            )
            self.expected.add(target)  # tagged (complete) before the push starts
            return slimage("push", "-q", target), None
        if kind == "build":
            ctx = self.workdir / f"ctx{n}"
            ctx.mkdir()
            (ctx / "blob").write_bytes(os.urandom(self.rng.randrange(500_000, 4_000_000)))
            (ctx / "Dockerfile").write_text("FROM scratch\nCOPY blob /blob\n")
            tag = f"slimage-test/faults-build{n}:1"
            return slimage("build", "-q", "-t", tag, str(ctx)), tag
        if kind == "gc":
            # garbage to collect: an image loaded under a throw-away tag and removed again
            junk = f"slimage-test/junk{n}:1"
            subprocess.run(
                slimage("tag", pick["tag"], junk), env=_env(self.store), capture_output=True
            )
            subprocess.run(slimage("rmi", junk), env=_env(self.store), capture_output=True)
            return slimage("gc"), None
        raise ValueError(kind)

    def start(self, argv: list[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            argv, env=_env(self.store), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )

    def round(self, kind: str) -> None:
        victim_argv, victim_name = self.command(kind, victim=True)
        witness_kind = self.rng.choice(["load", "pull", "load-again", "pull-again"])
        if witness_kind.endswith("-again") and self.expected:
            # re-ingest an image whose blobs are all stored: races gc (H4)
            done = [
                i for i in self.inputs if i["tag"] in self.expected or i["remote"] in self.expected
            ]
            if done:
                pick = self.rng.choice(done)
                if witness_kind == "load-again":
                    witness_argv, witness_name = (
                        slimage("load", "-q", "-i", pick["archive"]),
                        pick["tag"],
                    )
                else:
                    witness_argv, witness_name = (
                        slimage("pull", "-q", pick["remote"]),
                        pick["remote"],
                    )
            else:
                witness_argv, witness_name = self.command("load", victim=False)
        else:
            witness_argv, witness_name = self.command(
                witness_kind.removesuffix("-again"), victim=False
            )
        procs = [self.start(victim_argv), self.start(witness_argv)]
        if self.rng.random() < 0.5:
            procs.reverse()  # who starts first varies too
        victim = procs[0] if procs[0].args == victim_argv else procs[1]
        witness = procs[1] if victim is procs[0] else procs[0]
        time.sleep(self.rng.uniform(0.25, 3.0 if kind == "build" else 1.6))
        killed = victim.poll() is None
        if killed:
            os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        w_out, w_err = witness.communicate(timeout=600)
        v_err = victim.stderr.read() if victim.stderr else b""
        self.stats.witnesses += 1
        if witness.returncode == 0 and witness_name:
            self.expected.add(witness_name)
        elif witness.returncode != 0:
            self.stats.witness_failures += 1
            self.stats.problems.append(
                f"witness {witness_kind} failed: {w_err.decode(errors='replace').strip()[-300:]}"
            )
        if not killed:
            self.stats.finished_before_kill += 1
            if victim.returncode == 0 and victim_name:
                self.expected.add(victim_name)
            elif victim.returncode != 0:
                self.stats.problems.append(
                    f"{kind} failed unkilled: {v_err.decode(errors='replace').strip()[-300:]}"
                )
            return
        self.stats.kills[kind] += 1
        bad = fsck(self.store)
        lost = [f"{n}: {why}" for n in sorted(self.expected) if (why := image_whole(self.store, n))]
        if bad:
            self.stats.corrupt_stores += 1
            self.stats.problems.append(f"after killing {kind}: fsck: {bad}")
        if lost:
            self.stats.lost_images += len(lost)
            self.stats.problems.append(f"after killing {kind}: lost {lost}")
        if not bad and not lost:
            self.stats.survived[kind] += 1
        else:
            # start over on a fresh store so one failure is not counted again and again
            shutil.rmtree(self.store, ignore_errors=True)
            self.expected.clear()
        if self.counter % 10 == 0:
            self.check_saves()

    def check_saves(self) -> None:
        """`slimage save` of every image reported stored must succeed (a real reader)."""
        for name in sorted(self.expected):
            out = self.workdir / "save-check.tar"
            proc = subprocess.run(
                slimage("save", "-o", str(out), name),
                env=_env(self.store),
                capture_output=True,
                text=True,
            )
            out.unlink(missing_ok=True)
            if proc.returncode != 0:
                self.stats.lost_images += 1
                self.stats.problems.append(f"save {name}: {proc.stderr.strip()[-300:]}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=60, help="SIGKILLs to make (default 60)")
    ap.add_argument("--images", type=int, default=4, help="distinct test images (default 4)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--kinds", default=",".join(KINDS), help="which commands to kill")
    ap.add_argument("--workdir", help="keep the stores here (default: a temp dir, removed)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    kinds = [k for k in args.kinds.split(",") if k]
    workdir = (
        Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="slimage-faults-"))
    )
    registry = Registry(workdir / "registry")
    started = time.monotonic()
    try:
        inputs = make_inputs(workdir, registry, args.images, rng)
        run = Run(workdir, inputs, registry, rng)
        i = 0
        while run.stats.made < args.kills:
            run.round(kinds[i % len(kinds)])
            i += 1
            if not args.json:
                print(
                    f"\r{run.stats.ok} / {run.stats.made} kills survived",
                    end="",
                    file=sys.stderr,
                    flush=True,
                )
        run.check_saves()
    finally:
        registry.stop()
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    stats = run.stats
    stats.seconds = round(time.monotonic() - started, 1)
    result = {
        "kills_made": stats.made,
        "kills_survived": stats.ok,
        "corrupt_stores": stats.corrupt_stores,
        "lost_images": stats.lost_images,
        "by_kind": {k: f"{stats.survived[k]}/{stats.kills[k]}" for k in kinds},
        "finished_before_kill": stats.finished_before_kill,
        "witnesses": stats.witnesses,
        "witness_failures": stats.witness_failures,
        "problems": stats.problems,
        "seed": seed,
        "seconds": stats.seconds,
        "machine": f"{os.cpu_count()} cores, {platform.platform()}",
    }
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(file=sys.stderr)
        print(f"kills survived / kills made: {stats.ok} / {stats.made}")
        print("  by command: " + ", ".join(f"{k} {v}" for k, v in result["by_kind"].items()))
        print(f"corrupt stores: {stats.corrupt_stores}")
        print(f"lost images: {stats.lost_images}")
        print(f"witness writers: {stats.witnesses} ({stats.witness_failures} failed)")
        print(
            f"victims that finished before their kill (not counted): {stats.finished_before_kill}"
        )
        for p in stats.problems:
            print(f"  problem: {p}")
        print(f"seed {seed}, {stats.seconds} s, {result['machine']}")
    bad = stats.ok != stats.made or stats.lost_images or stats.witness_failures
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
