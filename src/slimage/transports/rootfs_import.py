"""`docker import`: a root filesystem tar (plain, gzip, zstd, xz, bzip2) becomes a
one-layer image, with Docker's history entry ("Imported from -") and `--change` lines.
"""

from __future__ import annotations

import json
import shlex
from typing import Any, BinaryIO

from slimage.errors import UsageError
from slimage.layers.compression import open_decompressed
from slimage.mutate import ImageAssembler, rfc3339
from slimage.oci.model import HistoryEntry, Platform
from slimage.store.images import IngestResult, all_or_nothing, store_layer_tar
from slimage.store.store import Store

CHANGE_VERBS = (
    "CMD",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "LABEL",
    "ONBUILD",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
)


def _exec_form(text: str) -> list[str]:
    text = text.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return ["/bin/sh", "-c", text]


def _pairs(text: str, verb: str) -> list[tuple[str, str]]:
    """`K=V K2="V 2"` or the legacy `K V with spaces` form."""
    words = shlex.split(text)
    if not words:
        raise UsageError(f"--change {verb}: needs an argument")
    if "=" not in words[0]:
        key, _, value = text.strip().partition(" ")
        return [(key, value.strip())]
    out = []
    for w in words:
        if "=" not in w:
            raise UsageError(f"--change {verb}: {w!r} is not KEY=VALUE")
        k, _, v = w.partition("=")
        out.append((k, v))
    return out


def apply_change(config: dict[str, Any], line: str) -> None:
    """Apply one Dockerfile-style `--change` line to the runtime config."""
    verb, _, rest = line.strip().partition(" ")
    verb = verb.upper()
    rest = rest.strip()
    if verb not in CHANGE_VERBS:
        raise UsageError(
            f"--change: {verb or line!r} is not supported (use one of {', '.join(CHANGE_VERBS)})"
        )
    if verb == "CMD":
        config["Cmd"] = _exec_form(rest)
    elif verb == "ENTRYPOINT":
        config["Entrypoint"] = _exec_form(rest)
    elif verb == "ENV":
        env = [e for e in config.get("Env") or []]
        for k, v in _pairs(rest, verb):
            env = [e for e in env if e.split("=", 1)[0] != k] + [f"{k}={v}"]
        config["Env"] = env
    elif verb == "LABEL":
        labels = dict(config.get("Labels") or {})
        labels.update(_pairs(rest, verb))
        config["Labels"] = labels
    elif verb == "EXPOSE":
        ports = dict(config.get("ExposedPorts") or {})
        for p in rest.split():
            ports[p if "/" in p else f"{p}/tcp"] = {}
        config["ExposedPorts"] = ports
    elif verb == "VOLUME":
        vols = dict(config.get("Volumes") or {})
        for v in _exec_form(rest) if rest.startswith("[") else rest.split():
            vols[v] = {}
        config["Volumes"] = vols
    elif verb == "USER":
        config["User"] = rest
    elif verb == "WORKDIR":
        config["WorkingDir"] = rest
    elif verb == "STOPSIGNAL":
        config["StopSignal"] = rest
    elif verb == "ONBUILD":
        config["OnBuild"] = [*(config.get("OnBuild") or []), rest]


def import_rootfs(
    store: Store,
    stream: BinaryIO,
    *,
    tags: list[str] | None = None,
    source_name: str = "-",
    changes: list[str] | None = None,
    message: str = "",
    platform: Platform | None = None,
    created: str | None = None,
) -> IngestResult:
    """Store a rootfs tar as a one-layer image, as `docker import` does."""
    asm = ImageAssembler(store, platform=platform)
    for line in changes or []:
        apply_change(asm.runtime, line)
    comment = message or f"Imported from {source_name}"
    when = created or rfc3339()
    tar, _kind = open_decompressed(stream, name=f"import {source_name}")
    with all_or_nothing(store):  # a failed import leaves no blob of its own behind
        info = store_layer_tar(store, tar, label=f"import {source_name}")
        asm.add_stored_layer(info, HistoryEntry(created=when, comment=comment))
        asm.data["comment"] = comment
        return asm.commit(tags=tags, created=when)
