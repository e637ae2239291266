# syntax=docker/dockerfile:1
# go application, multi-stage
ARG BASE=golang:1.22
ARG RUNTIME=debian:bookworm-slim
FROM ${BASE} AS deps
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
    go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
    ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
    groupadd -r app && \
    go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
    npm ci --omit=dev && \
    cp -a /src/repo/config /etc/app/ && \
    sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
    groupadd -r app && \
    rm -rf /usr/share/man/* /usr/share/info/* && \
    groupadd -r app && \
    echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
    sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen
RUN <<'EOT'
set -e
apt-get update
mkdir -p /opt/data
for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
cat /opt/data/items | sort | uniq > /opt/data/uniq
rm -rf /tmp/*
EOT

RUN python3 <<PY
import json, os
cfg = {'workers': 3, 'debug': False}
os.makedirs('/etc/app', exist_ok=True)
json.dump(cfg, open('/etc/app/config.json', 'w'))
PY

RUN --mount=type=cache,target=/root/.cache \
    make -j4 all

FROM build0 AS build1
COPY . .
RUN set -eux; \
    go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
    wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
    git clone --depth 1 https://example.invalid/repo.git /src/repo && \
    if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
    useradd -r -g app -d /opt/app app && \
    cp -a /src/repo/config /etc/app/ && \
    ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
    mkdir -p /opt/app/{bin,lib,etc} && \
    curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
    ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
    groupadd -r app && \
    git clone --depth 1 https://example.invalid/repo.git /src/repo

FROM build1 AS build2
COPY . .
RUN set -eux; \
    cp -a /src/repo/config /etc/app/ && \
    ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
    if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
    useradd -r -g app -d /opt/app app && \
    find /usr/share/doc -depth -type f ! -name copyright -delete && \
    export DEBIAN_FRONTEND=noninteractive && \
    rm -rf /usr/share/man/* /usr/share/info/* && \
    find /usr/share/doc -depth -type f ! -name copyright -delete && \
    curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
    find /usr/share/doc -depth -type f ! -name copyright -delete && \
    printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
    git clone --depth 1 https://example.invalid/repo.git /src/repo
RUN <<EOF
set -e
apt-get update
mkdir -p /opt/data
for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
cat /opt/data/items | sort | uniq > /opt/data/uniq
rm -rf /tmp/*
EOF

RUN python3 <<PY
import json, os
cfg = {'workers': 5, 'debug': False}
os.makedirs('/etc/app', exist_ok=True)
json.dump(cfg, open('/etc/app/config.json', 'w'))
PY


FROM build2 AS build3
COPY . .
RUN set -eux; \
    for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
    printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
    ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
    chmod 0755 /usr/local/bin/tool && \
    wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
    ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
    rm -rf /usr/share/man/* /usr/share/info/*
RUN <<EOF
set -e
apt-get update
mkdir -p /opt/data
for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
cat /opt/data/items | sort | uniq > /opt/data/uniq
rm -rf /tmp/*
EOF


FROM ${RUNTIME}
WORKDIR /app
COPY --from=build3 /src/out /app
WORKDIR app
RUN cd /opt && ls
USER nonroot
ENTRYPOINT ["/app/server"]
