# syntax=docker/dockerfile:1
# java application, multi-stage
ARG BASE=maven:3.9-eclipse-temurin-21
ARG RUNTIME=eclipse-temurin:21-jre
FROM ${BASE} AS deps
RUN apt-get update && apt-get install -y --no-install-recommends \
    build-essential ca-certificates cmake \
    dnsutils file git \
    libffi8 libjpeg62-turbo libxslt1.1 \
    locales nodejs npm \
    python3 python3-pip python3-venv \
    tree tzdata vim-tiny \
    wget zlib1g zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
    cp -a /src/repo/config /etc/app/ && \
    groupadd -r app && \
    export DEBIAN_FRONTEND=noninteractive && \
    ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
    sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
    groupadd -r app && \
    npm ci --omit=dev && \
    echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
    ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
    npm ci --omit=dev && \
    find /usr/share/doc -depth -type f ! -name copyright -delete && \
    python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
    for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
    npm ci --omit=dev && \
    chmod 0755 /usr/local/bin/tool && \
    curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
    groupadd -r app && \
    go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app
RUN <<'SCRIPT'
set -e
echo building
mkdir -p /opt/data
for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
cat /opt/data/items | sort | uniq > /opt/data/uniq
rm -rf /tmp/*
SCRIPT

RUN python3 <<PY
import json, os
cfg = {'workers': 2, 'debug': False}
os.makedirs('/etc/app', exist_ok=True)
json.dump(cfg, open('/etc/app/config.json', 'w'))
PY


FROM ${RUNTIME}
WORKDIR /app
COPY --from=build0 /src/out /app
COPY --from=deps /etc/ssl/certs /etc/ssl/certs
ONBUILD RUN echo child build
RUN rm -rf /var/lib/apt/lists/*
RUN apt-get upgrade -y
USER nonroot
ENTRYPOINT ["/app/server"]
