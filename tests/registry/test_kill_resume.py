"""A pull killed halfway (SIGKILL, no chance to clean up) and started again: finished
blobs are not downloaded twice and no partial blob is ever visible in the store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from slimage.oci.model import Manifest
from slimage.store.store import Store
from slimage.transports.registry import push
from tests.registry.helpers import make_image, random_bytes
from tests.registry.servers import Fault, FaultProxy, env_without_proxies


def test_killed_pull_resumes_without_refetching(registry, store: Store, tmp_path: Path) -> None:
    path = f"k{uuid.uuid4().hex[:8]}/img"
    ref = f"{registry.host}/{path}:1"
    digest = make_image(
        store,
        ref,
        [
            {"a": random_bytes(200_000)},
            {"b": random_bytes(300_000)},
            {"big": random_bytes(3_000_000)},
        ],
    )
    push(store, ref)
    manifest = Manifest.parse(store.read_blob(digest))
    big = max(manifest.layers, key=lambda d: d.size).digest
    small = [d.digest for d in manifest.layers if d.digest != big]

    proxy = FaultProxy(registry.host)
    try:
        proxy.add(Fault(match=big, kind="stall_half", method="GET"))
        root = tmp_path / "victim"
        env = env_without_proxies()
        env["SLIMAGE_HOME"] = str(root)
        cmd = [sys.executable, "-m", "slimage.cli.main", "pull", "-q", f"{proxy.host}/{path}:1"]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        victim = Store(root)
        deadline = time.time() + 60
        while time.time() < deadline:
            if all(victim.has_blob(d) for d in small) and proxy.bytes_served.get(big, 0) > 0:
                break
            time.sleep(0.05)
        else:
            proc.kill()
            raise AssertionError("the pull never got halfway")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

        # Halfway state: finished blobs present and intact, the big one invisible, no ref.
        assert not victim.has_blob(big)
        assert victim.refs() == {}
        assert victim.fsck().ok
        partial = list(victim.tmp_dir.iterdir())  # at most a temp file, never a blob
        assert all(not p.name.startswith("sha256") for p in partial)

        proxy.stall.set()
        again = subprocess.run(
            [sys.executable, "-m", "slimage.cli.main", "pull", "--json", f"{proxy.host}/{path}:1"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert again.returncode == 0, again.stderr
        import json

        report = json.loads(again.stdout)
        actions = {b["digest"]: b["action"] for b in report["blobs"]}
        assert all(actions[d] == "skipped" for d in small)
        assert actions[big] == "downloaded"
        for d in small:
            assert len(proxy.blob_gets(d)) == 1  # fetched by the killed pull only
        assert len(proxy.blob_gets(big)) == 2
        assert victim.resolve(f"{proxy.host}/{path}:1") == digest
        assert victim.fsck().ok
    finally:
        proxy.stop()


def test_ctrl_c_stops_a_stalled_pull_at_once(registry, store: Store, tmp_path: Path) -> None:
    """SIGINT while a blob transfer hangs: exit 130 within moments, nothing half-stored."""
    path = f"i{uuid.uuid4().hex[:8]}/img"
    ref = f"{registry.host}/{path}:1"
    digest = make_image(
        store, ref, [{"a": random_bytes(100_000)}, {"big": random_bytes(2_000_000)}]
    )
    push(store, ref)
    big = max(Manifest.parse(store.read_blob(digest)).layers, key=lambda d: d.size).digest
    proxy = FaultProxy(registry.host)
    try:
        proxy.add(Fault(match=big, kind="stall_half", method="GET"))
        env = env_without_proxies()
        env["SLIMAGE_HOME"] = str(tmp_path / "v")
        proc = subprocess.Popen(
            [sys.executable, "-m", "slimage.cli.main", "pull", "-q", f"{proxy.host}/{path}:1"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.time() + 60
        while proxy.bytes_served.get(big, 0) == 0 and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # the stalled GET is now blocked in recv
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert time.monotonic() - started < 10
        assert proc.returncode == 130, err
        assert "interrupted" in err and "Traceback" not in err
        victim = Store(tmp_path / "v")
        assert not victim.has_blob(big) and victim.refs() == {}
        assert list(victim.tmp_dir.iterdir()) == []  # the aborted writer cleaned up
    finally:
        proxy.stop()
