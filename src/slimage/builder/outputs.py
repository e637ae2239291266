"""Where a finished build goes besides the store: `--output type=oci|docker,dest=...` and
`--load` into a running Docker engine, through the same sinks as `copy` and `save`
(`slimage.transports.sinks`), so the atomic write and the formats are the same.

`type=oci,dest=X.tar` gives the layout as a tar (BuildKit's form, an oci-archive);
`type=oci,dest=DIR` an OCI layout directory; `type=docker,dest=FILE` a docker-archive."""

from __future__ import annotations

from slimage.errors import UsageError
from slimage.store.store import Store
from slimage.transports.sinks import Sink, file_sink, open_sink


def parse_output(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in text.split(","):
        k, eq, v = part.partition("=")
        if not eq:
            raise UsageError(f"--output {text!r}: expected key=value pairs (type=oci,dest=DIR)")
        out[k.strip()] = v.strip()
    if out.get("type") not in ("oci", "docker") or not out.get("dest"):
        raise UsageError(
            f"--output {text!r}: use type=oci,dest=DIR (or FILE.tar) or type=docker,dest=FILE"
        )
    return out


def output_sink(text: str) -> Sink:
    """The sink an `--output` value names (checked, nothing written yet)."""
    spec = parse_output(text)
    dest = spec["dest"]
    if spec["type"] == "docker":
        fmt = "docker-archive"
    else:
        fmt = "oci-archive" if dest.endswith(".tar") else "oci"
    return file_sink(fmt, dest)


def check_outputs(outputs: list[str]) -> None:
    """Validate before building, so a typo does not waste a build."""
    for text in outputs:
        output_sink(text)


def export(
    store: Store, manifest_digest: str, outputs: list[str], *, load: bool, tags: list[str]
) -> list[str]:
    from slimage.store.images import open_image

    image = open_image(store, manifest_digest)
    sinks = [output_sink(text) for text in outputs]
    if load:
        sinks.append(open_sink("docker-daemon:"))
    done = []
    for sink in sinks:
        sink.write(image, list(tags))
        done.append("docker-daemon" if sink.kind == "docker-daemon" else sink.spec)
    return done
