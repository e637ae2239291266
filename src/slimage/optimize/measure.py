"""Measuring a variant: one pass over its layers, and one probed run.

`read_files` reads an image once (tree, ELF facts, the small files surface, appfiles and
compat ask for); `measure` turns that into the row's figures. `probe_run` starts the
image under slimage's runtime (runc, host network), waits for its ports, sends the probes
minify uses (`slimage.minify.probe`), and always removes the container again.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slimage.analysis.compat import Checker, ImageFiles, TargetSystem, read_image
from slimage.analysis.surface import _want as surface_want
from slimage.analysis.surface import surface_of
from slimage.image import Image
from slimage.minify.probe import (
    ExecProbe,
    HttpProbe,
    ProbeResult,
    exec_result,
    port_answers,
    run_http,
    wait_for_port,
)
from slimage.optimize.appfiles import want_contents
from slimage.store.store import Store


@dataclass
class LayerPart:
    size: int
    created_by: str


@dataclass
class Measures:
    size: int = 0
    layers: list[LayerPart] = field(default_factory=list)
    files: int = 0
    shells: list[str] = field(default_factory=list)
    package_managers: list[str] = field(default_factory=list)
    setuid: list[str] = field(default_factory=list)
    default_user: str = "root"
    compat: str = ""  # "ok", or the first reason a needed ELF file would not load
    compat_ok: bool = True
    largest_dirs: list[tuple[str, int]] = field(default_factory=list)
    base_layers: int = 0  # the bottom layers that came from the base image


@dataclass
class RunOutcome:
    ok: bool
    results: list[ProbeResult] = field(default_factory=list)
    first_answer: float | None = None  # seconds from `run` to the first answer
    error: str = ""


def _want(path: str, size: int) -> bool:
    return (
        surface_want(path, size)
        or want_contents(path, size)
        or path.startswith(("etc/ld.so.conf", "etc/ld-musl-", "etc/group"))
    )


def read_files(image: Image) -> ImageFiles:
    return read_image(image, elf=lambda p: True, want=_want, want_limit=256 << 10)


def largest_dirs(files: ImageFiles, n: int = 8, depth: int = 3) -> list[tuple[str, int]]:
    """The directories (to DEPTH levels) holding the most bytes; a parent is listed only
    when its bytes are not mostly in one listed child."""
    sizes: dict[str, int] = {}
    for path, node in files.tree.walk():
        if node.kind != "file":
            continue
        parts = path.split("/")[:-1]
        for i in range(1, min(len(parts), depth) + 1):
            d = "/" + "/".join(parts[:i])
            sizes[d] = sizes.get(d, 0) + node.size
    ranked = sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))
    out: list[tuple[str, int]] = []
    for d, size in ranked:
        if any(c.startswith(d + "/") and cs >= 0.8 * size for c, cs in out):
            continue
        out = [(c, cs) for c, cs in out if not (d.startswith(c + "/") and size >= 0.8 * cs)]
        out.append((d, size))
        if len(out) >= n:
            break
    return sorted(out, key=lambda kv: -kv[1])


def measure(
    store: Store, image: Image, files: ImageFiles, needed: list[str], name: str
) -> Measures:
    """The row's figures for IMAGE. NEEDED: the ELF files (paths without /) the app runs,
    whose loading compat predicts on the image itself."""
    m = Measures()
    for i, layer in enumerate(image.layers):
        info = store.layer_info(layer.diff_id)
        size = info.size if info is not None else 0
        m.size += size
        hist = [h for h in image.config.history if not h.empty_layer]
        created = hist[i].created_by if i < len(hist) else ""
        m.layers.append(LayerPart(size, created))
    surf = surface_of(files, name)
    m.files = surf.files
    m.shells = surf.shells
    m.package_managers = sorted(surf.package_managers)
    m.setuid = surf.setuid
    m.default_user = surf.default_user
    checker = Checker(files, TargetSystem.from_files(files))
    bad = []
    for path in needed:
        elf = files.elves.get(path)
        if elf is None:
            continue
        v = checker.check(path, elf)
        if not v.loads:
            bad.append(f"/{path}: {v.verdict}: {v.detail}")
    m.compat_ok = not bad
    m.compat = "ok" if not bad else bad[0] + (f" (+{len(bad) - 1} more)" if len(bad) > 1 else "")
    m.largest_dirs = largest_dirs(files)
    return m


# --------------------------------------------------------------------------- probed run


def _exec_capture(store: Store, cid: str, argv: list[str], timeout: float) -> tuple[int, bytes]:
    """`runc exec` in the container, its output captured (for the body digest)."""
    from slimage.runtime import spec as ocispec
    from slimage.runtime.containers import Containers
    from slimage.runtime.ocirun import OciRuntime
    from slimage.runtime.process import check_command
    from slimage.runtime.users import resolve_user

    cs = Containers(store, reap=False)
    rec = cs.get(cid)
    rootfs = cs.dir / rec.id / "rootfs"
    check_command(rootfs, argv, rec.env, rec.name)
    u = resolve_user(rootfs, rec.user)
    process = {
        "terminal": False,
        "user": {"uid": u.uid, "gid": u.gid},
        "args": argv,
        "env": rec.env
        + ([] if any(e.startswith("HOME=") for e in rec.env) else [f"HOME={u.home}"]),
        "cwd": rec.workdir,
        "capabilities": {
            "bounding": ocispec.DEFAULT_CAPS,
            "effective": ocispec.DEFAULT_CAPS if u.uid == 0 else [],
            "permitted": ocispec.DEFAULT_CAPS if u.uid == 0 else [],
        },
    }
    rt = OciRuntime(rec.runtime)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(process, fh)
    try:
        res = subprocess.run(
            rt._cmd("exec", "--process", fh.name, rec.id),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout,
        )
        return res.returncode, res.stdout
    except subprocess.TimeoutExpired:
        return 124, b""
    finally:
        os.unlink(fh.name)


def _log_tail(store: Store, cid: str, n: int = 3) -> str:
    from slimage.runtime.containers import Containers

    try:
        text = Containers(store, reap=False).log_path(cid).read_text(errors="replace")
    except (OSError, Exception):
        return ""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-n:])


def probe_run(
    store: Store,
    ref: str,
    probes: list[HttpProbe | ExecProbe],
    *,
    timeout: float,
    runtime: str | None = None,
) -> RunOutcome:
    """Run REF, probe it, stop and remove it. Never raises for what the app does (that is
    the outcome); the container is removed on every exit, Ctrl-C included."""
    from slimage.runtime.containers import Containers, RunOptions

    ports = sorted({p.port for p in probes if isinstance(p, HttpProbe)})
    for port in ports:
        if port_answers(port):
            from slimage.errors import SlimageError

            raise SlimageError(
                f"port {port}/tcp already answers on 127.0.0.1 before the variant started; "
                "stop what listens there (the probes would reach it instead)"
            )
    cs = Containers(store)
    name = f"slimage-optimize-{secrets.token_hex(4)}"
    t0 = time.monotonic()
    rec = None
    try:
        rec, _ = cs.run(RunOptions(image=ref, name=name, detach=True, runtime=runtime))

        def alive() -> bool:
            return cs.status(rec) == "running"

        deadline = t0 + timeout
        first: float | None = None
        for port in ports:
            if not wait_for_port(port, deadline, alive):
                tail = _log_tail(store, rec.id)
                if not alive():
                    return RunOutcome(
                        False,
                        error=f"exited before port {port} answered" + (f": {tail}" if tail else ""),
                    )
                return RunOutcome(False, error=f"port {port} never answered within {timeout:g}s")
        results: list[ProbeResult] = []
        for probe in probes:
            if isinstance(probe, HttpProbe):
                res = run_http(probe, timeout=max(1.0, deadline - time.monotonic()))
            else:
                t1 = time.monotonic()
                rc, out = _exec_capture(
                    store, rec.id, list(probe.argv), max(1.0, deadline - time.monotonic())
                )
                res = exec_result(probe, rc, out, time.monotonic() - t1)
            if first is None and res.status is not None:
                first = round(time.monotonic() - t0, 3)
            results.append(res)
        if not probes:
            time.sleep(1.0)
            if not alive():
                tail = _log_tail(store, rec.id)
                return RunOutcome(False, error="exited within 1s" + (f": {tail}" if tail else ""))
        failed = [r for r in results if not r.ok]
        err = "; ".join(f"{r.name}: {r.error}" for r in failed)
        return RunOutcome(not failed, results, first, err)
    except Exception as exc:  # a container that cannot even start is this row's failure
        from slimage.errors import SlimageError

        if not isinstance(exc, SlimageError):
            raise
        return RunOutcome(False, error=str(exc))
    finally:
        # By name when `run` never returned its record: a Ctrl-C that lands between the
        # container's start and the assignment above left it running and mounted.
        with contextlib.suppress(Exception):
            cs.remove(rec.id if rec is not None else name, force=True)


def compare(base: list[ProbeResult], got: list[ProbeResult]) -> str:
    """Why GOT's answers differ from BASE's (as-written's), or ''."""
    for a, b in zip(base, got, strict=False):
        if a.status != b.status:
            return f"{b.name} answered {b.status} (as-written: {a.status})"
        if a.body_sha256 != b.body_sha256:
            return (
                f"{b.name}: body differs from as-written's ({b.body_bytes} vs {a.body_bytes} bytes)"
            )
    if len(base) != len(got):
        return "probes did not all run"
    return ""


# --------------------------------------------------------------------------- cache
# An image is content-addressed: what one pass over it finds (measures, the app's files)
# is a function of its ID. A warm `optimize` (nothing rebuilt) then reads no layer again.
CACHE_VERSION = 1


def _cache_path(store: Store, image_id: str) -> Path:
    return store.root / "optimize-cache" / f"v{CACHE_VERSION}-{image_id.split(':')[-1]}.json"


def cache_get(store: Store, image_id: str, key: str) -> Any:
    try:
        data = json.loads(_cache_path(store, image_id).read_text())
    except (OSError, ValueError):
        return None
    return data.get(key) if isinstance(data, dict) else None


def cache_put(store: Store, image_id: str, key: str, value: Any) -> None:
    from slimage.streams import atomic_write

    path = _cache_path(store, image_id)
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            data = {}
    except (OSError, ValueError):
        data = {}
    data[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(data).encode())


def measures_from(data: dict) -> Measures:
    m = Measures(**{k: v for k, v in data.items() if k not in ("layers", "largest_dirs")})
    m.layers = [LayerPart(**p) for p in data.get("layers", [])]
    m.largest_dirs = [(d, s) for d, s in data.get("largest_dirs", [])]
    return m
