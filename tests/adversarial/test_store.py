"""Attacks on the store itself: concurrent writers, kill -9, gc races, full disks,
corrupt records, wide permissions, over-long names. Each runs the real `slimage` CLI (or
the Python API) against a real store in tmp_path, and ends with `slimage fsck`.

The rule under test: one writer-lock discipline (`Store.claim`) covers both writing a
blob and finding it already stored, so neither gc nor another process's rollback can
delete a blob some live ingest relies on; a failed ingest removes only what it created.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import stat
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from slimage.imageops import load_archive
from slimage.store.images import open_image
from slimage.store.store import Store
from tests.registry.helpers import tar_bytes as layer_tar

REPO = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------- helpers


def cli(root: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy")}
    env["SLIMAGE_HOME"] = str(root)
    env["SLIMAGE_NO_PULL"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "slimage.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def popen(root: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("http_proxy", "https_proxy")}
    env["SLIMAGE_HOME"] = str(root)
    return subprocess.Popen(
        [sys.executable, "-m", "slimage.cli.main", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and "warning" not in ln]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def fsck_clean(root: Path) -> None:
    proc = cli(root, "fsck")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout + proc.stderr


def archive(path: Path, layers: list[bytes], tags: list[str]) -> Path:
    """A `docker save` archive written by hand (so it can carry anything)."""
    diff_ids = ["sha256:" + hashlib.sha256(b).hexdigest() for b in layers]
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [{"created_by": f"layer {i}"} for i in range(len(layers))],
        }
    ).encode()
    cfg_name = hashlib.sha256(config).hexdigest() + ".json"
    names = [f"{d[7:]}/layer.tar" for d in diff_ids]
    manifest = json.dumps([{"Config": cfg_name, "RepoTags": tags, "Layers": names}]).encode()
    with tarfile.open(path, "w") as tf:
        for name, data in [(cfg_name, config), *zip(names, layers, strict=True)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        info = tarfile.TarInfo("manifest.json")
        info.size = len(manifest)
        tf.addfile(info, io.BytesIO(manifest))
    return path


def evil_layer() -> bytes:
    """A layer `load` refuses (an entry climbing out of the root)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("../escape")
        info.size = 1
        tf.addfile(info, io.BytesIO(b"x"))
    return buf.getvalue()


def blob_digest_of_layer(store: Store, layer: bytes) -> str:
    info = store.layer_info("sha256:" + hashlib.sha256(layer).hexdigest())
    assert info is not None
    return info.blob


def whole(store_root: Path, name: str) -> None:
    store = Store(store_root)
    image = open_image(store, name)
    for layer in image.layers:
        with store.open_blob(layer.digest) as fh:
            while fh.read(1 << 20):
                pass


@pytest.fixture(scope="module")
def shared() -> bytes:
    return layer_tar({"shared/big": os.urandom(3_000_000)})


# ---------------------------------------------------------------------------- H3


def test_rollback_keeps_a_blob_another_live_process_claimed(tmp_path: Path, shared: bytes) -> None:
    """A failing load that created blob L must not delete it while another process
    relies on L (claimed it, has not recorded its image yet)."""
    root = tmp_path / "store"
    store = Store(root)
    good = archive(tmp_path / "good.tar", [shared], ["slimage-test/good:1"])
    # find out L's stored blob digest, then start over with an empty store
    load_archive(Store(tmp_path / "probe"), good)
    blob = blob_digest_of_layer(Store(tmp_path / "probe"), shared)

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from slimage.store.store import Store; "
            f"s = Store({str(root)!r}); s.claim({blob!r}); print('claimed', flush=True); "
            "sys.stdin.readline()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "claimed"
        bad = archive(tmp_path / "bad.tar", [shared, evil_layer()], ["slimage-test/bad:1"])
        proc = cli(root, "load", "-i", str(bad))
        assert "escape" in one_line_error(proc)
        assert store.has_blob(blob), "rollback deleted a blob another process claimed"
    finally:
        holder.communicate("\n", timeout=30)
    # the kept blob is ordinary garbage once its claimer is gone
    fsck_clean(root)
    assert f"Deleted: {blob}" in cli(root, "gc").stdout
    # with no one relying on it, a failure cleans up after itself
    one_line_error(cli(root, "load", "-i", str(bad)))
    assert list(store.iter_blobs()) == []
    fsck_clean(root)


def test_failing_load_racing_a_good_load_never_breaks_the_good_one(
    tmp_path: Path, shared: bytes
) -> None:
    """The issue's reproduction (3 of 3 before): a load that fails late and a load of
    another image sharing its first layer, at the same time, several times."""
    bad = archive(
        tmp_path / "bad.tar",
        [shared, layer_tar({"pad": os.urandom(2_000_000)}), evil_layer()],
        ["slimage-test/bad:1"],
    )
    good = archive(
        tmp_path / "good.tar",
        [shared, layer_tar({"own": os.urandom(500_000)})],
        ["slimage-test/good:1"],
    )
    for attempt in range(3):
        root = tmp_path / f"store{attempt}"
        Store(root)
        a = popen(root, "load", "-i", str(bad))
        time.sleep(0.15 * attempt)
        b = popen(root, "load", "-i", str(good))
        _, a_err = a.communicate(timeout=120)
        b_out, b_err = b.communicate(timeout=120)
        assert a.returncode != 0 and "Traceback" not in a_err
        assert b.returncode == 0, b_err
        assert "Loaded image: slimage-test/good:1" in b_out
        fsck_clean(root)
        whole(root, "slimage-test/good:1")


# ---------------------------------------------------------------------------- H4


def test_gc_racing_a_repeated_load_of_stored_blobs(tmp_path: Path, shared: bytes) -> None:
    """Every blob of the image is already stored (and unreferenced: its tag was removed);
    a load that finds them must hold them against a concurrent gc."""
    good = archive(
        tmp_path / "good.tar",
        [shared, layer_tar({"own": os.urandom(300_000)})],
        ["slimage-test/good:1"],
    )
    root = tmp_path / "store"
    for attempt in range(6):
        if not Store(root).images():
            load_archive(Store(root), good)
        assert cli(root, "rmi", "slimage-test/good:1").returncode == 0
        loader = popen(root, "load", "-i", str(good))
        time.sleep(0.06 * attempt)
        gc = popen(root, "gc")
        out, err = loader.communicate(timeout=120)
        gc.communicate(timeout=120)
        assert loader.returncode == 0, err
        assert "Loaded image: slimage-test/good:1" in out
        fsck_clean(root)
        whole(root, "slimage-test/good:1")


def test_gc_waits_while_a_process_holds_a_found_blob(tmp_path: Path, shared: bytes) -> None:
    """Finding a blob takes the writer lock: gc cannot run until that process is done."""
    root = tmp_path / "store"
    good = archive(tmp_path / "good.tar", [shared], ["slimage-test/good:1"])
    load_archive(Store(root), good)
    blob = blob_digest_of_layer(Store(root), shared)
    assert cli(root, "rmi", "slimage-test/good:1").returncode == 0
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from slimage.store.store import Store; "
            f"s = Store({str(root)!r}); print(s.claim({blob!r}), flush=True); sys.stdin.readline()",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "True"
    gc = popen(root, "gc")
    time.sleep(1.5)
    assert gc.poll() is None, "gc ran while a writer held a blob it had found"
    assert Store(root).has_blob(blob)
    holder.communicate("\n", timeout=30)
    out, err = gc.communicate(timeout=60)
    assert gc.returncode == 0 and "waiting for other processes" in err
    assert f"Deleted: {blob}" in out
    fsck_clean(root)


# ---------------------------------------------------------------------------- H5 / item 5


def test_store_and_extracted_content_dirs_are_0700(tmp_path: Path) -> None:
    root = tmp_path / "new" / "home"
    proc = cli(root, "images")
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    store = Store(root)
    for name in ("layers-unpacked", "build-work", "containers"):
        path = store.private_dir(name)
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
    # a dir some older version made wider is tightened when slimage uses it
    os.chmod(root / "layers-unpacked", 0o755)
    store.private_dir("layers-unpacked")
    assert stat.S_IMODE((root / "layers-unpacked").stat().st_mode) == 0o700
    # nobody can reach what is inside (setuid files, device nodes)
    secret = root / "layers-unpacked" / "suid"
    secret.write_bytes(b"x")
    probe = subprocess.run(
        [sys.executable, "-c", f"import os; os.setuid(65534); open({str(secret)!r}).read()"],
        capture_output=True,
        text=True,
    )
    assert probe.returncode != 0 and "PermissionError" in probe.stderr


def test_fsck_warns_about_a_wide_store(tmp_path: Path) -> None:
    root = tmp_path / "home"
    root.mkdir(mode=0o755)
    os.chmod(root, 0o755)
    cli(root, "images")
    assert stat.S_IMODE(root.stat().st_mode) == 0o755  # a root the user made keeps its mode
    (root / "layers-unpacked").mkdir(mode=0o777)
    os.chmod(root / "layers-unpacked", 0o777)
    proc = cli(root, "fsck")
    assert proc.returncode == 0  # a warning, not corruption
    assert "0755, wider than 0700" in proc.stderr and "0777, wider than 0700" in proc.stderr
    assert "Traceback" not in proc.stderr


# ---------------------------------------------------------------------------- M4


def test_missing_config_blob_is_reported_not_fatal(tmp_path: Path, shared: bytes) -> None:
    root = tmp_path / "store"
    store = Store(root)
    load_archive(store, archive(tmp_path / "a.tar", [shared], ["slimage-test/broken:1"]))
    load_archive(
        store,
        archive(tmp_path / "b.tar", [layer_tar({"x": b"ok"})], ["slimage-test/fine:1"]),
    )
    junk_bytes = b"unreferenced junk"
    junk = "sha256:" + hashlib.sha256(junk_bytes).hexdigest()
    store.blob_path(junk).write_bytes(junk_bytes)  # put_bytes would keep us a writer
    config = open_image(store, "slimage-test/broken:1").manifest.config.digest
    store.blob_path(config).unlink()

    proc = cli(root, "fsck")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"missing blob: {config}" in proc.stdout and "broken image:" in proc.stdout

    proc = cli(root, "images")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    rows = {ln.split()[0]: ln for ln in proc.stdout.splitlines()[1:]}
    assert "<broken>" in rows["slimage-test/broken"]
    assert "<broken>" not in rows["slimage-test/fine"]
    assert "is broken" in proc.stderr
    listed = json.loads(cli(root, "images", "--json").stdout)
    assert any(r.get("broken") for r in listed)

    proc = cli(root, "gc")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert f"Deleted: {junk}" in proc.stdout
    assert "broken image kept" in proc.stderr
    whole(root, "slimage-test/fine:1")


# ---------------------------------------------------------------------------- lows


@pytest.mark.parametrize(
    "record", [b"{not json", b"[1, 2]", b'{"blob": 5}', b'{"diff_id": "x", "blob": "../../etc"}']
)
def test_corrupt_layer_record(tmp_path: Path, record: bytes) -> None:
    root = tmp_path / "store"
    store = Store(root)
    layer = layer_tar({"f": b"data"})
    load_archive(store, archive(tmp_path / "a.tar", [layer], ["slimage-test/rec:1"]))
    path = store.layers_dir / (hashlib.sha256(layer).hexdigest() + ".json")
    assert path.is_file()
    path.write_bytes(record)

    proc = cli(root, "fsck")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"corrupt record: {path}" in proc.stdout
    proc = cli(root, "images")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "slimage-test/rec" in proc.stdout and "<broken>" not in proc.stdout
    fsck_clean(root)  # the record is a cache: the listing rebuilt it
    path.write_bytes(record)
    assert cli(root, "gc").returncode == 0  # and gc drops a corrupt one
    assert not path.exists()
    fsck_clean(root)


def test_killed_load_leaves_tmp_files_that_gc_reclaims_and_counts(tmp_path: Path) -> None:
    root = tmp_path / "store"
    big = archive(
        tmp_path / "big.tar",
        [layer_tar({"big": os.urandom(40_000_000)})],
        ["slimage-test/big:1"],
    )
    store = Store(root)
    proc = popen(root, "load", "-i", str(big))
    deadline = time.time() + 60
    while time.time() < deadline:
        tmps = [p for p in store.tmp_dir.glob("blob-*") if p.stat().st_size > 100_000]
        if tmps:
            break
        time.sleep(0.01)
    else:
        proc.kill()
        pytest.fail("load never started writing")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    left = sum(p.stat().st_size for p in store.tmp_dir.glob("blob-*"))
    assert left > 100_000
    fsck_clean(root)
    out = cli(root, "gc")
    assert out.returncode == 0, out.stderr
    assert "abandoned temp files" in out.stdout
    assert "Total reclaimed space: 0B" not in out.stdout
    assert list(store.tmp_dir.glob("blob-*")) == []
    fsck_clean(root)


def test_gc_keeps_the_temp_file_of_a_live_writer(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    with store.writer() as w:
        w.write(b"in flight" * 1000)
        report = store.gc()
        assert w._tmp.exists() and report.removed_tmp == 0
        digest = w.commit()
    assert store.read_blob(digest) == b"in flight" * 1000


@pytest.mark.parametrize(
    "name",
    [
        "slimage-test/" + "a" * 250,
        "127.0.0.1:5000/" + "b" * 250 + ":1",
        "a" * 256,
        "x/" * 100 + "y" * 60,
    ],
)
def test_repository_names_over_255_characters_are_refused(tmp_path: Path, name: str) -> None:
    root = tmp_path / "store"
    store = Store(root)
    load_archive(
        store, archive(tmp_path / "a.tar", [layer_tar({"f": b"1"})], ["slimage-test/ok:1"])
    )
    line = one_line_error(cli(root, "tag", "slimage-test/ok:1", name))
    assert "must not be more than 255 characters" in line and len(line) < 300
    # in an archive's RepoTags: never recorded as a name
    root2 = tmp_path / "store2"
    cli(root2, "load", "-i", str(archive(tmp_path / "b.tar", [layer_tar({"g": b"2"})], [name])))
    assert all(len(ref) < 300 for ref in Store(root2).refs())
    fsck_clean(root2)


def test_a_name_of_exactly_255_characters_is_accepted(tmp_path: Path) -> None:
    root = tmp_path / "store"
    load_archive(Store(root), archive(tmp_path / "a.tar", [layer_tar({"f": b"1"})], ["x/y:1"]))
    name = "127.0.0.1:5000/" + "c" * (255 - len("127.0.0.1:5000/"))
    assert cli(root, "tag", "x/y:1", name).returncode == 0


# ---------------------------------------------------------------------------- ENOSPC


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A real 4 MiB tmpfs: writes past it fail with ENOSPC, as on a full disk."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_during_load_is_one_line(tmp_path: Path, tiny_fs: Path) -> None:
    big = archive(
        tmp_path / "big.tar", [layer_tar({"big": os.urandom(6_000_000)})], ["slimage-test/b:1"]
    )
    line = one_line_error(cli(tiny_fs / "store", "load", "-i", str(big)))
    assert "no space left on device" in line
    fsck_clean(tiny_fs / "store")


def test_full_disk_during_build_is_one_line(tmp_path: Path, tiny_fs: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "big").write_bytes(os.urandom(6_000_000))
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY big /big\n")
    proc = cli(tiny_fs / "store", "build", "-t", "slimage-test/full:1", str(ctx))
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if "error" in ln]
    assert len(errors) == 1 and "no space left on device" in errors[0], proc.stderr
    fsck_clean(tiny_fs / "store")


def test_full_disk_during_pull_is_one_line(
    registry_host: str, tmp_path: Path, tiny_fs: Path
) -> None:
    src = tmp_path / "src"
    load_archive(
        Store(src),
        archive(
            tmp_path / "big.tar", [layer_tar({"big": os.urandom(6_000_000)})], ["slimage-test/p:1"]
        ),
    )
    ref = f"{registry_host}/adv/full:1"
    assert cli(src, "tag", "slimage-test/p:1", ref).returncode == 0
    assert cli(src, "push", "-q", ref).returncode == 0
    line = one_line_error(cli(tiny_fs / "store", "pull", "-q", ref))
    assert "no space left on device" in line
    fsck_clean(tiny_fs / "store")


# ---------------------------------------------------------------------------- faults


@pytest.fixture(scope="module")
def registry_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from tests.registry import servers

    if servers.REGISTRY_BIN is None:
        pytest.skip("needs Debian's docker-registry")
    reg = servers.RegistryProc(tmp_path_factory.mktemp("adv-registry"), name="adv-store")
    yield reg.host
    reg.stop()


def test_kill_mid_ingest_while_another_process_ingests(tmp_path: Path, shared: bytes) -> None:
    """Issue 10's last criterion: SIGKILL one load mid-write while another loads a
    different image into the same store: fsck clean, the other image whole."""
    victim = archive(
        tmp_path / "victim.tar",
        [shared, layer_tar({"v": os.urandom(30_000_000)})],
        ["slimage-test/victim:1"],
    )
    other = archive(
        tmp_path / "other.tar",
        [shared, layer_tar({"o": os.urandom(2_000_000)})],
        ["slimage-test/other:1"],
    )
    for attempt in range(3):
        root = tmp_path / f"store{attempt}"
        store = Store(root)
        a = popen(root, "load", "-i", str(victim))
        b = popen(root, "load", "-i", str(other))
        deadline = time.time() + 60
        while time.time() < deadline and not any(
            p.stat().st_size > 1_000_000 * (attempt + 1) for p in store.tmp_dir.glob("blob-*")
        ):
            time.sleep(0.005)
        os.kill(a.pid, signal.SIGKILL)
        a.wait()
        out, err = b.communicate(timeout=120)
        assert b.returncode == 0, err
        assert "Loaded image: slimage-test/other:1" in out
        fsck_clean(root)
        whole(root, "slimage-test/other:1")
        assert (
            cli(root, "save", "-o", str(tmp_path / "o.tar"), "slimage-test/other:1").returncode == 0
        )


def test_fault_script_small_run(registry_host: str) -> None:
    """The measured fault run (scripts/faults.py), small: a handful of SIGKILLs across
    load, pull, push and gc with a concurrent writer each time."""
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "faults.py"),
            "--kills",
            "5",
            "--images",
            "2",
            "--kinds",
            "load,pull,push,gc",
            "--seed",
            "7",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout)
    assert result["kills_made"] == 5 and result["kills_survived"] == 5
    assert result["corrupt_stores"] == 0 and result["lost_images"] == 0
