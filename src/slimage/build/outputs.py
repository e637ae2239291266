"""Where a finished build goes besides the store: `--output type=oci|docker,dest=...` and
`--load` into a running Docker engine."""

from __future__ import annotations

from pathlib import Path

from slimage.errors import UsageError
from slimage.store.store import Store


def parse_output(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in text.split(","):
        k, eq, v = part.partition("=")
        if not eq:
            raise UsageError(f"--output {text!r}: expected key=value pairs (type=oci,dest=DIR)")
        out[k.strip()] = v.strip()
    if out.get("type") not in ("oci", "docker", "image", "registry") or (out.get("type") in ("oci", "docker") and not out.get("dest")):
        raise UsageError(f"--output {text!r}: use type=oci,dest=DIR or type=docker,dest=FILE")
    return out


def export(store: Store, manifest_digest: str, outputs: list[str], *, load: bool, tags: list[str]) -> list[str]:
    from slimage.build import _temp_archive as arch

    done = []
    for text in outputs:
        spec = parse_output(text)
        if spec["type"] == "oci":
            arch.write_oci_layout(store, manifest_digest, Path(spec["dest"]), tags)
            done.append(f"oci:{spec['dest']}")
        elif spec["type"] == "docker":
            dest = Path(spec["dest"])
            tmp = dest.with_name(dest.name + ".part")
            with open(tmp, "wb") as fh:
                arch.write_docker_archive(store, manifest_digest, fh, tags)
            tmp.replace(dest)
            done.append(f"docker-archive:{dest}")
    if load:
        arch.docker_load(store, manifest_digest, tags)
        done.append("docker-daemon")
    return done
