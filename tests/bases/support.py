"""Shared helpers for the bases, compat and surface tests.

- Presets are built once per test session into one session store (a temp dir), from the
  real Debian mirror, with .debs cached in a persistent directory so reruns are fast.
- `LocalMirror` is a real signed APT repository served on 127.0.0.1: real .debs made by
  dpkg-deb, an InRelease signed by gpg with a throwaway key, checked by the real gpgv.
  It is how the tests cause faults Debian's mirror never shows (bad signature, wrong hash,
  truncated .deb, a dependency that does not exist).
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import http.server
import os
import shutil
import subprocess
import tempfile
import threading
import urllib.request
from pathlib import Path

import pytest

from tests.support import testbed

CACHE = testbed.CACHE / "bases"  # .debs and indexes, shared by every test run
DOCKER = testbed.DOCKER
MIRROR = "http://deb.debian.org/debian"


@functools.cache
def debian_reachable() -> bool:
    try:
        with urllib.request.urlopen(f"{MIRROR}/dists/bookworm/InRelease", timeout=10) as r:
            return r.status == 200
    except OSError:
        return False


def need_debian() -> None:
    if not debian_reachable():
        pytest.skip(f"needs the Debian mirror {MIRROR}")


@functools.cache
def session_store() -> Path:
    root = Path(tempfile.mkdtemp(prefix="slimage-bases-store-"))
    atexit.register(shutil.rmtree, root, True)
    return root


@functools.cache
def preset_image(
    preset: str, *, arch: str = "amd64", suite: str = "bookworm", debug: bool = False
) -> tuple[str, object]:
    """Build PRESET into the session store once; returns (tag, BaseBuildResult)."""
    need_debian()
    from slimage.bases.builder import BaseSpec, build, make_repository, plan
    from slimage.store.store import Store

    spec = BaseSpec(preset=preset, arch=arch, suite=suite, debug=debug)
    repo = make_repository(spec, CACHE)
    lock, _ = plan(spec, repo)
    tag = f"slimage-test/bases-{preset}{'-debug' if debug else ''}:{suite}-{arch}"
    result = build(lock, Store(session_store()), tags=[tag], cache_dir=CACHE)
    return tag, result


@functools.cache
def preset_lock(preset: str, arch: str = "amd64", suite: str = "bookworm"):  # type: ignore[no-untyped-def]
    need_debian()
    from slimage.bases.builder import BaseSpec, make_repository, plan

    spec = BaseSpec(preset=preset, arch=arch, suite=suite)
    return plan(spec, make_repository(spec, CACHE))


def open_store_image(tag: str):  # type: ignore[no-untyped-def]
    from slimage.store.images import open_image
    from slimage.store.store import Store

    return open_image(Store(session_store()), tag)


@functools.cache
def in_docker(tag: str) -> str:
    """Load a session-store image into the real engine (via slimage's engine sink)."""
    from slimage.transports.docker_engine import load_into_engine

    load_into_engine(open_store_image(tag), [tag])
    return tag


def docker(*args: str, check: bool = True, **kw):  # type: ignore[no-untyped-def]
    return testbed.docker(*args, check=check, **kw)


def image_files(image) -> dict[str, tuple]:  # type: ignore[no-untyped-def]
    """path -> (kind, mode, uid, gid, linkname, data-or-None) over all layers (last wins)."""
    from slimage.layers.tarscan import TarScanner

    out: dict[str, tuple] = {}
    for layer in image.layers:
        cur: list = []

        def on_entry(e, cur=cur):  # type: ignore[no-untyped-def]
            buf = bytearray()
            out[e.name] = (e.kind, e.mode, e.uid, e.gid, e.linkname, buf, e.mtime)
            return buf.extend if e.kind == "file" and e.size < (4 << 20) else None

        sc = TarScanner(on_entry)
        stream = layer.open_tar()
        while chunk := stream.read(1 << 20):
            sc.feed(chunk)
        sc.close()
    return out


# ---------------------------------------------------------------------------------------
# A real signed repository on loopback


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@functools.cache
def _server_root() -> tuple[Path, str]:
    root = Path(tempfile.mkdtemp(prefix="slimage-mirror-"))
    atexit.register(shutil.rmtree, root, True)
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    atexit.register(server.shutdown)
    return root, f"http://127.0.0.1:{server.server_address[1]}"


@functools.cache
def gpg_home(name: str) -> tuple[Path, Path]:
    """A throwaway signing key NAME: (GNUPGHOME, exported public keyring)."""
    if shutil.which("gpg") is None:
        pytest.skip("needs gpg to sign a test repository")
    home = Path(tempfile.mkdtemp(prefix=f"slimage-gpg-{name}-"))
    atexit.register(shutil.rmtree, home, True)
    os.chmod(home, 0o700)
    env = dict(os.environ, GNUPGHOME=str(home))
    subprocess.run(
        [
            "gpg",
            "--batch",
            "--passphrase",
            "",
            "--quick-gen-key",
            f"slimage {name} <{name}@test.invalid>",
            "ed25519",
            "sign",
            "never",
        ],
        check=True,
        capture_output=True,
        env=env,
    )
    keyring = home / "keyring.gpg"
    with open(keyring, "wb") as fh:
        subprocess.run(["gpg", "--export"], check=True, stdout=fh, env=env)
    return home, keyring


def make_deb(
    out_dir: Path,
    name: str,
    version: str,
    *,
    arch: str = "amd64",
    fields: dict[str, str] | None = None,
    files: dict[str, bytes] | None = None,
) -> Path:
    if shutil.which("dpkg-deb") is None:
        pytest.skip("needs dpkg-deb to make test packages")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        (root / "DEBIAN").mkdir(parents=True)
        control = [
            f"Package: {name}",
            f"Version: {version}",
            f"Architecture: {arch}",
            "Maintainer: slimage tests <t@test.invalid>",
            f"Description: test package {name}",
        ]
        for k, v in (fields or {}).items():
            control.append(f"{k}: {v}")
        (root / "DEBIAN" / "control").write_text("\n".join(control) + "\n")
        for path, data in (files or {"usr/share/doc/" + name + "/copyright": b"test\n"}).items():
            p = root / path
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)
        out = out_dir / f"{name}_{version}_{arch}.deb"
        subprocess.run(
            ["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(root), str(out)],
            check=True,
            capture_output=True,
        )
    return out


def host_ca_cert() -> bytes:
    certs = sorted(Path("/usr/share/ca-certificates/mozilla").glob("*.crt"))
    if certs:
        return certs[0].read_bytes()
    data = testbed.HOST_CA.read_bytes()
    start = data.index(b"-----BEGIN CERTIFICATE-----")
    end = data.index(b"-----END CERTIFICATE-----", start) + len(b"-----END CERTIFICATE-----")
    return data[start:end] + b"\n"


class LocalMirror:
    """One suite `testing`, component main, amd64, under its own URL path."""

    def __init__(self, name: str):
        root, base = _server_root()
        self.dir = root / name
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.pool = self.dir / "pool"
        self.pool.mkdir(parents=True)
        self.url = f"{base}/{name}"
        self.entries: list[str] = []
        self.home, self.keyring = gpg_home("good")
        # The static group every preset starts with, in miniature.
        self.add(
            "base-files",
            "1",
            fields={"Essential": "yes"},
            files={"etc/debian_version": b"12\n", "usr/share/man/man1/x.1.gz": b"man"},
        )
        self.add("netbase", "1", arch="all", files={"etc/protocols": b"ip 0 IP\n"})
        self.add(
            "tzdata",
            "1",
            arch="all",
            fields={"Depends": "debconf"},
            files={"usr/share/zoneinfo/UTC": b"TZif-test"},
        )
        self.add("media-types", "1", arch="all", files={"etc/mime.types": b"text/plain txt\n"})
        self.add(
            "ca-certificates",
            "1",
            arch="all",
            fields={"Depends": "openssl"},
            files={"usr/share/ca-certificates/mozilla/Test_Root.crt": host_ca_cert()},
        )

    def add(
        self,
        name: str,
        version: str,
        *,
        arch: str = "amd64",
        fields: dict[str, str] | None = None,
        files: dict[str, bytes] | None = None,
        mutate=None,
        listed_bytes: bytes | None = None,
    ) -> Path:  # type: ignore[no-untyped-def]
        """Add a package. MUTATE(bytes) changes the served file after it is listed (a lying
        mirror); LISTED_BYTES is what the index hashes instead of the real file."""
        deb = make_deb(self.pool, name, version, arch=arch, fields=fields, files=files)
        data = deb.read_bytes()
        if mutate is not None:
            data = mutate(data)
            deb.write_bytes(data)
        listed = listed_bytes if listed_bytes is not None else data
        stanza = [f"Package: {name}", f"Version: {version}", f"Architecture: {arch}"]
        for k, v in (fields or {}).items():
            stanza.append(f"{k}: {v}")
        stanza += [
            f"Filename: pool/{deb.name}",
            f"Size: {len(listed)}",
            f"SHA256: {hashlib.sha256(listed).hexdigest()}",
        ]
        self.entries.append("\n".join(stanza))
        return deb

    def publish(
        self,
        *,
        key: str = "good",
        tamper_packages: bool = False,
        tamper_release: bool = False,
        valid_until: str = "",
    ) -> None:
        dists = self.dir / "dists" / "testing"
        pdir = dists / "main" / "binary-amd64"
        pdir.mkdir(parents=True, exist_ok=True)
        packages = ("\n\n".join(self.entries) + "\n").encode()
        (pdir / "Packages").write_bytes(packages)
        release = (
            "Origin: slimage-test\nSuite: testing\nCodename: testing\nArchitectures: amd64\n"
            "Components: main\nDate: Fri, 27 Nov 2026 00:00:00 UTC\n"
            + (f"Valid-Until: {valid_until}\n" if valid_until else "")
            + "SHA256:\n"
            f" {hashlib.sha256(packages).hexdigest()} {len(packages)} main/binary-amd64/Packages\n"
        )
        (dists / "Release").write_text(release)
        home, _ = gpg_home(key)
        subprocess.run(
            [
                "gpg",
                "--batch",
                "--yes",
                "--pinentry-mode",
                "loopback",
                "--passphrase",
                "",
                "--clearsign",
                "-o",
                str(dists / "InRelease"),
                str(dists / "Release"),
            ],
            check=True,
            capture_output=True,
            env=dict(os.environ, GNUPGHOME=str(home)),
        )
        if tamper_release:
            signed = (
                (dists / "InRelease")
                .read_bytes()
                .replace(b"Origin: slimage-test", b"Origin: slimage-evil")
            )
            (dists / "InRelease").write_bytes(signed)
        if tamper_packages:
            (pdir / "Packages").write_bytes(packages.replace(b"Version: 1\n", b"Version: 9\n", 1))

    def spec(self, preset: str = "custom", **kw):  # type: ignore[no-untyped-def]
        from slimage.bases.builder import BaseSpec
        from slimage.bases.repository import Source

        return BaseSpec(
            preset=preset, sources=[Source(self.url, "testing")], keyring=str(self.keyring), **kw
        )


def derive_image(base_tag: str, entries: list[tuple], tag: str, *, user: str | None = None) -> str:
    """BASE_TAG plus one layer of ENTRIES (path, data|None, mode[, symlink target]) in the
    session store, made with slimage's own assembler."""
    import io
    import tarfile

    from slimage.mutate import ImageAssembler
    from slimage.oci.model import HistoryEntry
    from slimage.store.store import Store

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for item in entries:
            path, data, mode = item[0], item[1], item[2]
            info = tarfile.TarInfo(path)
            info.mode = mode
            if len(item) > 3 and isinstance(item[3], dict):
                info.pax_headers = item[3]  # e.g. {"SCHILY.xattr.security.capability": ...}
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            elif len(item) > 3:
                info.type, info.linkname = tarfile.SYMTYPE, item[3]
                tar.addfile(info)
            elif data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    store = Store(session_store())
    asm = ImageAssembler(store, open_store_image(base_tag))
    asm.add_layer(buf, HistoryEntry(created_by="test layer"))
    if user is not None:
        asm.runtime["User"] = user
    asm.commit(tags=[tag])
    return tag


def compile_c(tmp: Path, name: str, source: str, *args: str) -> bytes:
    """gcc SOURCE -> bytes of the output (skips when there is no compiler)."""
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc to make test ELF files")
    src = tmp / f"{name}.c"
    src.write_text(source)
    out = tmp / name
    subprocess.run(
        ["gcc", "-O1", "-o", str(out), str(src), *args], check=True, capture_output=True, cwd=tmp
    )
    return out.read_bytes()
