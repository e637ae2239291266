# syntax=docker/dockerfile:1
# go application, multi-stage
ARG BASE=golang:1.22
ARG RUNTIME=gcr.io/distroless/static-debian12:nonroot
FROM ${BASE} AS deps
RUN apt-get update && apt-get install -y --no-install-recommends \
    curl default-jre-headless dnsutils \
    file g++ gcc \
    git libffi8 libjpeg62-turbo \
    libpq5 libsqlite3-0 libssl-dev \
    libssl3 libxml2 locales \
    make nodejs npm \
    openssh-client pkg-config procps \
    python3 python3-dev python3-pip \
    python3-venv tree vim-tiny \
    wget xz-utils zlib1g \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
    mkdir -p /opt/app/{bin,lib,etc} && \
    echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
    python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
    rm -rf /usr/share/man/* /usr/share/info/* && \
    ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
    printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
    mkdir -p /opt/app/{bin,lib,etc} && \
    curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
    mkdir -p /opt/app/{bin,lib,etc} && \
    cp -a /src/repo/config /etc/app/
RUN <<'SCRIPT'
set -e
echo building
mkdir -p /opt/data
for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
cat /opt/data/items | sort | uniq > /opt/data/uniq
rm -rf /tmp/*
SCRIPT

RUN --mount=type=cache,target=/root/.cache \
    make -j4 all

FROM ${RUNTIME}
WORKDIR /app
COPY --from=build0 /src/out /app
COPY --from=deps /etc/ssl/certs /etc/ssl/certs
ADD ./config /etc/app/config
ADD https://example.invalid/data.bin /opt/data.bin
USER nonroot
ENTRYPOINT /app/server --port 8080
