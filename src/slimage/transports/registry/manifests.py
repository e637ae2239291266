"""Fetching and checking manifests: Accept negotiation, size cap, digest, media type.

A manifest names everything else by digest, so it is the one document whose own digest
must be checked against something the user or the registry committed to: the digest in
the reference, or the registry's `Docker-Content-Digest`. Anything odd (schema1, an
unknown type, a body over 4 MiB, JSON that is not a manifest) is refused with a message
that says which reference and what was wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

from slimage.errors import (
    DigestMismatchError,
    ImageNotFoundError,
    InvalidImageError,
    SlimageError,
    UnsupportedMediaTypeError,
)
from slimage.oci import mediatypes as mt
from slimage.oci.digest import sha256_digest
from slimage.oci.model import MAX_MANIFEST_BYTES, Index, Manifest, parse_manifest_or_index
from slimage.transports.registry.client import (
    BodyTooLargeError,
    RegistryClient,
    error_from_response,
)

ACCEPT = ", ".join([mt.OCI_INDEX, mt.DOCKER_MANIFEST_LIST, mt.OCI_MANIFEST, mt.DOCKER_MANIFEST])
SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
KNOWN = mt.MANIFESTS | mt.INDEXES


@dataclass
class FetchedManifest:
    raw: bytes
    media_type: str
    digest: str
    doc: Manifest | Index


def _content_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def fetch_manifest(
    client: RegistryClient, repository: str, reference: str, *, where: str
) -> FetchedManifest:
    """GET a manifest or index by tag or digest, verified and parsed."""
    path = f"/v2/{repository}/manifests/{reference}"
    resp = client.request("GET", path, headers={"Accept": ACCEPT})
    if resp.status == 404:
        err = error_from_response(resp, where)
        raise ImageNotFoundError(f"{where}: not found in the registry ({err.code or 404})")
    if resp.status != 200:
        raise error_from_response(resp, f"{where}: fetching manifest")
    served_type = _content_type(resp.header("Content-Type"))
    claimed = resp.header("Docker-Content-Digest").strip()
    try:
        raw = resp.read_all(MAX_MANIFEST_BYTES, f"{where}: manifest")
    except BodyTooLargeError as exc:
        raise InvalidImageError(str(exc)) from None  # the document is bad, not the link
    digest = sha256_digest(raw)
    if reference.startswith("sha256:") and digest != reference:
        raise DigestMismatchError(f"{where}: manifest content is {digest}, expected {reference}")
    if claimed and claimed.startswith("sha256:") and claimed != digest:
        raise DigestMismatchError(
            f"{where}: manifest content is {digest}, the registry says {claimed}"
        )
    media_type, doc = _parse(raw, served_type, where)
    return FetchedManifest(raw, media_type, digest, doc)


def _parse(raw: bytes, served_type: str, where: str) -> tuple[str, Manifest | Index]:
    if served_type in SCHEMA1:
        raise UnsupportedMediaTypeError(
            f"{where}: schema1 manifests ({served_type}) are not supported; "
            "re-push the image with a current client"
        )
    hint = served_type if served_type in KNOWN else None
    if served_type and hint is None and served_type not in ("application/json", "text/plain"):
        raise UnsupportedMediaTypeError(f"{where}: unknown manifest media type {served_type!r}")
    try:
        doc = parse_manifest_or_index(raw, hint, f"{where}: manifest")
    except SlimageError as exc:
        if str(exc).startswith(where):
            raise
        raise type(exc)(f"{where}: {exc}") from None
    if hint and doc.media_type != hint and doc.media_type in KNOWN:
        raise InvalidImageError(
            f"{where}: manifest says mediaType {doc.media_type!r} but was served as {hint!r}"
        )
    return doc.media_type, doc
