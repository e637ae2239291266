"""A deterministic corpus of realistic Dockerfiles for parser/linter benchmarks.

Multi-stage builds, long `apt-get` RUN chains with continuations, heredocs (RUN and
COPY), cache mounts, ONBUILD, HEALTHCHECK, JSON and shell forms, comments. Written by us
(no third-party files), so the benchmark can be rerun anywhere:

    python bench/dockerfile_corpus.py OUT_DIR [N]
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

BASES = ["debian:bookworm", "debian:bookworm-slim", "node:20", "python:3.12-slim", "golang:1.22"]
PKGS = [
    "curl",
    "ca-certificates",
    "git",
    "build-essential",
    "libssl-dev",
    "python3-dev",
    "pkg-config",
    "zlib1g-dev",
    "libffi-dev",
    "unzip",
    "xz-utils",
    "gnupg",
    "tini",
]


def dockerfile(rng: random.Random, k: int) -> str:
    out = [
        "# syntax=docker/dockerfile:1.7",
        f"# corpus file {k}",
        "ARG VERSION=1.2.3",
        f"ARG BASE={rng.choice(BASES)}",
    ]
    nstages = rng.randint(1, 4)
    for s in range(nstages):
        out.append("")
        out.append(f"FROM --platform=$BUILDPLATFORM ${{BASE}} AS stage{s}")
        out.append("ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 PATH=/opt/app/bin:$PATH")
        pkgs = rng.sample(PKGS, rng.randint(3, len(PKGS)))
        out.append(
            "RUN apt-get update \\\n    && apt-get install -y --no-install-recommends \\\n"
            + "".join(f"        {p} \\\n" for p in pkgs)
            + "    # keep the image small\n    && rm -rf /var/lib/apt/lists/*"
        )
        out.append("WORKDIR /opt/app")
        out.append("COPY --chown=app:app package.json package-lock.json ./")
        out.append(
            "RUN --mount=type=cache,target=/root/.npm,sharing=locked <<EOT\nset -eux\n"
            "npm ci --omit=dev\nnpm run build -- --mode=production\nEOT"
        )
        out.append(
            "COPY <<-EOF /etc/app/app.conf\n\tlisten=0.0.0.0:${PORT:-8080}\n\tlog=info\n\tEOF"
        )
        for i in range(rng.randint(2, 8)):
            out.append(f"RUN set -eux; echo step {i} > /tmp/step-{i} && test -s /tmp/step-{i}")
        if s:
            out.append(f"COPY --from=stage{s - 1} /opt/app/dist /opt/app/dist")
        out.append(f'LABEL org.opencontainers.image.version="${{VERSION}}" stage="{s}"')
    out.append("ONBUILD COPY . /opt/app/src")
    out.append("USER 10001:10001")
    out.append("EXPOSE 8080/tcp")
    out.append(
        "HEALTHCHECK --interval=30s --timeout=3s CMD curl -fsS http://127.0.0.1:8080/ || exit 1"
    )
    out.append('ENTRYPOINT ["/usr/bin/tini", "--"]')
    out.append('CMD ["node", "dist/server.js"]')
    return "\n".join(out) + "\n"


def write_corpus(directory: Path, n: int = 50, seed: int = 42) -> list[Path]:
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(n):
        path = directory / f"Dockerfile.{k:03d}"
        path.write_text(dockerfile(rng, k))
        paths.append(path)
    return paths


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/corpus")
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    files = write_corpus(target, count)
    print(f"wrote {len(files)} Dockerfiles to {target}")
