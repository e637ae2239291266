"""The registry transport: pull, push and copy over the OCI distribution API.

    pull(store, "127.0.0.1:5000/team/app:1.2", platform=Platform.parse("linux/arm64"))
    push(store, "127.0.0.1:5000/team/app:1.2")
    push_image(open_source("oci:DIR:v1"), "127.0.0.1:5000/team/app:1.2")   # any Image
    copy("docker://SRC", "oci:DIR")
    pull_if_missing(store, "debian:bookworm")       # for FROM and image-taking commands
    open_docker_ref("docker://host/repo:tag")      # an Image, for sources.open_source

Every call returns a `TransferReport` (per blob: digest, size, action, bytes on the wire).
Names are imported on first use, so `slimage push` does not pay for what `copy` needs.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Credentials": "auth",
    "RegistryClient": "client",
    "CopyReport": "copy",
    "copy": "copy",
    "RemoteRef": "names",
    "index_image_layers": "pull",
    "open_docker_ref": "pull",
    "pull": "pull",
    "pull_if_missing": "pull",
    "push": "push",
    "push_image": "push",
    "BlobReport": "report",
    "ProgressSink": "report",
    "TransferReport": "report",
    "login": "login",
    "logout": "login",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
