"""Where a finished build goes besides the store: `--output type=oci|docker,dest=...` and
`--load` into a running Docker engine, through the same sinks as `copy` and `save`
(`slimage.transports.sinks`), so the atomic write and the formats are the same.

`type=oci,dest=X.tar` gives the layout as a tar (BuildKit's form, an oci-archive);
`type=oci,dest=DIR` an OCI layout directory; `type=docker,dest=FILE` a docker-archive;
`type=registry[,name=REF]` (or `type=image,push=true`, or `--push`) pushes the image to
REF (default: every `-t` tag) through the registry sink, so blobs the registry already
has are skipped and the pushed digest is the stored one."""

from __future__ import annotations

from slimage.errors import UsageError
from slimage.store.refs import parse_reference
from slimage.store.store import Store
from slimage.transports.sinks import Sink, file_sink, open_sink


def parse_output(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in text.split(","):
        k, eq, v = part.partition("=")
        if not eq:
            raise UsageError(f"--output {text!r}: expected key=value pairs (type=oci,dest=DIR)")
        out[k.strip()] = v.strip()
    kind = out.get("type")
    if kind == "image" and out.get("push") == "true":
        out["type"] = kind = "registry"
    if kind == "registry":
        return out
    if kind not in ("oci", "docker") or not out.get("dest"):
        raise UsageError(
            f"--output {text!r}: use type=oci,dest=DIR (or FILE.tar), type=docker,dest=FILE "
            "or type=registry[,name=REF]"
        )
    return out


def registry_names(text: str, tags: list[str]) -> list[str]:
    """Where a `type=registry` output pushes: its name= list, else the build's tags."""
    spec = parse_output(text)
    names = [n for n in spec.get("name", "").split(";") if n] or list(tags)
    if not names:
        raise UsageError(f"--output {text!r}: no name= and no -t tag to push to")
    return names


def output_sink(text: str) -> Sink:
    """The sink an `--output` value names (checked, nothing written yet)."""
    spec = parse_output(text)
    dest = spec["dest"]
    if spec["type"] == "docker":
        fmt = "docker-archive"
    else:
        fmt = "oci-archive" if dest.endswith(".tar") else "oci"
    return file_sink(fmt, dest)


def check_outputs(outputs: list[str], *, push: bool = False, tags: list[str] | None = None) -> None:
    """Validate before building, so a typo does not waste a build."""
    for text in outputs:
        if parse_output(text)["type"] == "registry":
            for name in registry_names(text, tags or []):
                open_sink("docker://" + name)
        else:
            output_sink(text)
    if push:
        if not tags:
            raise UsageError("--push needs a -t REGISTRY/REPO:TAG to push to")
        for name in tags:
            open_sink("docker://" + name)


def push_tags(store: Store, manifest_digest: str, names: list[str]) -> list[tuple[str, str]]:
    """Push the built image to each of NAMES; (name, pushed manifest digest) per name."""
    from slimage.store.images import open_image

    image = open_image(store, manifest_digest)
    done = []
    for name in names:
        ref = parse_reference(name).name
        res = open_sink("docker://" + ref, store).write(image)
        done.append((ref, res.digest))
    return done


def export(
    store: Store, manifest_digest: str, outputs: list[str], *, load: bool, tags: list[str]
) -> list[str]:
    from slimage.store.images import open_image

    image = open_image(store, manifest_digest)
    done = []
    for text in outputs:
        if parse_output(text)["type"] == "registry":
            for name, digest in push_tags(store, manifest_digest, registry_names(text, tags)):
                done.append(f"docker://{name}@{digest}")
    sinks = [output_sink(t) for t in outputs if parse_output(t)["type"] != "registry"]
    if load:
        sinks.append(open_sink("docker-daemon:"))
    for sink in sinks:
        sink.write(image, list(tags))
        done.append("docker-daemon" if sink.kind == "docker-daemon" else sink.spec)
    return done
