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
from slimage.oci.safejson import load_json

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_CONFIG_BYTES = 16 * 1024 * 1024


# ---------------------------------------------------------------------------- field types
#
# Every document here comes from outside (an archive, a layout, a registry, a store that
# another tool may have written). Docker and containerd decode them into typed Go
# structs, so a field of the wrong type makes them refuse the document; we do the same,
# once, at parse time, so that no later reader meets `"Env": "PATH=/x"` (iterated as
# characters) or `"created": 12345` (crashing a listing). The message names the document
# (WHAT: the file or blob, given by the caller) and the field path.


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _wrong(what: str, path: str, expected: str, value: object) -> InvalidImageError:
    return InvalidImageError(f"{what}: {path} must be {expected}, not {_kind(value)}")


def _key(k: str, width: int = 60) -> str:
    """A hostile string as shown in a message: quoted, escaped, never multi-line, short."""
    text = repr(k)
    return text if len(text) <= width else text[: width - 4] + "...'"


def _obj(value: object, what: str, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _wrong(what, path, "an object", value)
    return value


def _opt_str(d: dict[str, Any], key: str, what: str, path: str) -> str | None:
    value = d.get(key)
    if value is not None and not isinstance(value, str):
        raise _wrong(what, f"{path}{key}", "a string", value)
    return value


def _opt_bool(d: dict[str, Any], key: str, what: str, path: str) -> None:
    value = d.get(key)
    if value is not None and not isinstance(value, bool):
        raise _wrong(what, f"{path}{key}", "true or false", value)


def _opt_int(d: dict[str, Any], key: str, what: str, path: str) -> None:
    value = d.get(key)
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise _wrong(what, f"{path}{key}", "an integer", value)


def _opt_obj(d: dict[str, Any], key: str, what: str, path: str) -> dict[str, Any] | None:
    value = d.get(key)
    if value is not None and not isinstance(value, dict):
        raise _wrong(what, f"{path}{key}", "an object", value)
    return value


def _opt_str_list(d: dict[str, Any], key: str, what: str, path: str) -> list[str] | None:
    value = d.get(key)
    if value is None:
        return None
    if not isinstance(value, list):
        raise _wrong(what, f"{path}{key}", "a list of strings", value)
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise _wrong(what, f"{path}{key}[{i}]", "a string", item)
    return value


def _opt_str_map(d: dict[str, Any], key: str, what: str, path: str) -> dict[str, str] | None:
    value = d.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _wrong(what, f"{path}{key}", "an object of strings", value)
    for k, v in value.items():
        if not isinstance(v, str):
            raise _wrong(what, f"{path}{key}[{_key(k)}]", "a string", v)
    return value


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
    def from_dict(
        cls, d: dict[str, Any], what: str = "descriptor", path: str = "platform"
    ) -> Platform:
        d = _obj(d, what, path)
        return cls(
            _opt_str(d, "os", what, f"{path}.") or "",
            _opt_str(d, "architecture", what, f"{path}.") or "",
            _opt_str(d, "variant", what, f"{path}.") or None,
        )

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
    def from_dict(cls, d: Any, what: str = "manifest", path: str = "descriptor") -> Descriptor:
        """A descriptor with every field type-checked: `size` must be a JSON integer
        (Go's int64; "12" and 12.0 are refused as Docker refuses them), `annotations` a
        map of strings, `urls` a list of strings, `platform` an object of strings."""
        d = _obj(d, what, path)
        p = f"{path}."
        digest = d.get("digest")
        if not isinstance(digest, str):
            raise _wrong(what, f"{p}digest", "a string", digest)
        validate(digest, what=f"{what}: {p}digest")
        size = d.get("size")
        if not isinstance(size, int) or isinstance(size, bool):
            raise _wrong(what, f"{p}size", "an integer", size)
        if size < 0:
            raise InvalidImageError(f"{what}: {p}size: descriptor {digest} has negative size")
        media_type = _opt_str(d, "mediaType", what, p) or ""
        annotations = _opt_str_map(d, "annotations", what, p)
        urls = _opt_str_list(d, "urls", what, p)
        plat = d.get("platform")
        return cls(
            media_type=media_type,
            digest=digest,
            size=size,
            annotations=annotations or None,
            platform=Platform.from_dict(plat, what, f"{p}platform") if plat is not None else None,
            urls=tuple(urls) if urls else None,
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


def _load_json(data: bytes, what: str, max_bytes: int = MAX_MANIFEST_BYTES) -> dict[str, Any]:
    obj = load_json(data, what, max_bytes=max_bytes)
    if not isinstance(obj, dict):
        raise InvalidImageError(f"{what} is not a JSON object")
    return obj


def _media_type(obj: dict[str, Any], what: str) -> str | None:
    return _opt_str(obj, "mediaType", what, "")


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
    def parse(cls, raw: bytes, media_type: str | None = None, what: str = "manifest") -> Manifest:
        return cls._from_obj(raw, _load_json(raw, what), media_type, what)

    @classmethod
    def _from_obj(
        cls, raw: bytes, obj: dict[str, Any], media_type: str | None, what: str
    ) -> Manifest:
        declared = _media_type(obj, what) or media_type or mt.OCI_MANIFEST
        if declared not in mt.MANIFESTS:
            raise UnsupportedMediaTypeError(
                f"unsupported manifest media type {_key(declared, 100)}"
            )
        version = obj.get("schemaVersion")
        if not isinstance(version, int) or isinstance(version, bool) or version != 2:
            raise InvalidImageError(f"unsupported manifest schemaVersion {version!r}"[:200])
        if not isinstance(obj.get("config"), dict) or not isinstance(obj.get("layers"), list):
            raise InvalidImageError(f"{what} lacks config or layers")
        config = Descriptor.from_dict(obj["config"], what, "config")
        layers = [
            Descriptor.from_dict(d, what, f"layers[{i}]") for i, d in enumerate(obj["layers"])
        ]
        for layer in layers:
            if layer.media_type not in mt.LAYERS:
                raise UnsupportedMediaTypeError(
                    f"layer {layer.digest} has unknown media type {_key(layer.media_type, 100)}"
                )
        annotations = _opt_str_map(obj, "annotations", what, "") or {}
        return cls(raw, declared, config, layers, annotations)

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
    def parse(cls, raw: bytes, media_type: str | None = None, what: str = "index") -> Index:
        return cls._from_obj(raw, _load_json(raw, what), media_type, what)

    @classmethod
    def _from_obj(cls, raw: bytes, obj: dict[str, Any], media_type: str | None, what: str) -> Index:
        declared = _media_type(obj, what) or media_type or mt.OCI_INDEX
        if declared not in mt.INDEXES:
            raise UnsupportedMediaTypeError(f"unsupported index media type {_key(declared, 100)}")
        if not isinstance(obj.get("manifests"), list):
            raise InvalidImageError(f"{what} lacks a manifests list")
        _opt_str_map(obj, "annotations", what, "")
        manifests = [
            Descriptor.from_dict(d, what, f"manifests[{i}]") for i, d in enumerate(obj["manifests"])
        ]
        return cls(raw, declared, manifests)

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


def parse_manifest_or_index(
    raw: bytes, media_type: str | None = None, what: str = "manifest"
) -> Manifest | Index:
    """Sniff the document kind from its mediaType field, falling back to its shape.
    The bytes are parsed once (through the bounded reader) and type-checked."""
    obj = _load_json(raw, what)
    kind = _media_type(obj, what) or media_type
    if kind in mt.INDEXES or (kind is None and "manifests" in obj):
        return Index._from_obj(raw, obj, kind, what)
    if kind in mt.MANIFESTS or (kind is None and "layers" in obj):
        return Manifest._from_obj(raw, obj, kind, what)
    raise UnsupportedMediaTypeError(
        f"unsupported manifest media type {_key(kind, 100) if kind else None}"
    )


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
            created=d.get("created") or None,
            created_by=d.get("created_by") or "",
            comment=d.get("comment") or "",
            author=d.get("author") or "",
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


_TOP_STRINGS = (
    "created",
    "author",
    "architecture",
    "os",
    "os.version",
    "variant",
    "comment",
    "parent",
    "container",
    "docker_version",
)
_RUNTIME_STRINGS = (
    "User",
    "WorkingDir",
    "StopSignal",
    "Hostname",
    "Domainname",
    "Image",
    "MacAddress",
)
_RUNTIME_STRSLICES = ("Cmd", "Entrypoint", "Shell")  # Docker's strslice: string or list
_RUNTIME_STRLISTS = ("Env", "OnBuild")
_RUNTIME_BOOLS = (
    "ArgsEscaped",
    "AttachStdin",
    "AttachStdout",
    "AttachStderr",
    "Tty",
    "OpenStdin",
    "StdinOnce",
    "NetworkDisabled",
)
_RUNTIME_OBJECTS = ("ExposedPorts", "Volumes", "Healthcheck")
_HISTORY_STRINGS = ("created", "created_by", "author", "comment")


def _check_runtime(cfg: dict[str, Any], what: str, path: str) -> None:
    p = f"{path}."
    for key in _RUNTIME_STRINGS:
        _opt_str(cfg, key, what, p)
    for key in _RUNTIME_STRSLICES:
        if isinstance(cfg.get(key), str):
            cfg[key] = [cfg[key]]
        _opt_str_list(cfg, key, what, p)
    for key in _RUNTIME_STRLISTS:
        _opt_str_list(cfg, key, what, p)
    for key in _RUNTIME_BOOLS:
        _opt_bool(cfg, key, what, p)
    for key in _RUNTIME_OBJECTS:
        _opt_obj(cfg, key, what, p)
    _opt_str_map(cfg, "Labels", what, p)
    _opt_int(cfg, "StopTimeout", what, p)
    health = cfg.get("Healthcheck")
    if health:
        _opt_str_list(health, "Test", what, f"{p}Healthcheck.")


def _check_config(data: dict[str, Any], what: str) -> None:
    """The type rules of `ImageConfig.parse` (see there for what is refused and why)."""
    for key in _TOP_STRINGS:
        _opt_str(data, key, what, "")
    for key in ("config", "container_config"):
        runtime = _opt_obj(data, key, what, "")
        if runtime is not None:
            _check_runtime(runtime, what, key)
    rootfs = data.get("rootfs")
    if not isinstance(rootfs, dict) or not isinstance(rootfs.get("diff_ids"), list):
        raise InvalidImageError(f"{what} lacks rootfs.diff_ids")
    _opt_str(rootfs, "type", what, "rootfs.")
    for i, d in enumerate(rootfs["diff_ids"]):
        if not isinstance(d, str):
            raise _wrong(what, f"rootfs.diff_ids[{i}]", "a digest string", d)
        validate(d, what=f"{what}: rootfs.diff_ids[{i}]")
    history = data.get("history")
    if history is not None:
        if not isinstance(history, list):
            raise _wrong(what, "history", "a list", history)
        for i, entry in enumerate(history):
            _obj(entry, what, f"history[{i}]")
            for key in _HISTORY_STRINGS:
                _opt_str(entry, key, what, f"history[{i}].")
            _opt_bool(entry, "empty_layer", what, f"history[{i}].")


@dataclass
class ImageConfig:
    """The image config blob. `data` is the full JSON, kept whole so nothing is lost."""

    raw: bytes
    data: dict[str, Any]

    @classmethod
    def parse(cls, raw: bytes, what: str = "image config") -> ImageConfig:
        """Parse and type-check a config, as Docker's typed decoding would.

        Refused (InvalidImageError naming WHAT and the field): any field slimage reads
        that has the wrong JSON type: `created` not a string, `Env: "PATH=/x"`,
        `history` not a list of objects, `config` not an object, `Labels` values not
        strings, `rootfs.diff_ids` not digests. Docker's `docker load` refuses all of
        these too ("cannot unmarshal ... into Go struct field").

        Tolerated, the way Docker tolerates them:
        - `Cmd`, `Entrypoint` and `Shell` given as one string: Docker's strslice type
          accepts that and means a one-element list, so the parsed view holds
          `[string]` (the raw bytes, and so the image ID, are untouched);
        - null for any optional field (Go leaves the zero value);
        - a `created` string that is not RFC 3339: it cannot break anything, so listings
          show no time for it rather than hiding the image (Docker would refuse it at
          load, but an image already in a store should stay listable and removable);
        - fields slimage does not read, of any type: they are kept, never interpreted.
        """
        data = _load_json(raw, what, MAX_CONFIG_BYTES)
        _check_config(data, what)
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
