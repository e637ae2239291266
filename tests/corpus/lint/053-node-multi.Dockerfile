# syntax=docker/dockerfile:1
# node application, multi-stage
ARG BASE=node:20
ARG RUNTIME=gcr.io/distroless/nodejs20-debian12
FROM ${BASE} AS deps
RUN apt-get update && apt-get install -y --no-install-recommends \
    build-essential file gcc \
    iproute2 libffi-dev libffi8 \
    python3-dev tree tzdata \
    xz-utils \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
    printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
    echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
    sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
    if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
    sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
    find /usr/share/doc -depth -type f ! -name copyright -delete && \
    rm -rf /usr/share/man/* /usr/share/info/* && \
    mkdir -p /opt/app/{bin,lib,etc} && \
    if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi
RUN <<EOT
set -e
apt-get update
mkdir -p /opt/data
for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
cat /opt/data/items | sort | uniq > /opt/data/uniq
rm -rf /tmp/*
EOT

RUN python3 <<PY
import json, os
cfg = {'workers': 7, 'debug': False}
os.makedirs('/etc/app', exist_ok=True)
json.dump(cfg, open('/etc/app/config.json', 'w'))
PY

RUN --mount=type=cache,target=/root/.cache \
    make -j4 all

FROM build0 AS build1
COPY . .
RUN set -eux; \
    sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
    if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
    if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
    useradd -r -g app -d /opt/app app && \
    sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
    chmod 0755 /usr/local/bin/tool && \
    mkdir -p /opt/app/{bin,lib,etc} && \
    for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
    cp -a /src/repo/config /etc/app/

FROM build1 AS build2
COPY . .
RUN set -eux; \
    find /usr/share/doc -depth -type f ! -name copyright -delete && \
    git clone --depth 1 https://example.invalid/repo.git /src/repo && \
    wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
    cp -a /src/repo/config /etc/app/ && \
    rm -rf /usr/share/man/* /usr/share/info/* && \
    ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
    go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
    go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
    for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
    chmod 0755 /usr/local/bin/tool && \
    export DEBIAN_FRONTEND=noninteractive && \
    go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
    if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
    chmod 0755 /usr/local/bin/tool
RUN <<EOF
set -e
echo building
mkdir -p /opt/data
for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
cat /opt/data/items | sort | uniq > /opt/data/uniq
rm -rf /tmp/*
EOF


FROM build2 AS build3
COPY . .
RUN set -eux; \
    chmod 0755 /usr/local/bin/tool && \
    sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
    curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
    cp -a /src/repo/config /etc/app/ && \
    chmod 0755 /usr/local/bin/tool && \
    ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
    git clone --depth 1 https://example.invalid/repo.git /src/repo

FROM ${RUNTIME}
WORKDIR /app
COPY --from=build3 /src/out /app
RUN npm install -g pm2
RUN cd /opt && ls
USER nonroot
ENTRYPOINT ["/app/server"]
