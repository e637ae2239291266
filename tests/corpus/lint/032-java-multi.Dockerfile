# syntax=docker/dockerfile:1
# java application, multi-stage
ARG BASE=eclipse-temurin:21-jre
ARG RUNTIME=eclipse-temurin:21-jre
FROM ${BASE} AS deps
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
    wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
    mkdir -p /opt/app/{bin,lib,etc} && \
    export DEBIAN_FRONTEND=noninteractive && \
    sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
    for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
    export DEBIAN_FRONTEND=noninteractive && \
    ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
    export DEBIAN_FRONTEND=noninteractive && \
    groupadd -r app && \
    for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
    printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
    curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
    go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
    git clone --depth 1 https://example.invalid/repo.git /src/repo && \
    curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
    rm -rf /usr/share/man/* /usr/share/info/* && \
    find /usr/share/doc -depth -type f ! -name copyright -delete && \
    printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf
RUN --mount=type=cache,target=/root/.cache \
    make -j4 all

FROM build0 AS build1
COPY . .
RUN set -eux; \
    for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
    git clone --depth 1 https://example.invalid/repo.git /src/repo && \
    mkdir -p /opt/app/{bin,lib,etc} && \
    sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
    printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf
RUN <<SCRIPT
set -e
echo building
mkdir -p /opt/data
for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
cat /opt/data/items | sort | uniq > /opt/data/uniq
rm -rf /tmp/*
SCRIPT

RUN python3 <<PY
import json, os
cfg = {'workers': 8, 'debug': False}
os.makedirs('/etc/app', exist_ok=True)
json.dump(cfg, open('/etc/app/config.json', 'w'))
PY


FROM build1 AS build2
COPY . .
RUN set -eux; \
    curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
    groupadd -r app && \
    git clone --depth 1 https://example.invalid/repo.git /src/repo && \
    groupadd -r app && \
    python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
    git clone --depth 1 https://example.invalid/repo.git /src/repo && \
    find /usr/share/doc -depth -type f ! -name copyright -delete

FROM ${RUNTIME}
WORKDIR /app
COPY --from=build0 /src/out /app
ONBUILD RUN echo child build
ARG DB_PASSWORD
RUN curl -fsSL https://example.invalid/install.sh | sh
ENTRYPOINT /app/server --port 8080
