"""`compat`: ELF facts (checked against pyelftools) and per-file verdicts on real bases,
with the risky verdicts confirmed by running the binaries in the real engine."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from slimage.analysis.compat import (
    LOADS,
    MISSING_INTERPRETER,
    MISSING_LIBRARY,
    VERSION_TOO_NEW,
    WRONG_ARCH,
    ElfError,
    check_compat,
    parse_elf,
    parse_elf_pyelftools,
)
from slimage.layers.tarscan import TarScanner
from tests.bases import support


def _elf_blobs(image) -> dict[str, bytes]:  # type: ignore[no-untyped-def]
    out: dict[str, bytes] = {}
    for layer in image.layers:

        def on_entry(e, out=out):  # type: ignore[no-untyped-def]
            if e.kind != "file" or e.size < 52:
                return None
            buf = bytearray()
            out[e.name] = buf  # type: ignore[assignment]
            return buf.extend

        sc = TarScanner(on_entry)
        stream = layer.open_tar()
        while chunk := stream.read(1 << 20):
            sc.feed(chunk)
        sc.close()
    return {k: bytes(v) for k, v in out.items() if bytes(v[:4]) == b"\x7fELF"}


def _same(a, b) -> bool:  # type: ignore[no-untyped-def]
    keys = (
        "elf_class",
        "machine",
        "elf_type",
        "interp",
        "needed",
        "rpath",
        "runpath",
        "soname",
        "verneed",
        "verdef",
        "flags_1",
    )
    return all(getattr(a, k) == getattr(b, k) for k in keys)


def test_fast_reader_agrees_with_pyelftools_on_real_files() -> None:
    tag, _ = support.preset_image("python3")
    blobs = _elf_blobs(support.open_store_image(tag))
    host = [p for p in glob.glob("/usr/lib/x86_64-linux-gnu/*.so*")[:150] if os.path.isfile(p)]
    for p in host:
        data = Path(p).read_bytes()
        if data[:4] == b"\x7fELF":
            blobs["host:" + p] = data
    assert len(blobs) > 100
    differ = []
    for path, data in blobs.items():
        ours = parse_elf(data)
        ref = parse_elf_pyelftools(data)
        if not _same(ours, ref):
            differ.append(path)
    assert differ == []
    assert any(parse_elf(d).verneed.get("libc.so.6") for d in blobs.values())
    libc = next(
        d for p, d in blobs.items() if p.endswith("libc.so.6") and not p.startswith("host:")
    )
    assert "GLIBC_2.34" in parse_elf(libc).verdef


def test_garbage_is_not_an_elf() -> None:
    with pytest.raises(ElfError):
        parse_elf(b"\x7fELF" + b"\xff" * 60)


def test_glibc_binaries_on_musl_lack_the_interpreter() -> None:
    node, _ = support.preset_image("nodejs")
    musl, _ = support.preset_image("musl")
    rep = check_compat(
        support.open_store_image(node),
        support.open_store_image(musl),
        paths=["/usr/bin", "/usr/lib/x86_64-linux-gnu/libnode.so.108"],
    )
    by = {v.path: v for v in rep.files}
    assert by["usr/bin/node"].verdict == MISSING_INTERPRETER
    lib = by["usr/lib/x86_64-linux-gnu/libnode.so.108"]
    assert lib.verdict == MISSING_LIBRARY and "libc.so.6" in lib.missing
    assert rep.compatible is False and rep.target_libc == "musl"


def test_trixie_libraries_need_a_newer_glibc_than_bookworm() -> None:
    """Real symbol-version failures: trixie's libssl needs GLIBC_2.38, bookworm has 2.36."""
    trixie, _ = support.preset_image("base", suite="trixie")
    bookworm, _ = support.preset_image("base")
    rep = check_compat(
        support.open_store_image(trixie),
        support.open_store_image(bookworm),
        paths=["/usr/lib/x86_64-linux-gnu"],
    )
    too_new = [v for v in rep.files if v.verdict == VERSION_TOO_NEW]
    assert too_new, rep.counts
    assert any("GLIBC_2.3" in x for v in too_new for x in v.versions)
    assert "glibc 2.36" in too_new[0].detail
    same = check_compat(support.open_store_image(bookworm), support.open_store_image(bookworm))
    assert same.compatible and same.counts == {LOADS: same.elf_files}


def test_arm64_files_on_an_amd64_base_are_the_wrong_architecture() -> None:
    arm, _ = support.preset_image("base", arch="arm64")
    amd, _ = support.preset_image("base")
    rep = check_compat(
        support.open_store_image(arm), support.open_store_image(amd), paths=["/usr/lib"]
    )
    assert rep.files and all(v.verdict == WRONG_ARCH for v in rep.files)
    assert "arm64" in rep.files[0].detail and "amd64" in rep.files[0].detail


LIB_V1 = "int hello(void) { return 1; }\n"
APP = '#include <stdio.h>\nint hello(void);\nint main(void) { printf("hello %d\\n", hello()); return 0; }\n'


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """libhello with versioned symbols (HELLO_1 only, then HELLO_1+HELLO_2), an app that
    needs HELLO_2, and one that finds libhello through RUNPATH $ORIGIN/../lib."""
    tmp = tmp_path_factory.mktemp("elf")
    (tmp / "v1.map").write_text("HELLO_1 { global: hello; local: *; };\n")
    (tmp / "v2.map").write_text("HELLO_1 { local: *; };\nHELLO_2 { global: hello; } HELLO_1;\n")
    out = {
        "lib_v1": support.compile_c(
            tmp,
            "libhello.so.1",
            LIB_V1,
            "-shared",
            "-fPIC",
            "-Wl,-soname,libhello.so.1",
            "-Wl,--version-script=v1.map",
        ),
        "lib_v2": support.compile_c(
            tmp,
            "libhello2.so.1",
            LIB_V1,
            "-shared",
            "-fPIC",
            "-Wl,-soname,libhello.so.1",
            "-Wl,--version-script=v2.map",
        ),
    }
    (tmp / "libhello.so.1").write_bytes(out["lib_v2"])
    (tmp / "libhello.so").symlink_to("libhello.so.1")
    out["app_v2"] = support.compile_c(tmp, "app", APP, "-L.", "-lhello")
    out["app_origin"] = support.compile_c(
        tmp,
        "app_origin",
        APP,
        "-L.",
        "-lhello",
        "-Wl,-rpath,$ORIGIN/../lib",
        "-Wl,--enable-new-dtags",
    )
    out["addon"] = support.compile_c(
        tmp,
        "addon.node",
        '#include <stdio.h>\nint init(void) { return puts("addon"); }\n',
        "-shared",
        "-fPIC",
        "-Wl,--no-as-needed",
        "-lstdc++",
    )
    return out


@pytest.mark.docker
def test_version_too_new_and_origin_runpath_match_the_engine(
    built: dict[str, bytes], docker_engine: str
) -> None:
    node, _ = support.preset_image("nodejs")
    lib_dir = "usr/lib/x86_64-linux-gnu"
    # The base holds libhello v1 (HELLO_1 only); the app needs HELLO_2.
    base = support.derive_image(
        node,
        [(f"{lib_dir}/libhello.so.1", built["lib_v1"], 0o644)],
        "slimage-test/bases-hello-v1:latest",
    )
    app = support.derive_image(
        base,
        [
            ("opt/app", None, 0o755),
            ("opt/app/bin", None, 0o755),
            ("opt/app/lib", None, 0o755),
            ("opt/app/bin/needs-v2", built["app_v2"], 0o755),
            ("opt/app/bin/origin", built["app_origin"], 0o755),
            ("opt/app/lib/libhello.so.1", built["lib_v2"], 0o644),
        ],
        "slimage-test/bases-hello-app:latest",
    )
    rep = check_compat(
        support.open_store_image(app), support.open_store_image(base), paths=["/opt/app"]
    )
    by = {v.path: v for v in rep.files}
    assert by["opt/app/bin/needs-v2"].verdict == VERSION_TOO_NEW
    assert by["opt/app/bin/needs-v2"].versions == ["HELLO_2 from libhello.so.1"]
    assert by["opt/app/bin/origin"].verdict == LOADS  # $ORIGIN/../lib/libhello.so.1 has HELLO_2
    assert by["opt/app/lib/libhello.so.1"].verdict == LOADS
    # Without the app's own lib directory, the $ORIGIN binary falls back to the base's v1.
    bare = support.derive_image(
        base,
        [
            ("opt/app", None, 0o755),
            ("opt/app/bin", None, 0o755),
            ("opt/app/bin/origin", built["app_origin"], 0o755),
        ],
        "slimage-test/bases-hello-bare:latest",
    )
    rep2 = check_compat(
        support.open_store_image(bare), support.open_store_image(base), paths=["/opt/app"]
    )
    assert rep2.files[0].verdict == VERSION_TOO_NEW
    no_lib = check_compat(
        support.open_store_image(bare), support.open_store_image(node), paths=["/opt/app"]
    )
    assert no_lib.files[0].verdict == MISSING_LIBRARY and no_lib.files[0].missing == [
        "libhello.so.1"
    ]

    # What the real loader says.
    support.in_docker(app)
    support.in_docker(bare)

    def run(image: str, exe: str) -> subprocess.CompletedProcess:
        return support.docker(
            "run",
            "--rm",
            "--network",
            "host",
            "--entrypoint",
            exe,
            image,
            check=False,
            capture_output=True,
            text=True,
        )

    v2 = run(app, "/opt/app/bin/needs-v2")
    assert v2.returncode != 0 and "HELLO_2' not found" in v2.stderr
    ok = run(app, "/opt/app/bin/origin")
    assert ok.returncode == 0 and ok.stdout == "hello 1\n"
    fallback = run(bare, "/opt/app/bin/origin")
    assert fallback.returncode != 0 and "HELLO_2' not found" in fallback.stderr


def test_addons_and_python_extensions_are_called_out(built: dict[str, bytes]) -> None:
    musl, _ = support.preset_image("musl")
    site = "usr/lib/python3/dist-packages"
    so = "fakepkg/_speedups.cpython-311-x86_64-linux-gnu.so"
    wheel = b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: false\nTag: cp311-cp311-manylinux_2_17_x86_64\nTag: cp311-cp311-manylinux2014_x86_64\n"
    record = f"fakepkg/__init__.py,,\n{so},,\nfakepkg-1.0.dist-info/WHEEL,,\n".encode()
    app = support.derive_image(
        musl,
        [
            ("app/node_modules/fast-thing/build/Release/addon.node", built["addon"], 0o755),
            (f"{site}/fakepkg/_speedups.cpython-311-x86_64-linux-gnu.so", built["addon"], 0o644),
            (f"{site}/fakepkg-1.0.dist-info/WHEEL", wheel, 0o644),
            (f"{site}/fakepkg-1.0.dist-info/RECORD", record, 0o644),
        ],
        "slimage-test/bases-addons:latest",
    )
    rep = check_compat(
        support.open_store_image(app),
        support.open_store_image(musl),
        paths=["/app", "/usr/lib/python3"],
    )
    by = {v.path: v for v in rep.files}
    addon = by["app/node_modules/fast-thing/build/Release/addon.node"]
    assert addon.kind == "node-addon" and "fast-thing" in addon.note
    assert addon.verdict == MISSING_LIBRARY and "libstdc++.so.6" in addon.missing
    ext = by[f"{site}/{so}"]
    assert ext.kind == "python-extension"
    assert (
        "fakepkg-1.0" in ext.note
        and "manylinux_2_17_x86_64" in ext.note
        and "musllinux" in ext.note
    )


@pytest.mark.docker
def test_ld_so_conf_counts_only_with_a_cache_as_for_the_real_loader(
    built: dict[str, bytes], tmp_path: Path, docker_engine: str
) -> None:
    """glibc's ld.so never reads ld.so.conf, only the cache ldconfig makes from it: a
    directory listed there but absent from a cache is not searched. compat knows this."""
    import shutil

    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    if not Path(ldconfig).exists():
        pytest.skip("needs ldconfig to make an ld.so.cache")
    root = tmp_path / "root"
    (root / "etc/ld.so.conf.d").mkdir(parents=True)
    (root / "opt/lib").mkdir(parents=True)
    (root / "opt/lib/libhello.so.1").write_bytes(built["lib_v2"])
    (root / "etc/ld.so.conf").write_text("include /etc/ld.so.conf.d/*.conf\n")
    (root / "etc/ld.so.conf.d/opt.conf").write_text("/opt/lib\n")
    subprocess.run([ldconfig, "-r", str(root)], check=True, capture_output=True)
    node, _ = support.preset_image("nodejs")
    files = [
        ("opt/lib", None, 0o755),
        ("opt/lib/libhello.so.1", built["lib_v2"], 0o644),
        ("etc/ld.so.conf", (root / "etc/ld.so.conf").read_bytes(), 0o644),
        ("etc/ld.so.conf.d", None, 0o755),
        ("etc/ld.so.conf.d/opt.conf", (root / "etc/ld.so.conf.d/opt.conf").read_bytes(), 0o644),
        ("usr/local/bin/needs-v2", built["app_v2"], 0o755),
    ]
    no_cache = support.derive_image(node, files, "slimage-test/bases-ldconf-nocache:latest")
    cached = support.derive_image(
        no_cache,
        [("etc/ld.so.cache", (root / "etc/ld.so.cache").read_bytes(), 0o644)],
        "slimage-test/bases-ldconf-cache:latest",
    )
    verdicts = {}
    for tag in (no_cache, cached):
        img = support.open_store_image(tag)
        [v] = check_compat(img, support.open_store_image(tag), paths=["/usr/local/bin"]).files
        verdicts[tag] = v.verdict
        support.in_docker(tag)
    assert verdicts == {no_cache: MISSING_LIBRARY, cached: LOADS}
    bad = support.docker(
        "run",
        "--rm",
        "--network",
        "host",
        "--entrypoint",
        "/usr/local/bin/needs-v2",
        no_cache,
        check=False,
        capture_output=True,
        text=True,
    )
    good = support.docker(
        "run",
        "--rm",
        "--network",
        "host",
        "--entrypoint",
        "/usr/local/bin/needs-v2",
        cached,
        check=False,
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "libhello.so.1: cannot open shared object file" in bad.stderr
    assert good.returncode == 0 and good.stdout == "hello 1\n"


def _musl_gcc_specs(tmp: Path) -> Path:
    """Debian's musl-dev and musl-tools, fetched and verified by slimage's own client,
    unpacked into TMP: a musl-gcc specs file pointing there."""
    support.need_debian()
    from slimage.bases.builder import BaseSpec, fetch_debs, make_repository, plan
    from slimage.bases.cache import DebCache
    from slimage.bases.debfile import DebFile

    spec = BaseSpec(
        preset="custom", packages=["musl-dev", "musl-tools"], exclude=["gcc-x86-64-linux-gnu"]
    )
    lock, _ = plan(spec, make_repository(spec, support.CACHE))
    wanted = [p for p in lock.packages if p.name in ("musl", "musl-dev", "musl-tools")]
    lock.packages = wanted
    debs = fetch_debs(lock, DebCache(support.CACHE))
    root = tmp / "musl"
    for pkg in wanted:
        with DebFile(debs[pkg.sha256]) as deb:
            for info, data in deb.data_entries():
                dest = root / info.name.lstrip("./")
                if info.isdir():
                    dest.mkdir(parents=True, exist_ok=True)
                elif data is not None:
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.write_bytes(data.read())
    libdir = root / "usr/lib/x86_64-linux-musl"
    specs = (libdir / "musl-gcc.specs").read_text()
    specs = specs.replace("/usr/lib/x86_64-linux-musl", str(libdir)).replace(
        "/usr/include/x86_64-linux-musl", str(root / "usr/include/x86_64-linux-musl")
    )
    out = tmp / "musl-gcc.specs"
    out.write_text(specs)
    return out


@pytest.mark.docker
def test_musl_binary_runs_on_musl_and_not_on_glibc(tmp_path: Path, docker_engine: str) -> None:
    specs = _musl_gcc_specs(tmp_path)
    exe = support.compile_c(
        tmp_path,
        "hello-musl",
        '#include <stdio.h>\nint main(void) { puts("musl ok"); return 0; }\n',
        "-specs",
        str(specs),
    )
    assert parse_elf(exe).interp == "/lib/ld-musl-x86_64.so.1"
    musl, _ = support.preset_image("musl")
    node, _ = support.preset_image("nodejs")
    on_musl = support.derive_image(
        musl, [("usr/local/bin/hello-musl", exe, 0o755)], "slimage-test/bases-musl-bin-musl:latest"
    )
    on_glibc = support.derive_image(
        node, [("usr/local/bin/hello-musl", exe, 0o755)], "slimage-test/bases-musl-bin-glibc:latest"
    )
    [ok] = check_compat(
        support.open_store_image(on_musl), support.open_store_image(musl), paths=["/usr/local/bin"]
    ).files
    [bad] = check_compat(
        support.open_store_image(on_glibc), support.open_store_image(node), paths=["/usr/local/bin"]
    ).files
    assert ok.verdict == LOADS
    assert (
        bad.verdict == MISSING_INTERPRETER and "musl loader /lib/ld-musl-x86_64.so.1" in bad.detail
    )
    for tag in (on_musl, on_glibc):
        support.in_docker(tag)
    r1 = support.docker(
        "run",
        "--rm",
        "--network",
        "host",
        "--entrypoint",
        "/usr/local/bin/hello-musl",
        on_musl,
        check=False,
        capture_output=True,
        text=True,
    )
    r2 = support.docker(
        "run",
        "--rm",
        "--network",
        "host",
        "--entrypoint",
        "/usr/local/bin/hello-musl",
        on_glibc,
        check=False,
        capture_output=True,
        text=True,
    )
    assert r1.returncode == 0 and r1.stdout == "musl ok\n"
    assert r2.returncode != 0 and "no such file or directory" in r2.stderr


@pytest.mark.docker
def test_static_pie_is_static_and_really_runs_on_musl(tmp_path: Path, docker_engine: str) -> None:
    exe = support.compile_c(
        tmp_path,
        "hello-static",
        '#include <stdio.h>\nint main(void) { puts("static ok"); return 0; }\n',
        "-static-pie",
    )
    musl, _ = support.preset_image("musl")
    img = support.derive_image(
        musl, [("usr/local/bin/hello-static", exe, 0o755)], "slimage-test/bases-static-pie:latest"
    )
    rep = check_compat(
        support.open_store_image(img), support.open_store_image(musl), paths=["/usr/local/bin"]
    )
    [v] = rep.files
    assert v.kind == "static" and v.verdict == LOADS and rep.compatible
    support.in_docker(img)
    r = support.docker(
        "run",
        "--rm",
        "--network",
        "host",
        img,
        "/usr/local/bin/hello-static",
        capture_output=True,
        text=True,
    )
    assert r.stdout == "static ok\n"


def test_cli_json_has_compatible_and_files(tmp_path: Path) -> None:
    node, _ = support.preset_image("nodejs")
    musl, _ = support.preset_image("musl")
    env = dict(os.environ, SLIMAGE_HOME=str(support.session_store()))
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "slimage.cli.main",
            "compat",
            node,
            "--against",
            musl,
            "--path",
            "/usr/bin/node",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r.returncode == 1, r.stderr
    data = json.loads(r.stdout)
    assert data["compatible"] is False
    assert (
        data["files"][0]["path"] == "usr/bin/node"
        and data["files"][0]["verdict"] == MISSING_INTERPRETER
    )
    r2 = subprocess.run(
        [sys.executable, "-m", "slimage.cli.main", "compat", node, "--against", node],
        capture_output=True,
        text=True,
        env=env,
    )
    assert r2.returncode == 0 and "compatible;" in r2.stdout
    r3 = subprocess.run(
        [sys.executable, "-m", "slimage.cli.main", "compat", "no/such:image", "--against", node],
        capture_output=True,
        text=True,
        env=env,
    )
    assert (
        r3.returncode != 0
        and len(r3.stderr.strip().splitlines()) == 1
        and "Traceback" not in r3.stderr
    )
