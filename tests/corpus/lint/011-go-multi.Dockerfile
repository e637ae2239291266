# syntax=docker/dockerfile:1
# go application, multi-stage
ARG BASE=golang:1.22
ARG RUNTIME=debian:bookworm-slim
FROM ${BASE} AS deps
RUN apt-get update && apt-get install -y --no-install-recommends \
    ca-certificates cmake curl \
    git gnupg iproute2 \
    jq less libffi-dev \
    libffi8 libjpeg62-turbo libxml2 \
    locales nodejs python3 \
    python3-dev tree tzdata \
    unzip vim-tiny wget \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
    wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
    rm -rf /usr/share/man/* /usr/share/info/* && \
    find /usr/share/doc -depth -type f ! -name copyright -delete && \
    npm ci --omit=dev && \
    mkdir -p /opt/app/{bin,lib,etc} && \
    wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
    curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
    python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
    printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
    go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
    echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
    chmod 0755 /usr/local/bin/tool && \
    sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
    for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
    groupadd -r app && \
    mkdir -p /opt/app/{bin,lib,etc}

FROM build0 AS build1
COPY . .
RUN set -eux; \
    printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
    export DEBIAN_FRONTEND=noninteractive && \
    find /usr/share/doc -depth -type f ! -name copyright -delete && \
    rm -rf /usr/share/man/* /usr/share/info/* && \
    rm -rf /usr/share/man/* /usr/share/info/* && \
    rm -rf /usr/share/man/* /usr/share/info/* && \
    cp -a /src/repo/config /etc/app/ && \
    find /usr/share/doc -depth -type f ! -name copyright -delete && \
    if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
    rm -rf /usr/share/man/* /usr/share/info/* && \
    chmod 0755 /usr/local/bin/tool && \
    go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
    curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin
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
    rm -rf /usr/share/man/* /usr/share/info/* && \
    if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
    for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
    python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
    wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
    curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
    printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
    printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
    find /usr/share/doc -depth -type f ! -name copyright -delete && \
    export DEBIAN_FRONTEND=noninteractive && \
    ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
    mkdir -p /opt/app/{bin,lib,etc} && \
    echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
    rm -rf /usr/share/man/* /usr/share/info/* && \
    ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
    export DEBIAN_FRONTEND=noninteractive
RUN --mount=type=cache,target=/root/.cache \
    make -j4 all

FROM deps AS build0

FROM ${RUNTIME}
WORKDIR /app
COPY --from=bulid /src/out /app
COPY --from=deps /etc/ssl/certs /etc/ssl/certs
ONBUILD RUN echo child build
RUN curl -fsSL https://example.invalid/install.sh | sh
ARG DB_PASSWORD
USER root
ENTRYPOINT ["/app/server"]
