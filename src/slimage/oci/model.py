"""The image model: descriptors, manifests, indexes and the image config.

Manifests and configs are kept as their exact bytes plus a parsed view. The bytes matter:
a manifest's digest is the hash of the bytes a registry served, so re-serialising would
change the image's identity. Unknown fields are preserved for the same reason.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from slimage.errors import InvalidImageError, UnsupportedMediaTypeError
from slimage.oci import mediatypes as mt
from slimage.oci.digest import sha256_digest, validate

MAX_MANIFEST_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Platform:
    os: str = "linux"
    architecture: str = "amd64"
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        """`linux/arm64/v8` -> Platform; the form `docker --platform` takes."""
        parts = text.strip().split("/")
        if len(parts) < 2 or not all(parts):
            raise InvalidImageError(f"invalid platform {text!r} (expected os/arch[/variant])")
        return cls(parts[0], parts[1], parts[2] if len(parts) > 2 else None)

    @classmethod
    def host(cls) -> Platform:
        machine = os.uname().machine.lower()  # not `platform`: 2 ms of import on every command
        arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(machine, machine)
        return cls("linux", arch, "v8" if arch == "arm64" else None)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Platform:
        return cls(d.get("os", ""), d.get("architecture", ""), d.get("variant"))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            out["variant"] = self.variant
        return out

    def matches(self, other: Platform) -> bool:
        """Does an image for `other` satisfy a request for `self`? A missing variant on
        either side matches, as containerd's default matcher does for arm64."""
        if self.os != other.os or self.architecture != other.architecture:
            return False
        return not self.variant or not other.variant or self.variant == other.variant

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] | None = None
    platform: Platform | None = None
    urls: tuple[str, ...] | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Descriptor:
        try:
            digest = validate(d["digest"])
            size = int(d["size"])
            media_type = str(d.get("mediaType", ""))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidImageError(f"malformed descriptor {d!r}") from exc
        if size < 0:
            raise InvalidImageError(f"descriptor {digest} has negative size")
        plat = d.get("platform")
        return cls(
            media_type=media_type,
            digest=digest,
            size=size,
            annotations=d.get("annotations") or None,
            platform=Platform.from_dict(plat) if isinstance(plat, dict) else None,
            urls=tuple(d["urls"]) if d.get("urls") else None,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.urls:
            out["urls"] = list(self.urls)
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform:
            out["platform"] = self.platform.to_dict()
        return out


def _load_json(data: bytes, what: str) -> dict[str, Any]:
    if len(data) > MAX_MANIFEST_BYTES:
        raise InvalidImageError(f"{what} is {len(data)} bytes, over the 4 MiB limit")
    try:
        obj = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidImageError(f"{what} is not valid JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise InvalidImageError(f"{what} is not a JSON object")
    return obj


def canonical_json(obj: Any) -> bytes:
    """Compact, key-sorted JSON: the stable form for bytes we create ourselves."""
    return json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()


@dataclass
class Manifest:
    """An image manifest (OCI or Docker schema2) with its exact bytes."""

    raw: bytes
    media_type: str
    config: Descriptor
    layers: list[Descriptor]
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def digest(self) -> str:
        return sha256_digest(self.raw)

    @classmethod
    def parse(cls, raw: bytes, media_type: str | None = None) -> Manifest:
        obj = _load_json(raw, "manifest")
        declared = obj.get("mediaType") or media_type or mt.OCI_MANIFEST
        if declared not in mt.MANIFESTS:
            raise UnsupportedMediaTypeError(f"unsupported manifest media type {declared!r}")
        if obj.get("schemaVersion") != 2:
            raise InvalidImageError(
                f"unsupported manifest schemaVersion {obj.get('schemaVersion')!r}"
            )
        if not isinstance(obj.get("config"), dict) or not isinstance(obj.get("layers"), list):
            raise InvalidImageError("manifest lacks config or layers")
        config = Descriptor.from_dict(obj["config"])
        layers = [Descriptor.from_dict(d) for d in obj["layers"]]
        for layer in layers:
            if layer.media_type not in mt.LAYERS:
                raise UnsupportedMediaTypeError(
                    f"layer {layer.digest} has unknown media type {layer.media_type!r}"
                )
        return cls(raw, declared, config, layers, obj.get("annotations") or {})

    @classmethod
    def build(
        cls,
        config: Descriptor,
        layers: list[Descriptor],
        *,
        docker: bool = False,
        annotations: dict[str, str] | None = None,
    ) -> Manifest:
        media_type = mt.DOCKER_MANIFEST if docker else mt.OCI_MANIFEST
        obj: dict[str, Any] = {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": config.to_dict(),
            "layers": [d.to_dict() for d in layers],
        }
        if annotations:
            obj["annotations"] = annotations
        raw = json.dumps(obj, indent=2).encode()
        return cls(raw, media_type, config, layers, annotations or {})


@dataclass
class Index:
    """An OCI image index or a Docker manifest list."""

    raw: bytes
    media_type: str
    manifests: list[Descriptor]

    @property
    def digest(self) -> str:
        return sha256_digest(self.raw)

    @classmethod
    def parse(cls, raw: bytes, media_type: str | None = None) -> Index:
        obj = _load_json(raw, "index")
        declared = obj.get("mediaType") or media_type or mt.OCI_INDEX
        if declared not in mt.INDEXES:
            raise UnsupportedMediaTypeError(f"unsupported index media type {declared!r}")
        if not isinstance(obj.get("manifests"), list):
            raise InvalidImageError("index lacks a manifests list")
        return cls(raw, declared, [Descriptor.from_dict(d) for d in obj["manifests"]])

    @classmethod
    def build(cls, manifests: list[Descriptor]) -> Index:
        obj = {
            "schemaVersion": 2,
            "mediaType": mt.OCI_INDEX,
            "manifests": [d.to_dict() for d in manifests],
        }
        return cls(json.dumps(obj, indent=2).encode(), mt.OCI_INDEX, manifests)

    def select(self, want: Platform | None = None) -> Descriptor:
        """Pick the manifest for a platform (the host's by default), like `docker pull`."""
        want = want or Platform.host()
        candidates = [
            d for d in self.manifests if d.media_type in mt.MANIFESTS or d.media_type in mt.INDEXES
        ]
        for d in candidates:
            if d.platform is not None and want.matches(d.platform):
                return d
        if len(candidates) == 1 and candidates[0].platform is None:
            return candidates[0]
        have = ", ".join(str(d.platform) for d in candidates if d.platform) or "none"
        raise InvalidImageError(f"no manifest for platform {want} (available: {have})")


def parse_manifest_or_index(raw: bytes, media_type: str | None = None) -> Manifest | Index:
    """Sniff the document kind from its mediaType field, falling back to its shape."""
    obj = _load_json(raw, "manifest")
    kind = obj.get("mediaType") or media_type
    if kind in mt.INDEXES or (kind is None and "manifests" in obj):
        return Index.parse(raw, kind)
    if kind in mt.MANIFESTS or (kind is None and "layers" in obj):
        return Manifest.parse(raw, kind)
    raise UnsupportedMediaTypeError(f"unsupported manifest media type {kind!r}")


@dataclass
class HistoryEntry:
    created: str | None = None
    created_by: str = ""
    comment: str = ""
    author: str = ""
    empty_layer: bool = False

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HistoryEntry:
        return cls(
            created=d.get("created"),
            created_by=d.get("created_by", ""),
            comment=d.get("comment", ""),
            author=d.get("author", ""),
            empty_layer=bool(d.get("empty_layer", False)),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.created:
            out["created"] = self.created
        if self.created_by:
            out["created_by"] = self.created_by
        if self.author:
            out["author"] = self.author
        if self.comment:
            out["comment"] = self.comment
        if self.empty_layer:
            out["empty_layer"] = True
        return out


@dataclass
class ImageConfig:
    """The image config blob. `data` is the full JSON, kept whole so nothing is lost."""

    raw: bytes
    data: dict[str, Any]

    @classmethod
    def parse(cls, raw: bytes) -> ImageConfig:
        data = _load_json(raw, "image config")
        rootfs = data.get("rootfs")
        if not isinstance(rootfs, dict) or not isinstance(rootfs.get("diff_ids"), list):
            raise InvalidImageError("image config lacks rootfs.diff_ids")
        for d in rootfs["diff_ids"]:
            validate(d, what="diff_id")
        return cls(raw, data)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> ImageConfig:
        return cls(canonical_json(data), data)

    @property
    def digest(self) -> str:
        """The image ID, as Docker shows it."""
        return sha256_digest(self.raw)

    @property
    def diff_ids(self) -> list[str]:
        return list(self.data["rootfs"]["diff_ids"])

    @property
    def history(self) -> list[HistoryEntry]:
        return [HistoryEntry.from_dict(h) for h in self.data.get("history") or []]

    @property
    def config(self) -> dict[str, Any]:
        """The runtime part (Env, Cmd, Entrypoint, ...): `config` in OCI, as Docker writes it."""
        return self.data.get("config") or {}

    @property
    def created(self) -> str | None:
        return self.data.get("created")

    @property
    def platform(self) -> Platform:
        return Platform(
            self.data.get("os", "linux"),
            self.data.get("architecture", ""),
            self.data.get("variant"),
        )

    def layer_history(self) -> list[tuple[HistoryEntry, int | None]]:
        """History entries paired with the index of the layer each one made (None for
        empty_layer steps). Images without history get a synthetic entry per layer."""
        entries = self.history
        if not entries:
            return [(HistoryEntry(), i) for i in range(len(self.diff_ids))]
        out: list[tuple[HistoryEntry, int | None]] = []
        layer = 0
        for entry in entries:
            if entry.empty_layer:
                out.append((entry, None))
            else:
                out.append((entry, layer if layer < len(self.diff_ids) else None))
                layer += 1
        return out
