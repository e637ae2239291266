# syntax=docker/dockerfile:1
# debian application, multi-stage
ARG BASE=ubuntu:22.04
ARG RUNTIME=debian:bookworm-slim
FROM ${BASE} AS deps
RUN apt-get update && apt-get install -y --no-install-recommends \
    build-essential default-jre-headless dnsutils \
    file g++ gnupg \
    libjpeg62-turbo libpng16-16 libsqlite3-0 \
    libssl3 libxml2 locales \
    netcat-openbsd openssh-client python3 \
    python3-dev python3-venv tree \
    tzdata unzip vim-tiny \
    xz-utils zlib1g \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
    printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
    mkdir -p /opt/app/{bin,lib,etc} && \
    cp -a /src/repo/config /etc/app/ && \
    chmod 0755 /usr/local/bin/tool && \
    ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
    find /usr/share/doc -depth -type f ! -name copyright -delete && \
    sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
    mkdir -p /opt/app/{bin,lib,etc} && \
    mkdir -p /opt/app/{bin,lib,etc} && \
    git clone --depth 1 https://example.invalid/repo.git /src/repo && \
    cp -a /src/repo/config /etc/app/ && \
    go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
    curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
    export DEBIAN_FRONTEND=noninteractive && \
    wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
    curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
    curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
    for f in /etc/app/*.conf; do test -r "$f" || exit 1; done
RUN python3 <<PY
import json, os
cfg = {'workers': 6, 'debug': False}
os.makedirs('/etc/app', exist_ok=True)
json.dump(cfg, open('/etc/app/config.json', 'w'))
PY

RUN --mount=type=cache,target=/root/.cache \
    make -j4 all

FROM build0 AS build1
COPY . .
RUN set -eux; \
    wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
    groupadd -r app && \
    cp -a /src/repo/config /etc/app/ && \
    chmod 0755 /usr/local/bin/tool && \
    if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
    echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
    curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
    python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
    go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
    python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
    export DEBIAN_FRONTEND=noninteractive && \
    chmod 0755 /usr/local/bin/tool && \
    echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
    groupadd -r app
RUN <<EOF
set -e
apt-get update
mkdir -p /opt/data
for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
cat /opt/data/items | sort | uniq > /opt/data/uniq
rm -rf /tmp/*
EOF


FROM build1 AS build2
COPY . .
RUN set -eux; \
    if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
    rm -rf /usr/share/man/* /usr/share/info/* && \
    echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
    export DEBIAN_FRONTEND=noninteractive && \
    printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
    curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin
RUN --mount=type=cache,target=/root/.cache \
    make -j4 all

FROM ${RUNTIME}
WORKDIR /app
COPY --from=build2 /src/out /app
COPY --from=deps /etc/ssl/certs /etc/ssl/certs
ONBUILD RUN echo child build
ARG DB_PASSWORD
RUN curl -fsSL https://example.invalid/install.sh | sh
USER nonroot
ENTRYPOINT /app/server --port 8080
