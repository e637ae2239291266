"""Generate the lint/benchmark corpus: realistic Dockerfiles written by us.

`python -m tests.corpus.generate` rewrites `tests/corpus/lint/*.Dockerfile`. The output is
deterministic (fixed seed) and committed, so the benchmark and the tests always see the
same files. The files mix what real Dockerfiles contain: multi-stage builds, RUN heredocs,
long `&& \\` chains with dozens of packages, ONBUILD, HEALTHCHECK, ARG-parameterised bases,
and the mistakes the linter is about (so both linters have work to do).

COPY/ADD heredocs are left out on purpose, and every heredoc is followed by a blank line:
hadolint 2.15.1 cannot parse a COPY heredoc, nor an instruction right after a heredoc
terminator (it stops with DL1000), which would make the side-by-side timing unfair in our
favour. Both are valid for BuildKit.
"""

from __future__ import annotations

import random
from pathlib import Path

OUT = Path(__file__).resolve().parent / "lint"
SEED = 20261127
COUNT = 60

APT_PKGS = (
    "ca-certificates curl wget git gnupg openssh-client unzip xz-utils tzdata locales "
    "libssl3 libffi8 zlib1g libxml2 libxslt1.1 libjpeg62-turbo libpng16-16 libpq5 "
    "libsqlite3-0 procps less vim-tiny jq tree file netcat-openbsd iproute2 dnsutils "
    "build-essential gcc g++ make cmake pkg-config libssl-dev libffi-dev zlib1g-dev "
    "python3 python3-pip python3-venv python3-dev nodejs npm default-jre-headless"
).split()
BASES = {
    "node": [
        "node:20",
        "node:20-slim",
        "node:18-bookworm",
        "node",
        "node:latest",
        "node:20-alpine",
    ],
    "python": ["python:3.12", "python:3.12-slim", "python:3.11-bookworm", "python"],
    "go": ["golang:1.22", "golang:1.22-bookworm", "golang"],
    "debian": ["debian:bookworm", "debian:bookworm-slim", "ubuntu:22.04", "ubuntu"],
    "java": ["maven:3.9-eclipse-temurin-21", "eclipse-temurin:21-jre", "openjdk:17"],
}
RUNTIME = {
    "node": ["gcr.io/distroless/nodejs20-debian12", "node:20-slim", "node:20"],
    "python": ["python:3.12-slim", "gcr.io/distroless/python3-debian12", "python:3.12"],
    "go": ["gcr.io/distroless/static-debian12:nonroot", "scratch", "debian:bookworm-slim"],
    "debian": ["debian:bookworm-slim", "debian:bookworm"],
    "java": ["eclipse-temurin:21-jre", "gcr.io/distroless/java21-debian12"],
}


def _apt_block(rng: random.Random, n: int, clean: bool, recommends: bool, indent: str) -> str:
    pkgs = sorted(rng.sample(APT_PKGS, n))
    flag = "" if recommends else " --no-install-recommends"
    lines = [f"RUN apt-get update && apt-get install -y{flag} \\"]
    for i in range(0, len(pkgs), 3):
        lines.append(f"{indent}{' '.join(pkgs[i : i + 3])} \\")
    if clean:
        lines.append(f"{indent}&& rm -rf /var/lib/apt/lists/*")
    else:
        lines.append(f"{indent}&& echo installed")
    return "\n".join(lines)


def _long_chain(rng: random.Random, n: int, indent: str) -> str:
    steps = [
        "mkdir -p /opt/app/{bin,lib,etc}",
        "groupadd -r app",
        "useradd -r -g app -d /opt/app app",
        'echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh',
        "ln -sf /usr/share/zoneinfo/UTC /etc/localtime",
        "sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen",
        "curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin",
        "chmod 0755 /usr/local/bin/tool",
        "find /usr/share/doc -depth -type f ! -name copyright -delete",
        "rm -rf /usr/share/man/* /usr/share/info/*",
        'if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi',
        'for f in /etc/app/*.conf; do test -r "$f" || exit 1; done',
        "git clone --depth 1 https://example.invalid/repo.git /src/repo",
        "wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg",
        "python3 -m pip install --no-cache-dir -r /tmp/requirements.txt",
        "npm ci --omit=dev",
        "go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app",
        "printf '%s\\n' 'a=1' 'b=2' >> /etc/app/app.conf",
        "export DEBIAN_FRONTEND=noninteractive",
        "cp -a /src/repo/config /etc/app/",
    ]
    chosen = [rng.choice(steps) for _ in range(n)]
    body = f" && \\\n{indent}".join(chosen)
    return f"RUN set -eux; \\\n{indent}{body}"


def _heredoc_run(rng: random.Random) -> str:
    name = rng.choice(["EOF", "EOT", "SCRIPT"])
    quoted = rng.random() < 0.3
    delim = f"'{name}'" if quoted else name
    dash = "-" if rng.random() < 0.3 else ""
    pad = "\t" if dash else ""
    body = [
        "set -e",
        "apt-get update" if rng.random() < 0.5 else "echo building",
        "mkdir -p /opt/data",
        'for i in 1 2 3; do echo "item $i" >> /opt/data/items; done',
        "cat /opt/data/items | sort | uniq > /opt/data/uniq",
        "rm -rf /tmp/*",
    ]
    lines = [f"RUN <<{dash}{delim}"] + [pad + b for b in body] + [name]
    # hadolint 2.15.1 needs a blank line after a heredoc terminator (BuildKit does not).
    return "\n".join(lines) + "\n"


def _python_heredoc(rng: random.Random) -> str:
    return "\n".join(
        [
            "RUN python3 <<PY",
            "import json, os",
            f"cfg = {{'workers': {rng.randint(1, 8)}, 'debug': False}}",
            "os.makedirs('/etc/app', exist_ok=True)",
            "json.dump(cfg, open('/etc/app/config.json', 'w'))",
            "PY",
            "",
        ]
    )


def _mistakes(rng: random.Random, lang: str) -> list[str]:
    pool = [
        "RUN sudo apt-get install -y htop",
        "RUN apt-get upgrade -y",
        "WORKDIR app",
        "ADD ./config /etc/app/config",
        "ADD https://example.invalid/data.bin /opt/data.bin",
        "ENV API_TOKEN=changeme",
        "ARG DB_PASSWORD",
        "RUN curl -fsSL https://example.invalid/install.sh | sh",
        "RUN pip install requests",
        "RUN npm install -g pm2",
        "MAINTAINER someone@example.invalid",
        "RUN cd /opt && ls",
        "RUN rm -rf /var/lib/apt/lists/*",
    ]
    return rng.sample(pool, rng.randint(1, 4))


def single_stage(rng: random.Random, lang: str) -> str:
    base = rng.choice(BASES[lang])
    indent = rng.choice(["    ", "  ", "\t"])
    out = [f"# {lang} application, single stage", f"FROM {base}"]
    if rng.random() < 0.5:
        out.append('LABEL org.opencontainers.image.source="https://example.invalid/app" \\')
        out.append(f'{indent}org.opencontainers.image.licenses="MIT"')
    out.append("ENV LANG=C.UTF-8 TZ=UTC")
    if "alpine" not in base:
        out.append(
            _apt_block(rng, rng.randint(6, 24), rng.random() < 0.5, rng.random() < 0.5, indent)
        )
    out.append("WORKDIR /app")
    if lang == "node":
        if rng.random() < 0.5:
            out += ["COPY . .", "RUN npm install"]
        else:
            out += ["COPY package.json package-lock.json ./", "RUN npm ci", "COPY . ."]
    elif lang == "python":
        out += ["COPY requirements.txt .", "RUN pip install -r requirements.txt", "COPY . ."]
    elif lang == "go":
        out += [
            "COPY go.mod go.sum ./",
            "RUN go mod download",
            "COPY . .",
            "RUN go build -o /app/server .",
        ]
    elif lang == "java":
        out += [
            "COPY pom.xml .",
            "RUN mvn -q dependency:go-offline",
            "COPY src ./src",
            "RUN mvn -q package",
        ]
    else:
        out += ["COPY . /app"]
    out += _mistakes(rng, lang)
    for _ in range(rng.randint(0, 3)):
        out.append(f"RUN echo step-{rng.randint(1, 99)} >> /var/log/steps")
    if rng.random() < 0.4:
        out.append(_heredoc_run(rng))
    if rng.random() < 0.5:
        out.append("RUN chown -R 1000:1000 /app")
    out.append("EXPOSE 8080")
    if rng.random() < 0.4:
        out.append(
            "HEALTHCHECK --interval=30s --timeout=3s CMD curl -f http://localhost:8080/ || exit 1"
        )
    if rng.random() < 0.5:
        out.append("USER 1000")
    cmd = {
        "node": ['CMD ["npm", "start"]', "CMD node server.js", 'CMD ["node", "server.js"]'],
        "python": [
            'CMD ["python3", "app.py"]',
            "CMD python3 app.py",
            "CMD gunicorn -b 0.0.0.0:8080 app:app",
        ],
        "go": ['CMD ["/app/server"]', "CMD /app/server"],
        "java": ['CMD ["java", "-jar", "target/app.jar"]', "CMD java -jar target/app.jar"],
        "debian": ['CMD ["bash"]', "CMD bash"],
    }[lang]
    out.append(rng.choice(cmd))
    if rng.random() < 0.15:
        out.append('CMD ["true"]')
    return "\n".join(out) + "\n"


def multi_stage(rng: random.Random, lang: str) -> str:
    indent = rng.choice(["    ", "  "])
    out = ["# syntax=docker/dockerfile:1", f"# {lang} application, multi-stage"]
    out.append(f"ARG BASE={rng.choice(BASES[lang])}")
    out.append("ARG RUNTIME=" + rng.choice(RUNTIME[lang]))
    out.append("FROM ${BASE} AS deps")
    if rng.random() < 0.7:
        out.append(_apt_block(rng, rng.randint(10, 30), True, False, indent))
    out.append("WORKDIR /src")
    stages = ["deps"]
    for k in range(rng.randint(1, 4)):
        name = f"build{k}"
        out.append(f"\nFROM {stages[-1]} AS {name}")
        out.append("COPY . .")
        out.append(_long_chain(rng, rng.randint(5, 18), indent))
        if rng.random() < 0.5:
            out.append(_heredoc_run(rng))
        if rng.random() < 0.3:
            out.append(_python_heredoc(rng))
        if rng.random() < 0.4:
            out.append("RUN --mount=type=cache,target=/root/.cache \\\n" + indent + "make -j4 all")
        stages.append(name)
    if rng.random() < 0.2:
        out.append("\nFROM deps AS build0")  # duplicate stage name
    out.append("\nFROM ${RUNTIME}")
    out.append("WORKDIR /app")
    src = rng.choice(stages[1:])
    if rng.random() < 0.15:
        src = "bulid"  # typo: unknown stage
    out.append(f"COPY --from={src} /src/out /app")
    if rng.random() < 0.4:
        out.append("COPY --from=deps /etc/ssl/certs /etc/ssl/certs")
    if rng.random() < 0.3:
        out.append("ONBUILD RUN echo child build")
    out += _mistakes(rng, lang)[:2]
    if rng.random() < 0.6:
        out.append("USER nonroot")
    elif rng.random() < 0.5:
        out.append("USER root")
    out.append(
        'ENTRYPOINT ["/app/server"]' if rng.random() < 0.7 else "ENTRYPOINT /app/server --port 8080"
    )
    return "\n".join(out) + "\n"


def main() -> int:
    rng = random.Random(SEED)
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.Dockerfile"):
        old.unlink()
    langs = sorted(BASES)
    for i in range(COUNT):
        lang = langs[i % len(langs)]
        kind = "multi" if i % 3 else "single"
        text = multi_stage(rng, lang) if kind == "multi" else single_stage(rng, lang)
        (OUT / f"{i:03d}-{lang}-{kind}.Dockerfile").write_text(text)
    print(f"wrote {COUNT} Dockerfiles to {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
