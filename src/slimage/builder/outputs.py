"""Where a finished build goes besides the store: `--output type=oci|docker,dest=...` and
`--load` into a running Docker engine (all through slimage.transports).

`type=oci,dest=X.tar` gives the layout as a tar (BuildKit's form); the archive writer's
output is both a docker-archive and an OCI layout, so the same writer serves it."""

from __future__ import annotations

import os
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
    if out.get("type") not in ("oci", "docker") or not out.get("dest"):
        raise UsageError(
            f"--output {text!r}: use type=oci,dest=DIR (or FILE.tar) or type=docker,dest=FILE"
        )
    return out


def check_outputs(outputs: list[str]) -> None:
    """Validate before building, so a typo does not waste a build."""
    for text in outputs:
        parse_output(text)


def export(
    store: Store, manifest_digest: str, outputs: list[str], *, load: bool, tags: list[str]
) -> list[str]:
    from slimage.store.images import open_image

    image = open_image(store, manifest_digest)
    done = []
    for text in outputs:
        spec = parse_output(text)
        dest = Path(spec["dest"])
        if spec["type"] == "oci" and not dest.name.endswith(".tar"):
            from slimage.transports.oci_layout import write_layout

            write_layout(dest, [(image, tags[0] if tags else None)])
            done.append(f"oci:{dest}")
        else:
            from slimage.transports.docker_archive import write_archive

            tmp = dest.with_name(dest.name + ".part")
            try:
                with open(tmp, "wb") as fh:
                    write_archive(fh, [(image, list(tags))])
                os.replace(tmp, dest)
            finally:
                tmp.unlink(missing_ok=True)
            done.append(f"{'oci-archive' if spec['type'] == 'oci' else 'docker-archive'}:{dest}")
    if load:
        from slimage.transports.docker_engine import load_into_engine

        load_into_engine(image, list(tags))
        done.append("docker-daemon")
    return done
