"""Differential test of `slimage fix` with the real Docker engine.

For every case in tests/corpus/fix/ the original and the fixed Dockerfile are built with
BuildKit (`DOCKER_BUILDKIT=1 /usr/bin/docker build --network host`), the final
filesystems are exported (`docker export`) and compared entry by entry: path, type, mode,
owner, size and content hash. The only differences allowed are the caches the fixer
removes (apt lists and archives, pip and npm caches) and files whose bytes embed the
build time (logs). The fixed image must also have fewer layers or fewer bytes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest

from slimage.dockerfile.fix import fix_file, fix_text

pytestmark = [pytest.mark.docker, pytest.mark.slow]

CORPUS = Path(__file__).resolve().parents[1] / "corpus" / "fix"
DOCKER = "/usr/bin/docker"
CASES = sorted(p.name for p in CORPUS.iterdir() if (p / "Dockerfile").is_file())

# Removed by the fixes on purpose: caches (the point of SL103/SL106).
CACHE_PREFIXES = ("var/lib/apt/lists/", "var/cache/apt/", "root/.cache/", "root/.npm/")
# Contents that embed timestamps of the build: compared by metadata only, not bytes.
VOLATILE = ("var/log/", "var/cache/ldconfig/aux-cache", "var/cache/debconf/")

# What each case must (and must not) get from the fixer: a regression in either
# direction is a test failure, not just a change in the diff.
EXPECT: dict[str, tuple[set[str], set[str]]] = {
    "merge-simple": ({"SL101", "SL303"}, set()),
    "merge-stateful": ({"SL101"}, set()),
    "copy-chown-dir": ({"SL111"}, set()),
    "copy-chown-file": ({"SL111", "SL303"}, set()),
    "copy-chown-workdir": ({"SL101"}, {"SL111"}),
    "apt-update-install": ({"SL101", "SL103", "SL104"}, set()),
    "apt-chain": ({"SL101", "SL103", "SL104", "SL303"}, set()),
    "pip-local": ({"SL101", "SL103", "SL106", "SL303"}, {"SL104"}),
    "exec-form": ({"SL101", "SL303"}, set()),
    "multistage": ({"SL101", "SL303"}, set()),
    "pragma-keep": ({"SL101", "SL303"}, set()),
    "lists-needed": ({"SL101", "SL104"}, {"SL103"}),
    "hello-express": ({"SL107"}, {"SL101", "SL303"}),
}


def _docker(*args: str, **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, DOCKER_BUILDKIT="1")
    return subprocess.run([DOCKER, *args], env=env, check=True, **kw)


def _build(context: Path, dockerfile: Path, tag: str) -> None:
    proc = subprocess.run(
        [
            DOCKER,
            "build",
            "--network",
            "host",
            "-q",
            "-t",
            tag,
            "-f",
            str(dockerfile),
            str(context),
        ],
        env=dict(os.environ, DOCKER_BUILDKIT="1"),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, f"docker build {dockerfile} failed:\n{proc.stderr[-3000:]}"


def _listing(tag: str) -> dict[str, tuple]:
    """path -> (type, mode, uid, gid, size, sha256|link target) of the exported rootfs."""
    # A command is given because some images have none; the container is never started.
    cid = _docker(
        "create", "--entrypoint", "/bin/true", tag, capture_output=True, text=True
    ).stdout.strip()
    try:
        proc = subprocess.Popen([DOCKER, "export", cid], stdout=subprocess.PIPE)
        assert proc.stdout is not None
        out: dict[str, tuple] = {}
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for m in tar:
                name = m.name.lstrip("./").rstrip("/")
                digest = ""
                if m.isfile():
                    fh = tar.extractfile(m)
                    assert fh is not None
                    h = hashlib.sha256()
                    for chunk in iter(lambda fh=fh: fh.read(1 << 16), b""):
                        h.update(chunk)
                    digest = h.hexdigest()
                elif m.issym() or m.islnk():
                    digest = m.linkname
                out[name] = (m.type, m.mode, m.uid, m.gid, m.size, digest)
        assert proc.wait() == 0
        return out
    finally:
        _docker("rm", cid, capture_output=True)


def _image_stats(tag: str) -> tuple[int, int]:
    fmt = "{{len .RootFS.Layers}} {{.Size}}"
    layers, size = _docker(
        "image", "inspect", "-f", fmt, tag, capture_output=True, text=True
    ).stdout.split()
    return int(layers), int(size)


def _is_cache(path: str) -> bool:
    return any(path.startswith(p) or path + "/" == p for p in CACHE_PREFIXES)


@pytest.fixture(scope="module")
def built(
    debian_image: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
):
    """Builds (original, fixed) per case lazily; removes every image at the end."""
    made: list[str] = []
    cache: dict[str, tuple[str, str, str]] = {}
    run_id = uuid.uuid4().hex[:8]

    def build(case: str) -> tuple[str, str, str]:
        if case in cache:
            return cache[case]
        src = CORPUS / case
        if "slimage-test/node:8" in (src / "Dockerfile").read_text():
            request.getfixturevalue("node8_image")  # the seed's stand-in for node:8
        ctx = tmp_path_factory.mktemp(case) / "ctx"
        shutil.copytree(src, ctx)
        result = fix_file(ctx / "Dockerfile")
        (ctx / "Dockerfile.fixed").write_text(result.fixed)
        orig_tag = f"slimage-fixtest-{case}-orig-{run_id}"
        fixed_tag = f"slimage-fixtest-{case}-fixed-{run_id}"
        made.extend([orig_tag, fixed_tag])
        _build(ctx, ctx / "Dockerfile", orig_tag)
        _build(ctx, ctx / "Dockerfile.fixed", fixed_tag)
        cache[case] = (orig_tag, fixed_tag, result.fixed)
        return cache[case]

    yield build
    if made:
        subprocess.run([DOCKER, "rmi", "-f", *made], capture_output=True)


def test_corpus_is_big_enough() -> None:
    assert len(CASES) >= 10
    assert set(CASES) == set(EXPECT), "every corpus case needs an expectation"


@pytest.mark.parametrize("case", CASES)
def test_fixed_image_has_same_filesystem(case: str, built) -> None:
    orig_tag, fixed_tag, _fixed = built(case)
    before = _listing(orig_tag)
    after = _listing(fixed_tag)
    only_before = {p for p in before.keys() - after.keys() if not _is_cache(p)}
    # Cache directories are volatile by nature (npm writes a timestamped log there).
    only_after = {p for p in after.keys() - before.keys() if not _is_cache(p)}
    assert not only_before, f"fix removed non-cache paths: {sorted(only_before)[:20]}"
    assert not only_after, f"fix added paths: {sorted(only_after)[:20]}"
    changed = []
    for path in sorted(before.keys() & after.keys()):
        a, b = before[path], after[path]
        if _is_cache(path):
            continue
        if any(path.startswith(v) for v in VOLATILE):
            a, b = a[:4], b[:4]  # type, mode, owner only
        if a != b:
            changed.append((path, a, b))
    assert not changed, f"{case}: entries differ: {changed[:10]}"


@pytest.mark.parametrize("case", CASES)
def test_fixed_image_is_smaller_or_flatter(case: str, built) -> None:
    orig_tag, fixed_tag, _ = built(case)
    layers_before, bytes_before = _image_stats(orig_tag)
    layers_after, bytes_after = _image_stats(fixed_tag)
    assert layers_after < layers_before or bytes_after < bytes_before, (
        f"{case}: {layers_before} layers/{bytes_before} B -> {layers_after}/{bytes_after}"
    )
    # Joining layers can move a few tar header bytes around, never more than that.
    assert layers_after <= layers_before and bytes_after <= bytes_before * 1.001


@pytest.mark.parametrize("case", CASES)
def test_expected_fixes_and_idempotence(case: str) -> None:
    text = (CORPUS / case / "Dockerfile").read_text()
    result = fix_text(text, path=case, context_dir=CORPUS / case)
    rules = {a.rule for a in result.applied}
    must, must_not = EXPECT[case]
    assert must <= rules, f"{case}: expected {sorted(must - rules)} to be applied"
    assert not (must_not & rules), f"{case}: {sorted(must_not & rules)} must not be applied"
    again = fix_text(result.fixed, path=case, context_dir=CORPUS / case)
    assert again.fixed == result.fixed and not again.applied


def _config(tag: str) -> dict:
    out = _docker("image", "inspect", "-f", "{{json .Config}}", tag, capture_output=True, text=True)
    return json.loads(out.stdout)


def test_runtime_config_kept(built) -> None:
    """Exec-form conversion keeps what the container runs and prints."""
    orig_tag, fixed_tag, _ = built("exec-form")
    a, b = _config(orig_tag), _config(fixed_tag)
    assert a["Entrypoint"] == ["/bin/sh", "-c", "cat /data/app.conf"]
    assert b["Entrypoint"] == ["cat", "/data/app.conf"]
    assert a["Cmd"] is None and b["Cmd"] is None  # ENTRYPOINT reset the base's CMD in both
    run = ("run", "--rm", "--network", "host")
    out_a = _docker(*run, orig_tag, capture_output=True, text=True).stdout
    out_b = _docker(*run, fixed_tag, capture_output=True, text=True).stdout
    assert out_a == out_b == "port=8080\n"


FAILING = {
    "false-then-semicolon": "FROM slimage-test/debian:bookworm\nRUN false\nRUN echo a; echo b\n",
    "test-then-or": "FROM slimage-test/debian:bookworm\nRUN test -e /nonexistent\nRUN echo x || true\n",
    "missing-package": (
        "FROM slimage-test/debian:bookworm\nRUN apt-get install -y slimage-no-such-package\nRUN echo hi\n"
    ),
}


@pytest.mark.parametrize("name", sorted(FAILING))
def test_a_failing_build_still_fails_after_fix(
    name: str, debian_image: str, tmp_path: Path
) -> None:
    """Joining RUNs must not turn a failing step into a passing one."""
    text = FAILING[name]
    fixed = fix_text(text).fixed
    tag = f"slimage-fixtest-fail-{name}-{uuid.uuid4().hex[:8]}"
    results = []
    for label, body in (("orig", text), ("fixed", fixed)):
        df = tmp_path / f"Dockerfile.{label}"
        df.write_text(body)
        proc = subprocess.run(
            [DOCKER, "build", "--network", "host", "-q", "-t", tag, "-f", str(df), str(tmp_path)],
            env=dict(os.environ, DOCKER_BUILDKIT="1"),
            capture_output=True,
            text=True,
        )
        results.append(proc.returncode)
    subprocess.run([DOCKER, "rmi", "-f", tag], capture_output=True)
    assert results[0] != 0, "the original was meant to fail"
    assert results[1] != 0, f"fixed Dockerfile builds although the original fails:\n{fixed}"
