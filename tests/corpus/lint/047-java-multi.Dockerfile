# syntax=docker/dockerfile:1
# java application, multi-stage
ARG BASE=eclipse-temurin:21-jre
ARG RUNTIME=eclipse-temurin:21-jre
FROM ${BASE} AS deps
RUN apt-get update && apt-get install -y --no-install-recommends \
    build-essential ca-certificates cmake \
    default-jre-headless dnsutils gcc \
    git gnupg jq \
    libffi-dev libffi8 libjpeg62-turbo \
    libpng16-16 libpq5 libsqlite3-0 \
    libssl3 libxml2 libxslt1.1 \
    locales netcat-openbsd npm \
    openssh-client pkg-config tzdata \
    unzip vim-tiny wget \
    xz-utils zlib1g zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
    wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
    git clone --depth 1 https://example.invalid/repo.git /src/repo && \
    npm ci --omit=dev && \
    printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
    useradd -r -g app -d /opt/app app && \
    useradd -r -g app -d /opt/app app && \
    useradd -r -g app -d /opt/app app && \
    useradd -r -g app -d /opt/app app && \
    find /usr/share/doc -depth -type f ! -name copyright -delete && \
    curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
    npm ci --omit=dev && \
    npm ci --omit=dev && \
    sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
    for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
    echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh

FROM build0 AS build1
COPY . .
RUN set -eux; \
    python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
    useradd -r -g app -d /opt/app app && \
    groupadd -r app && \
    cp -a /src/repo/config /etc/app/ && \
    groupadd -r app && \
    python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
    curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
    groupadd -r app && \
    for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
    find /usr/share/doc -depth -type f ! -name copyright -delete && \
    mkdir -p /opt/app/{bin,lib,etc} && \
    ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
    if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
    go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
    sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
    npm ci --omit=dev

FROM ${RUNTIME}
WORKDIR /app
COPY --from=build0 /src/out /app
RUN pip install requests
ENV API_TOKEN=changeme
USER nonroot
ENTRYPOINT ["/app/server"]
