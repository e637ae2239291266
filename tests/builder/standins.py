"""Local stand-ins for the bases the seed's Dockerfiles name but that cannot be pulled here.

- `gcr.io/distroless/nodejs` -> `slimage-test/distroless-nodejs`: Debian's node binary and
  exactly the shared libraries it loads, `/etc/passwd`, no shell (as distroless).
- `node:8-alpine` -> `slimage-test/node:8-alpine`: the same plus a shell (dash as /bin/sh)
  and npm, so `CMD ["npm", "start"]` and `exec sh` work as on Alpine.

Both are built once by the real engine (cached there) from `slimage-test/node:8`.
"""

from __future__ import annotations

import fcntl
import subprocess
import tempfile
from pathlib import Path

from tests.support import testbed

DISTROLESS = "slimage-test/distroless-nodejs:2"
ALPINE = "slimage-test/node:8-alpine-2"

_COLLECT = r"""
RUN set -e; mkdir -p /out/usr/bin /out/etc /out/tmp; chmod 1777 /out/tmp; \
    cp /usr/bin/node /out/usr/bin/node; \
    for l in $(ldd /usr/bin/node | grep -o '/[^ ]*'); do \
      mkdir -p "/out$(dirname "$l")"; cp -L "$l" "/out$l"; done; \
    mkdir -p /out/usr/share; cp -a /usr/share/nodejs /out/usr/share/nodejs; \
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' > /out/etc/passwd; \
    printf 'root:x:0:\nnonroot:x:65532:\n' > /out/etc/group
"""

DISTROLESS_DOCKERFILE = f"""\
FROM {testbed.NODE8_IMAGE} AS collect
{_COLLECT}
FROM scratch
COPY --from=collect /out /
ENTRYPOINT ["/usr/bin/node"]
"""

ALPINE_DOCKERFILE = f"""\
FROM {testbed.NODE8_IMAGE} AS collect
{_COLLECT}
RUN set -e; mkdir -p /out/bin /out/usr/share /out/usr/lib; cp /bin/dash /out/bin/sh; \
    for l in $(ldd /bin/dash | grep -o '/[^ ]*'); do mkdir -p "/out$(dirname "$l")"; cp -L "$l" "/out$l"; done; \
    cp /usr/bin/env /out/usr/bin/env; \
    ln -s ../share/nodejs/npm/bin/npm-cli.js /out/usr/bin/npm
FROM scratch
COPY --from=collect /out /
ENV NPM_CONFIG_UPDATE_NOTIFIER=false
CMD ["node"]
"""


def ensure(tag: str, dockerfile: str) -> str:
    if testbed.image_exists(tag):
        return tag
    lock = Path("/tmp/slimage-standins.lock")
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        if not testbed.image_exists(tag):
            with tempfile.TemporaryDirectory() as tmp:
                (Path(tmp) / "Dockerfile").write_text(dockerfile)
                testbed.build(tag, Path(tmp))
    return tag


def ensure_distroless() -> str:
    return ensure(DISTROLESS, DISTROLESS_DOCKERFILE)


def ensure_alpine() -> str:
    return ensure(ALPINE, ALPINE_DOCKERFILE)


def scenario_context(tmp: Path, dockerfile: str) -> Path:
    """testbed.scenario_context, with the distroless and alpine bases swapped too."""
    ctx = testbed.scenario_context(tmp, dockerfile)
    path = ctx / dockerfile
    text = path.read_text()
    text = text.replace("FROM gcr.io/distroless/nodejs", f"FROM {DISTROLESS}")
    text = text.replace("FROM node:8-alpine", f"FROM {ALPINE}")
    path.write_text(text)
    return ctx


__all__ = [
    "ALPINE",
    "DISTROLESS",
    "ensure_alpine",
    "ensure_distroless",
    "scenario_context",
    "subprocess",
]
