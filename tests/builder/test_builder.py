"""Builder behaviour on the real runc + overlayfs: cache, reproducibility, RUN mounts,
runtimes, network modes, outputs, and every fault the issue lists."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.builder.conftest import cli_env
from tests.support import testbed

DEBIAN = testbed.DEBIAN_IMAGE


def _ctx(tmp: Path, dockerfile: str, files: dict[str, str] | None = None) -> Path:
    ctx = tmp / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    for name, text in (files or {}).items():
        p = ctx / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return ctx


def _build(store, ctx: Path, **kw):  # type: ignore[no-untyped-def]
    from slimage.builder import BuildOptions, build

    kw.setdefault("quiet", True)
    return build(BuildOptions(str(ctx), **kw), store=store)


def _cli(store, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:  # type: ignore[no-untyped-def]
    return subprocess.run(
        [sys.executable, "-m", "slimage.cli.main", *args],
        env=cli_env(store),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _layer_files(store, ref: str) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    """Every regular file of every layer of REF (name -> content), read from the blobs."""
    import tarfile

    from slimage.store.images import open_image

    out: dict[str, bytes] = {}
    for layer in open_image(store, ref).layers:
        with tarfile.open(fileobj=layer.open_tar(), mode="r|") as tf:
            for m in tf:
                if m.isreg():
                    fh = tf.extractfile(m)
                    out[m.name] = fh.read() if fh else b""
    return out


def _leftovers(store) -> tuple[list[str], list[str]]:  # type: ignore[no-untyped-def]
    with open("/proc/self/mountinfo") as fh:
        mounts = [ln.split()[4] for ln in fh if str(store.root) in ln.split()[4]]
    res = subprocess.run(["runc", "list", "-q"], capture_output=True, text=True)
    ours = [c for c in res.stdout.split() if c.startswith("slimage-build-")]
    return mounts, ours


# ---------------------------------------------------------------------------- cache


def test_warm_rebuild_is_a_no_op_with_the_same_id(build_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ctx = _ctx(
        tmp_path,
        f"FROM {DEBIAN}\nWORKDIR /app\nCOPY a.txt ./\nRUN cat a.txt > copy.txt && date +%s%N > stamp\n"
        "COPY b.txt ./\nRUN cat b.txt > b.copy\n",
        {"a.txt": "a\n", "b.txt": "b\n"},
    )
    first = _build(build_store, ctx, tags=["cache-test:1"])
    stamp1 = _layer_files(build_store, "cache-test:1")["app/stamp"]
    second = _build(build_store, ctx, tags=["cache-test:1"])
    assert second.image_id == first.image_id
    # Changing b.txt rebuilds from the COPY that reads it; the RUN before it stays cached.
    (ctx / "b.txt").write_text("B\n")
    third = _build(build_store, ctx, tags=["cache-test:2"])
    assert third.image_id != first.image_id
    files = _layer_files(build_store, "cache-test:2")
    assert files["app/stamp"] == stamp1
    assert files["app/b.copy"] == b"B\n"
    # --no-cache runs every step again.
    fourth = _build(build_store, ctx, tags=["cache-test:3"], no_cache=True)
    assert _layer_files(build_store, "cache-test:3")["app/stamp"] != stamp1
    assert fourth.image_id != third.image_id


def test_progress_shows_cached_steps_and_timings(build_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ctx = _ctx(tmp_path, f"FROM {DEBIAN}\nRUN echo progress-line-$((6*7))\n")
    res = _cli(build_store, "build", "-t", "progress:1", str(ctx))
    assert res.returncode == 0, res.stderr
    assert "RUN echo progress-line" in res.stderr and "progress-line-42" in res.stderr
    assert "DONE" in res.stderr
    again = _cli(build_store, "build", "-t", "progress:1", str(ctx))
    assert "CACHED" in again.stderr


def test_source_date_epoch_gives_bit_identical_images(build_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ctx = _ctx(
        tmp_path,
        f"FROM {DEBIAN}\nCOPY f.txt /f.txt\nRUN mkdir -p /out && echo hi > /out/x && touch /out/y\n"
        "ENV A=1\nWORKDIR /w\n",
        {"f.txt": "content\n"},
    )
    a = _build(build_store, ctx, tags=["repro:a"], no_cache=True, source_date_epoch=1700000000)
    time.sleep(1.1)
    os.utime(ctx / "f.txt")  # a fresh mtime on the source must not matter either
    b = _build(build_store, ctx, tags=["repro:b"], no_cache=True, source_date_epoch=1700000000)
    assert a.manifest_digest == b.manifest_digest
    assert a.image_id == b.image_id
    from slimage.store.images import open_image

    img = open_image(build_store, "repro:a")
    assert img.config.data["created"] == "2023-11-14T22:13:20Z"
    for layer in img.layers:
        raw = layer.open_blob().read(10)
        assert raw[:2] == b"\x1f\x8b" and raw[4:8] == b"\0\0\0\0"  # gzip without mtime


# ---------------------------------------------------------------------------- RUN

HEREDOC_DOCKERFILE = """FROM slimage-test/debian:bookworm
ARG WHO=world
RUN <<EOF
echo "hello $WHO" > /run-heredoc.txt
EOF
RUN cat > /via-cat.txt <<'END'
literal $WHO
END
COPY <<CFG /etc/app.conf
who=${WHO}
CFG
RUN <<EOF
#!/bin/bash
set -e
echo "script ran by ${BASH_VERSION:+bash}" > /script.txt
EOF
"""


def test_heredocs_run_and_copy(build_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # Docker 20.10's built-in frontend has no heredocs, so this one is checked on its own.
    ctx = _ctx(tmp_path, HEREDOC_DOCKERFILE)
    _build(build_store, ctx, tags=["heredoc:1"])
    files = _layer_files(build_store, "heredoc:1")
    assert files["run-heredoc.txt"] == b"hello world\n"
    assert files["via-cat.txt"] == b"literal $WHO\n"
    assert files["etc/app.conf"] == b"who=world\n"
    assert files["script.txt"] == b"script ran by bash\n"  # the shebang picked the shell


def test_network_host_by_default_and_none_isolates(build_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ctx = _ctx(
        tmp_path,
        f"FROM {DEBIAN}\nRUN tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort > /ifaces\n",
    )
    _build(build_store, ctx, tags=["net:host"])
    host_ifaces = sorted(
        line.split(":")[0].strip() for line in Path("/proc/net/dev").read_text().splitlines()[2:]
    )
    assert _layer_files(build_store, "net:host")["ifaces"].decode().split() == host_ifaces
    _build(build_store, ctx, tags=["net:none"], network="none", no_cache=True)
    assert _layer_files(build_store, "net:none")["ifaces"].decode().split() == ["lo"]


def test_crun_runs_steps_too(build_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    if not Path("/usr/bin/crun").exists():
        pytest.skip("crun is not installed")
    ctx = _ctx(tmp_path, f"FROM {DEBIAN}\nRUN echo crun-$$ > /crun.txt && rm /etc/issue\n")
    _build(build_store, ctx, tags=["crun:1"], runtime="crun", no_cache=True)
    import tarfile

    from slimage.store.images import open_image

    names = []
    for layer in open_image(build_store, "crun:1").layers[-1:]:
        with tarfile.open(fileobj=layer.open_tar(), mode="r|") as tf:
            names = [m.name for m in tf]
    assert "crun.txt" in names
    assert "etc/.wh.issue" in names  # the deletion became a whiteout


def test_cache_mount_persists_and_stays_out_of_the_layer(build_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ctx = _ctx(
        tmp_path,
        f"FROM {DEBIAN}\nRUN --mount=type=cache,target=/var/cache/thing,id=slimage-test-cache "
        "echo run >> /var/cache/thing/runs && wc -l < /var/cache/thing/runs > /count\n",
    )
    _build(build_store, ctx, tags=["cachemount:1"], no_cache=True)
    _build(build_store, ctx, tags=["cachemount:2"], no_cache=True)
    one = int(_layer_files(build_store, "cachemount:1")["count"])
    two = _layer_files(build_store, "cachemount:2")
    assert int(two["count"]) == one + 1
    assert not any(n.startswith("var/cache/thing/") for n in two)


def test_secret_is_readable_but_never_stored(build_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import hashlib

    value = b"s3cr3t-VALUE-1234"
    secret = tmp_path / "token"
    secret.write_bytes(value)
    ctx = _ctx(
        tmp_path,
        f"FROM {DEBIAN}\nRUN --mount=type=secret,id=token sha256sum /run/secrets/token | cut -c1-64 > /checked\n",
    )
    res = _build(build_store, ctx, tags=["secret:1"], secrets={"token": str(secret)}, no_cache=True)
    files = _layer_files(build_store, "secret:1")
    assert files["checked"].strip() == hashlib.sha256(value).hexdigest().encode()
    assert not any(value in v for v in files.values())
    assert not any(n.startswith("run/secrets") or n == "run/secrets" for n in files)
    assert value not in build_store.read_blob(res.image_id)
    for p in (build_store.root / "build-cache").iterdir():
        assert value not in p.read_bytes()
    # A changed secret does not change the cache key: the step stays cached.
    secret.write_bytes(b"other")
    again = _build(build_store, ctx, tags=["secret:2"], secrets={"token": str(secret)})
    assert again.image_id == res.image_id


# ---------------------------------------------------------------------------- outputs


def test_outputs_oci_and_docker_and_load(build_store, tmp_path: Path, docker_engine: str) -> None:  # type: ignore[no-untyped-def]
    ctx = _ctx(tmp_path, f'FROM {DEBIAN}\nRUN echo out > /out.txt\nCMD ["cat", "/out.txt"]\n')
    oci = tmp_path / "oci"
    arch = tmp_path / "img.tar"
    ocitar = tmp_path / "oci-layout.tar"
    res = _build(
        build_store,
        ctx,
        tags=["slimage-test/outputs:1"],
        outputs=[f"type=oci,dest={oci}", f"type=docker,dest={arch}", f"type=oci,dest={ocitar}"],
        load=True,
    )
    assert (oci / "index.json").exists() and arch.stat().st_size > 0
    check = subprocess.run(["skopeo", "inspect", f"oci:{oci}"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert json.loads(check.stdout)["Layers"]
    check_tar = subprocess.run(
        ["skopeo", "inspect", f"oci-archive:{ocitar}"], capture_output=True, text=True
    )
    assert check_tar.returncode == 0, check_tar.stderr
    engine_id = testbed.docker(
        "image",
        "inspect",
        "-f",
        "{{.Id}}",
        "slimage-test/outputs:1",
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert engine_id == res.image_id
    run = testbed.docker(
        "run", "--rm", "--network", "host", "slimage-test/outputs:1", capture_output=True, text=True
    )
    assert run.stdout == "out\n"


# ---------------------------------------------------------------------------- faults


def test_failing_run_reports_exit_code_and_tail_and_leaves_nothing(
    build_store, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    ctx = _ctx(
        tmp_path, f"FROM {DEBIAN}\nRUN for i in $(seq 1 30); do echo line-$i; done; exit 7\n"
    )
    cache_dir = build_store.root / "build-cache"
    cache_before = set(os.listdir(cache_dir)) if cache_dir.exists() else set()
    res = _cli(build_store, "build", "-t", "fails:1", str(ctx))
    assert res.returncode != 0
    err = [ln for ln in res.stderr.splitlines() if ln.startswith("slimage: error:")]
    assert len(err) == 1 and "exit code: 7" in err[0], res.stderr[-3000:]
    assert "line-30" in res.stderr and "Traceback" not in res.stderr
    assert not any(r.endswith("fails:1") for r in build_store.refs())
    cache_after = set(os.listdir(cache_dir)) if cache_dir.exists() else set()
    assert cache_after == cache_before
    assert _leftovers(build_store) == ([], [])


def test_sigterm_mid_build_cleans_mounts_and_containers(build_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ctx = _ctx(tmp_path, f"FROM {DEBIAN}\nRUN echo started && sleep 120\n")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "slimage.cli.main",
            "build",
            "--no-cache",
            "-t",
            "sigterm:1",
            str(ctx),
        ],
        env=cli_env(build_store),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _leftovers(build_store)[1]:
        time.sleep(0.2)
    assert _leftovers(build_store)[1], "the RUN container never started"
    assert _leftovers(build_store)[0], "no overlay was mounted"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "interrupted" in err and "Traceback" not in err
    assert _leftovers(build_store) == ([], [])
    assert not any(r.endswith("sigterm:1") for r in build_store.refs())


@pytest.mark.parametrize(
    ("dockerfile", "message"),
    [
        # BuildKit: `..` stops at the context root, so this names CONTEXT/outside.
        (f"FROM {DEBIAN}\nCOPY ../outside /x\n", '"/outside": not found (.. stops at'),
        (f"FROM {DEBIAN}\nCOPY missing.txt /x\n", '"/missing.txt": not found'),
        (f"FROM {DEBIAN}\nCOPY --from=nostage /a /b\n", "no such stage or image"),
        ("FROM slimage-test/does-not-exist:1\nRUN true\n", "is not in the store"),
        (
            f"FROM {DEBIAN}\nRUN true\nFROM {DEBIAN}\nCOPY --from=2 /a /b\n",
            "stage '2' is not defined",
        ),
        (f"FROM {DEBIAN}\nRUN echo ok\nBOGUS thing\n", "Dockerfile:3"),
    ],
)
def test_bad_input_gives_one_clear_line(
    build_store, tmp_path: Path, dockerfile: str, message: str
) -> None:  # type: ignore[no-untyped-def]
    ctx = _ctx(tmp_path, dockerfile)
    (tmp_path / "outside").write_text("x")
    res = _cli(build_store, "build", str(ctx))
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    err_lines = [ln for ln in res.stderr.splitlines() if ln.startswith("slimage: error:")]
    assert len(err_lines) == 1, res.stderr
    assert message in err_lines[0]


def test_unknown_target_is_an_error(build_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ctx = _ctx(tmp_path, f"FROM {DEBIAN} AS a\nRUN true\n")
    res = _cli(build_store, "build", "--target", "nope", str(ctx))
    assert res.returncode != 0 and "target stage 'nope' could not be found" in res.stderr


def test_not_root_gets_a_message(
    build_store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    # The one mock here: this machine's interpreter lives under /root (mode 0700), so no
    # other user can even start it; we fake the effective uid instead.
    from slimage.cli.main import main

    ctx = _ctx(tmp_path, f"FROM {DEBIAN}\nRUN true\n")
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("SLIMAGE_HOME", str(tmp_path / "user-store"))
    rc = main(["build", str(ctx)])
    err = capsys.readouterr().err
    assert rc != 0
    assert "needs root" in err and "Traceback" not in err
    assert not (tmp_path / "user-store").exists()  # nothing half-written


def test_run_mount_bind_from_stage_and_platform_args(build_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ctx = _ctx(
        tmp_path,
        f"FROM {DEBIAN} AS tools\nRUN mkdir -p /kit && echo from-tools > /kit/msg\n"
        f"FROM {DEBIAN}\nARG TARGETARCH\nARG TARGETPLATFORM\n"
        "RUN --mount=type=bind,from=tools,source=/kit,target=/mnt/kit "
        'cat /mnt/kit/msg > /got && echo "$TARGETPLATFORM $TARGETARCH" > /plat\n',
    )
    _build(build_store, ctx, tags=["bindfrom:1"])
    files = _layer_files(build_store, "bindfrom:1")
    assert files["got"] == b"from-tools\n"
    assert not any(n.startswith("mnt/kit/") for n in files)
    from slimage.oci.model import Platform

    plat = Platform.host()
    assert files["plat"].decode().split() == [f"{plat.os}/{plat.architecture}", plat.architecture]


def test_add_url_with_checksum(build_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import hashlib
    import http.server
    import threading

    payload = b"remote file body\n"
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "remote.txt").write_bytes(payload)

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):  # type: ignore[no-untyped-def]
            super().__init__(*a, directory=str(tmp_path / "www"), **kw)

        def log_message(self, *a):  # type: ignore[no-untyped-def]
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/remote.txt"
        good = hashlib.sha256(payload).hexdigest()
        ctx = _ctx(tmp_path, f"FROM {DEBIAN}\nADD --checksum=sha256:{good} {url} /dl/\n")
        _build(build_store, ctx, tags=["addurl:1"])
        assert _layer_files(build_store, "addurl:1")["dl/remote.txt"] == payload
        bad = _ctx(tmp_path, f"FROM {DEBIAN}\nADD --checksum=sha256:{'0' * 64} {url} /dl/\n")
        res = _cli(build_store, "build", str(bad))
        assert res.returncode != 0 and "digest mismatch" in res.stderr
    finally:
        server.shutdown()


def test_kill_9_leftovers_are_swept_by_the_next_build(build_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ctx = _ctx(tmp_path, f"FROM {DEBIAN}\nRUN echo started && sleep 120\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "slimage.cli.main", "build", "--no-cache", str(ctx)],
        env=cli_env(build_store),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _leftovers(build_store)[1]:
        time.sleep(0.2)
    assert _leftovers(build_store)[1], "the RUN container never started"
    proc.kill()  # no chance to clean up
    proc.wait()
    assert _leftovers(build_store)[0], "expected the dead build's overlay to still be mounted"
    time.sleep(10.5)  # the sweep leaves workspaces younger than 10 s alone
    other = tmp_path / "other"
    other.mkdir()
    nxt = _ctx(other, f"FROM {DEBIAN}\nRUN echo next\n")
    _build(build_store, nxt, no_cache=True)
    assert _leftovers(build_store) == ([], [])


def test_target_builds_only_the_stages_it_needs(build_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ctx = _ctx(
        tmp_path,
        f"FROM {DEBIAN} AS base\nRUN echo base > /base\n"
        f"FROM {DEBIAN} AS unrelated\nRUN echo never-built-marker\n"
        "FROM base AS wanted\nRUN echo wanted > /wanted\n"
        "FROM wanted AS after\nRUN exit 9\n",
    )
    res = _cli(build_store, "build", "--no-cache", "--target", "wanted", "-t", "target:1", str(ctx))
    assert res.returncode == 0, res.stderr
    assert "[base " in res.stderr and "[wanted " in res.stderr
    assert "never-built-marker" not in res.stderr and "[unrelated " not in res.stderr
    assert "[after " not in res.stderr
    files = _layer_files(build_store, "target:1")
    assert files["base"] == b"base\n" and files["wanted"] == b"wanted\n"


def test_secret_from_environment_via_cli(build_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ctx = _ctx(
        tmp_path,
        f"FROM {DEBIAN}\nRUN --mount=type=secret,id=api wc -c < /run/secrets/api > /len\n",
    )
    env = dict(cli_env(build_store), API_TOKEN="token-from-env-xyz")
    before = set(Path(tempfile_dir()).glob("slimage-secrets-*"))
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "slimage.cli.main",
            "build",
            "--no-cache",
            "-t",
            "envsecret:1",
            "--secret",
            "id=api,env=API_TOKEN",
            str(ctx),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    files = _layer_files(build_store, "envsecret:1")
    assert files["len"].strip() == str(len("token-from-env-xyz")).encode()
    assert not any(b"token-from-env" in v for v in files.values())
    assert set(Path(tempfile_dir()).glob("slimage-secrets-*")) == before  # removed after


def tempfile_dir() -> str:
    import tempfile

    return tempfile.gettempdir()


def test_label_flag_and_iidfile(build_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    ctx = _ctx(tmp_path, f"FROM {DEBIAN}\nLABEL from.file=1\n")
    iid = tmp_path / "iid"
    res = _cli(
        build_store,
        "build",
        "--progress",
        "quiet",
        "--label",
        "org.example.by=cli",
        "--iidfile",
        str(iid),
        "-t",
        "labels:1",
        str(ctx),
    )
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""  # --progress quiet
    from slimage.store.images import open_image

    img = open_image(build_store, "labels:1")
    assert iid.read_text() == img.id
    assert img.config.config["Labels"] == {"from.file": "1", "org.example.by": "cli"}
    assert [h.created_by for h in img.config.history][-1] == "LABEL from.file=1"
