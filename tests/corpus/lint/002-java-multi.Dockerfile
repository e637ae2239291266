# syntax=docker/dockerfile:1
# java application, multi-stage
ARG BASE=maven:3.9-eclipse-temurin-21
ARG RUNTIME=eclipse-temurin:21-jre
FROM ${BASE} AS deps
RUN apt-get update && apt-get install -y --no-install-recommends \
    build-essential ca-certificates default-jre-headless \
    dnsutils less libpq5 \
    libssl-dev libxslt1.1 npm \
    procps python3 python3-pip \
    tree unzip \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
    go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
    go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
    echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
    curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
    export DEBIAN_FRONTEND=noninteractive && \
    cp -a /src/repo/config /etc/app/ && \
    chmod 0755 /usr/local/bin/tool && \
    ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
    groupadd -r app && \
    ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
    ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
    ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
    useradd -r -g app -d /opt/app app && \
    printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
    useradd -r -g app -d /opt/app app && \
    python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
    python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
    sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen
RUN --mount=type=cache,target=/root/.cache \
    make -j4 all

FROM build0 AS build1
COPY . .
RUN set -eux; \
    sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
    mkdir -p /opt/app/{bin,lib,etc} && \
    ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
    groupadd -r app && \
    groupadd -r app && \
    python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
    mkdir -p /opt/app/{bin,lib,etc} && \
    wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
    find /usr/share/doc -depth -type f ! -name copyright -delete && \
    wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg
RUN <<EOF
set -e
apt-get update
mkdir -p /opt/data
for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
cat /opt/data/items | sort | uniq > /opt/data/uniq
rm -rf /tmp/*
EOF


FROM deps AS build0

FROM ${RUNTIME}
WORKDIR /app
COPY --from=build0 /src/out /app
COPY --from=deps /etc/ssl/certs /etc/ssl/certs
MAINTAINER someone@example.invalid
ENV API_TOKEN=changeme
USER root
ENTRYPOINT ["/app/server"]
