"""The build cache shared through a registry (or a directory): two store roots stand in
for two CI runners and share only the real Debian `docker-registry` on 127.0.0.1.

What a RUN did is observable for real: each RUN appends to a `--mount=type=cache`
directory, which lives in its runner's store (`build-mounts/cache/`), so runner B's store
shows whether any RUN executed there. The base is the host's static busybox, imported once
and copied into each store (same config digest, as a base pulled on two machines is)."""

from __future__ import annotations

import json
import os
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.adversarial.test_runtime import make_busybox_image, pytestmark
from tests.registry import servers

__all__ = ["pytestmark"]

BASE = "slimage-test/busybox:remote-cache"
EPOCH = 1700000000

DOCKERFILE = f"""\
FROM {BASE}
WORKDIR /app
ARG FLAVOUR=plain
COPY dep.txt ./
RUN --mount=type=cache,target=/runs echo dep >> /runs/log && cat dep.txt > deps.out
COPY src.txt ./
RUN --mount=type=cache,target=/runs echo src-$FLAVOUR >> /runs/log && cat src.txt > src.out
CMD ["cat", "/app/src.out"]
"""
LAYER_STEPS = 5  # WORKDIR, COPY, RUN, COPY, RUN


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[servers.RegistryProc]:
    if servers.REGISTRY_BIN is None:
        pytest.skip("needs Debian's docker-registry")
    reg = servers.RegistryProc(tmp_path_factory.mktemp("remote-cache-reg"), name="plain")
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def base_store(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from slimage.store.store import Store

    work = tmp_path_factory.mktemp("remote-cache-base")
    make_busybox_image(work / "store", work, BASE)
    return Store(work / "store")


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "docker-config"
    d.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(d))
    monkeypatch.setenv("SLIMAGE_RETRY_BACKOFF", "0.05")
    monkeypatch.setenv("SLIMAGE_REGISTRY_RETRIES", "1")
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(var, raising=False)


def runner(base_store, tmp_path: Path, name: str):  # type: ignore[no-untyped-def]
    """A fresh store root holding only the base image."""
    from slimage.store.images import ingest, open_image
    from slimage.store.store import Store

    store = Store(tmp_path / name)
    ingest(store, open_image(base_store, base_store.resolve(BASE)), tags=[BASE])
    return store


def context(tmp_path: Path, name: str = "ctx", **files: str) -> Path:
    ctx = tmp_path / name
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(files.pop("Dockerfile", DOCKERFILE))
    (ctx / "dep.txt").write_text(files.pop("dep", "left-pad 1.0\n"))
    (ctx / "src.txt").write_text(files.pop("src", "hello\n"))
    assert not files
    return ctx


def build(store, ctx: Path, **kw):  # type: ignore[no-untyped-def]
    import io

    from slimage.builder.api import BuildOptions, build

    err = io.StringIO()
    kw.setdefault("tags", ["slimage-test/remote-cache:1"])
    opts = BuildOptions(
        context=str(ctx), source_date_epoch=EPOCH, progress=err, noop_cache=False, **kw
    )
    result = build(opts, store)
    result.stderr = err.getvalue()  # type: ignore[attr-defined]
    return result


def runs(store) -> list[str]:  # type: ignore[no-untyped-def]
    """What the RUN steps executed on this runner (their cache-mount log)."""
    logs = list((store.root / "build-mounts" / "cache").glob("*/log"))
    return [line for p in logs for line in p.read_text().split()]


def blob_exists(reg: servers.RegistryProc, repo: str, digest: str) -> bool:
    req = urllib.request.Request(f"http://{reg.host}/v2/{repo}/blobs/{digest}", method="HEAD")
    try:
        with urllib.request.urlopen(req) as resp:  # noqa: S310 - loopback registry
            return bool(resp.status == 200)
    except urllib.error.HTTPError:
        return False


def get_manifest(reg: servers.RegistryProc, repo: str, ref: str) -> dict:  # type: ignore[type-arg]
    req = urllib.request.Request(
        f"http://{reg.host}/v2/{repo}/manifests/{ref}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    )
    with urllib.request.urlopen(req) as resp:  # noqa: S310 - loopback registry
        return json.loads(resp.read())  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------- two runners


def test_runner_b_reuses_runner_a_cache_without_running(registry, base_store, tmp_path):  # type: ignore[no-untyped-def]
    ref = f"{registry.host}/slimage-test/cache:two-runners"
    a = runner(base_store, tmp_path, "a")
    ctx = context(tmp_path)
    ra = build(a, ctx, cache_to=[f"type=registry,ref={ref},mode=max"])
    assert runs(a) == ["dep", "src-plain"]
    assert ra.cache_exported and ra.cache_exported[0].startswith(ref)
    cache = get_manifest(registry, "slimage-test/cache", "two-runners")
    assert cache["config"]["mediaType"] == "application/vnd.slimage.build-cache.config.v1+json"
    assert all(blob_exists(registry, "slimage-test/cache", d["digest"]) for d in cache["layers"])

    b = runner(base_store, tmp_path, "b")
    rb = build(b, ctx, cache_from=[f"type=registry,ref={ref}"])
    assert runs(b) == []  # no RUN executed on runner B
    assert rb.manifest_digest == ra.manifest_digest
    assert rb.remote_cached_steps == LAYER_STEPS
    final = b.manifest_for(rb.manifest_digest)
    base_layers = {d.digest for d in b.manifest_for(b.resolve(BASE)).layers}
    own = sum(d.size for d in final.layers if d.digest not in base_layers)
    assert 0 < rb.bytes_pulled <= own  # nothing beyond what the final image needs

    # One source file changed: only the steps after that COPY run.
    ctx2 = context(tmp_path, "ctx2", src="changed\n")
    c = runner(base_store, tmp_path, "c")
    rc = build(c, ctx2, cache_from=[f"type=registry,ref={ref}"])
    assert runs(c) == ["src-plain"]
    assert rc.remote_cached_steps == 3  # WORKDIR, COPY dep.txt, RUN dep
    assert rc.manifest_digest != ra.manifest_digest


@pytest.fixture(scope="module")
def inputs_cache(registry, base_store, tmp_path_factory) -> str:  # type: ignore[no-untyped-def]
    """Runner A's export of the unchanged build, shared by the input-by-input cases."""
    tmp = tmp_path_factory.mktemp("inputs-a")
    ref = f"{registry.host}/slimage-test/cache:inputs"
    a = runner(base_store, tmp, "a")
    build(a, context(tmp, "a-ctx"), cache_to=[f"type=registry,ref={ref},mode=max"])
    return ref


@pytest.mark.parametrize(
    ("change", "cached"),
    [
        ("nothing", LAYER_STEPS),
        ("dep-content", 1),
        ("dep-mode", 1),
        ("src-content", 3),
        ("build-arg", 1),  # ARG and ENV values chain into every later step's key
        ("run-text", 2),
        ("env-before-run", 1),
        ("workdir", 0),
        ("base", 0),
    ],
)
def test_each_input_change_misses(inputs_cache, base_store, tmp_path, change, cached):  # type: ignore[no-untyped-def]
    """The key is exact, input by input: the same inputs hit on another store root, and
    any change misses from the step that reads it on (counted steps: 5 layer steps)."""
    ref = inputs_cache
    kw: dict = {}  # type: ignore[type-arg]
    df = DOCKERFILE
    files: dict[str, str] = {}
    if change == "dep-content":
        files["dep"] = "left-pad 1.1\n"
    elif change == "src-content":
        files["src"] = "bye\n"
    elif change == "build-arg":
        kw["build_args"] = {"FLAVOUR": "spicy"}
    elif change == "run-text":
        df = df.replace("echo dep >>", "echo dep  >>")
    elif change == "env-before-run":
        df = df.replace("ARG FLAVOUR=plain\n", "ARG FLAVOUR=plain\nENV X=1\n")
    elif change == "workdir":
        df = df.replace("WORKDIR /app", "WORKDIR /srv")
    elif change == "base":
        df = df.replace(f"FROM {BASE}", f"FROM {BASE}\nRUN true")
    ctx = context(tmp_path, "ctx", Dockerfile=df, **files)
    if change == "dep-mode":
        os.chmod(ctx / "dep.txt", 0o600)
    b = runner(base_store, tmp_path, "b")
    rb = build(b, ctx, cache_from=[f"type=registry,ref={ref}"], **kw)
    assert rb.remote_cached_steps == cached
    if change == "base":
        assert rb.cached_steps == 0


def test_mode_min_exports_only_the_final_stage(registry, base_store, tmp_path):  # type: ignore[no-untyped-def]
    df = (
        f"FROM {BASE} AS build\n"
        "RUN --mount=type=cache,target=/runs echo build >> /runs/log && echo built > /b.txt\n"
        f"FROM {BASE}\n"
        "COPY --from=build /b.txt /b.txt\n"
        "RUN --mount=type=cache,target=/runs echo final >> /runs/log && cat /b.txt\n"
    )
    ctx = context(tmp_path, Dockerfile=df)
    a = runner(base_store, tmp_path, "a")
    ref_min = f"{registry.host}/slimage-test/cache:min"
    ref_max = f"{registry.host}/slimage-test/cache:max"
    build(
        a,
        ctx,
        cache_to=[f"type=registry,ref={ref_min},mode=min", f"type=registry,ref={ref_max},mode=max"],
    )
    assert len(get_manifest(registry, "slimage-test/cache", "min")["layers"]) == 2
    assert len(get_manifest(registry, "slimage-test/cache", "max")["layers"]) == 3
    b = runner(base_store, tmp_path, "b")
    build(b, ctx, cache_from=[f"type=registry,ref={ref_min}"])
    assert runs(b) == ["build"]  # the build stage is not in a min cache; the final one is
    c = runner(base_store, tmp_path, "c")
    build(c, ctx, cache_from=[f"type=registry,ref={ref_max}"])
    assert runs(c) == []


def test_local_cache_dir(base_store, tmp_path):  # type: ignore[no-untyped-def]
    ctx = context(tmp_path)
    cache_dir = tmp_path / "ci-cache"
    a = runner(base_store, tmp_path, "a")
    ra = build(a, ctx, cache_to=[f"type=local,dest={cache_dir},mode=max"])
    index = json.loads((cache_dir / "index.json").read_text())
    assert index["manifests"][0]["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    b = runner(base_store, tmp_path, "b")
    rb = build(b, ctx, cache_from=[f"type=local,src={cache_dir}"])
    assert runs(b) == [] and rb.manifest_digest == ra.manifest_digest


# ---------------------------------------------------------------------------- faults


def test_wrong_blob_is_refused_and_rebuilt(base_store, tmp_path):  # type: ignore[no-untyped-def]
    ctx = context(tmp_path)
    cache_dir = tmp_path / "ci-cache"
    a = runner(base_store, tmp_path, "a")
    ra = build(a, ctx, cache_to=[f"type=local,dest={cache_dir},mode=max"])
    # Tamper with the last RUN's layer (the biggest blob of the image's own layers).
    final = a.manifest_for(ra.manifest_digest)
    victim = final.layers[-1].digest
    blob = cache_dir / "blobs" / "sha256" / victim.split(":")[1]
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    b = runner(base_store, tmp_path, "b")
    rb = build(b, ctx, cache_from=[f"type=local,src={cache_dir}"])
    assert runs(b) == ["src-plain"]  # that step, and only it, rebuilt here
    assert rb.manifest_digest == ra.manifest_digest  # the same bytes, made locally
    warnings = [line for line in rb.stderr.splitlines() if line.startswith("WARNING:")]
    assert len(warnings) == 1 and "refused" in warnings[0] and victim in warnings[0]


def test_unreachable_and_unauthorized_refs_warn_once(registry, base_store, tmp_path):  # type: ignore[no-untyped-def]
    ctx = context(tmp_path)
    dead = f"127.0.0.1:{servers.free_port()}/slimage-test/cache:x"
    auth = servers.RegistryProc(
        tmp_path,
        auth={
            "htpasswd": {
                "realm": "slimage-test",
                "path": str(servers.htpasswd_file(tmp_path / "htpasswd")),
            }
        },
        name="basic",
    )
    try:
        locked = f"{auth.host}/slimage-test/cache:x"
        a = runner(base_store, tmp_path, "a")
        ra = build(
            a,
            ctx,
            cache_from=[f"type=registry,ref={dead}", f"type=registry,ref={locked}"],
            cache_to=[f"type=registry,ref={dead}"],
        )
    finally:
        auth.stop()
    assert runs(a) == ["dep", "src-plain"]
    warnings = [line for line in ra.stderr.splitlines() if line.startswith("WARNING:")]
    assert len(warnings) == 3, warnings
    assert sum(dead in w for w in warnings) == 2 and sum(locked in w for w in warnings) == 1
    assert "authentication required" in ra.stderr
    assert a.resolve("slimage-test/remote-cache:1") == ra.manifest_digest


def test_image_or_corrupt_manifest_is_ignored(registry, base_store, tmp_path):  # type: ignore[no-untyped-def]
    from slimage.transports.registry.push import push

    a = runner(base_store, tmp_path, "a")
    image_ref = f"{registry.host}/slimage-test/cache:an-image"
    push(a, BASE, image_ref)
    # A manifest with our config type whose config is not a cache document.
    bad_cfg = b'{"version": 1, "records": [{"key": "nope"}]}'
    from slimage.oci.digest import sha256_digest

    repo = "slimage-test/cache"
    d = sha256_digest(bad_cfg)
    start = urllib.request.Request(
        f"http://{registry.host}/v2/{repo}/blobs/uploads/", data=b"", method="POST"
    )
    with urllib.request.urlopen(start) as resp:  # noqa: S310 - loopback registry
        loc = resp.headers["Location"]
    loc = urllib.parse.urljoin(f"http://{registry.host}/", loc)
    sep = "&" if "?" in loc else "?"
    put = urllib.request.Request(
        f"{loc}{sep}digest={d}",
        data=bad_cfg,
        method="PUT",
        headers={"Content-Type": "application/octet-stream"},
    )
    urllib.request.urlopen(put).close()  # noqa: S310 - loopback registry
    man = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.slimage.build-cache.config.v1+json",
                "digest": d,
                "size": len(bad_cfg),
            },
            "layers": [a.manifest_for(a.resolve(BASE)).layers[0].to_dict()],
        }
    ).encode()
    req = urllib.request.Request(
        f"http://{registry.host}/v2/{repo}/manifests/corrupt",
        data=man,
        method="PUT",
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    urllib.request.urlopen(req).close()  # noqa: S310 - loopback registry
    ra = build(
        a,
        context(tmp_path),
        cache_from=[image_ref, f"type=registry,ref={registry.host}/{repo}:corrupt"],
    )
    assert runs(a) == ["dep", "src-plain"]
    assert "an image without a build cache" in ra.stderr
    assert "cache record 0 is malformed" in ra.stderr
    assert ra.remote_cached_steps == 0


def test_bad_spec_is_a_usage_error(base_store, tmp_path):  # type: ignore[no-untyped-def]
    from slimage.errors import UsageError

    a = runner(base_store, tmp_path, "a")
    for bad in ("type=s3,ref=x", "type=registry", "type=registry,ref=a/b:c,mode=huge"):
        with pytest.raises(UsageError, match="--cache-to"):
            build(a, context(tmp_path), cache_to=[bad])
    assert runs(a) == []


# ---------------------------------------------------------------------------- concurrency


def test_two_runners_export_at_once(registry, base_store, tmp_path):  # type: ignore[no-untyped-def]
    ref = f"{registry.host}/slimage-test/cache:shared"
    ctxs = [context(tmp_path, f"ctx{i}", src=f"runner {i}\n") for i in range(2)]
    stores = [runner(base_store, tmp_path, f"r{i}") for i in range(2)]
    results: list = [None, None]  # type: ignore[type-arg]
    errors: list[BaseException] = []

    def go(i: int) -> None:
        try:
            results[i] = build(
                stores[i], ctxs[i], cache_to=[f"type=registry,ref={ref},mode=max"], tags=[]
            )
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    cache = get_manifest(registry, "slimage-test/cache", "shared")
    assert all(blob_exists(registry, "slimage-test/cache", d["digest"]) for d in cache["layers"])
    # Whichever manifest won is complete: a third runner gets the winner's build without
    # a RUN, and the loser's with only its own last RUN (the shared prefix hits).
    c = runner(base_store, tmp_path, "c")
    for i, r in enumerate(results):
        rc = build(c, ctxs[i], cache_from=[f"type=registry,ref={ref}"], tags=[])
        assert rc.manifest_digest == r.manifest_digest
    assert runs(c) in (["src-plain"], ["src-plain"])
    assert len(runs(c)) == 1


# ---------------------------------------------------------------------------- push


def test_push_prints_digest_and_skips_present_blobs(registry, base_store, tmp_path):  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    a = runner(base_store, tmp_path, "a")
    ctx = context(tmp_path)
    name = f"{registry.host}/slimage-test/pushed:1"
    env = dict(servers.env_without_proxies(), SLIMAGE_HOME=str(a.root))
    env["SOURCE_DATE_EPOCH"] = str(EPOCH)
    cmd = [sys.executable, "-m", "slimage.cli.main", "build", "--push", "-t", name, str(ctx)]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    digest = a.resolve(name)
    assert res.stdout.strip() == f"{name}@{digest}"
    assert get_manifest(registry, "slimage-test/pushed", "1")["config"]["digest"]
    mark = registry.log_mark()
    other = f"{registry.host}/slimage-test/pushed:2"
    rb = build(a, ctx, tags=[other], outputs=["type=registry"])
    assert rb.outputs == [f"docker://{other}@{digest}"]
    # Second push: every blob was there already, so none was uploaded.
    assert "PUT /v2/slimage-test/pushed/blobs/uploads" not in registry.log()[mark:]


# ---------------------------------------------------------------------------- BuildKit


def test_buildkit_inline_cache_is_read_but_gives_no_hits(registry, tmp_path):  # type: ignore[no-untyped-def]
    """`--cache-from` an image BuildKit built with BUILDKIT_INLINE_CACHE=1: slimage reads
    its `moby.buildkit.cache.v0` records and says why none can be used (BuildKit keys are
    LLB op digests; see builder.remotecache), and the build goes on."""
    from tests.builder.conftest import load_from_docker
    from tests.support import testbed

    if not testbed.docker_ok() or not testbed.image_exists(testbed.DEBIAN_IMAGE):
        pytest.skip("needs the Docker engine and slimage-test/debian:bookworm")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        f"FROM {testbed.DEBIAN_IMAGE}\nWORKDIR /app\nCOPY a.txt ./\nRUN cat a.txt > b.txt\n"
    )
    (ctx / "a.txt").write_text("hi\n")
    ref = f"{registry.host}/slimage-test/buildkit-inline:1"
    testbed.build(ref, ctx, None, "--build-arg", "BUILDKIT_INLINE_CACHE=1")
    try:
        testbed.docker("push", "-q", ref, capture_output=True)
    finally:
        testbed.docker("rmi", ref, check=False, capture_output=True)
    from slimage.store.store import Store

    store = Store(tmp_path / "store")
    load_from_docker(store, testbed.DEBIAN_IMAGE)
    res = build(store, ctx, cache_from=[ref])
    assert res.remote_cached_steps == 0 and res.cached_steps == 0
    [warning] = [w for w in res.warnings if "BuildKit inline cache" in w]
    n = int(warning.split("): ", 1)[1].split(" records")[0])
    assert n >= 3 and "0 usable" in warning
