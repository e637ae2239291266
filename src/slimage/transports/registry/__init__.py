"""The registry transport: pull, push and copy over the OCI distribution API.

    pull(store, "127.0.0.1:5000/team/app:1.2", platform=Platform.parse("linux/arm64"))
    push(store, "127.0.0.1:5000/team/app:1.2")
    copy("docker://SRC", "oci:DIR")
    pull_if_missing(store, "debian:bookworm")       # for FROM and image-taking commands
    open_docker_ref("docker://host/repo:tag")      # an Image, for sources.open_source

Every call returns a `TransferReport` (per blob: digest, size, action, bytes on the wire).
"""

from slimage.transports.registry.auth import Credentials
from slimage.transports.registry.client import RegistryClient
from slimage.transports.registry.copy import CopyReport, copy
from slimage.transports.registry.pull import (
    RemoteRef,
    index_image_layers,
    open_docker_ref,
    pull,
    pull_if_missing,
)
from slimage.transports.registry.push import push
from slimage.transports.registry.report import BlobReport, ProgressSink, TransferReport

__all__ = [
    "BlobReport",
    "CopyReport",
    "Credentials",
    "ProgressSink",
    "RegistryClient",
    "RemoteRef",
    "TransferReport",
    "copy",
    "index_image_layers",
    "open_docker_ref",
    "pull",
    "pull_if_missing",
    "push",
]
