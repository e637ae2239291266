# syntax=docker/dockerfile:1
# go application, multi-stage
ARG BASE=golang
ARG RUNTIME=scratch
FROM ${BASE} AS deps
RUN apt-get update && apt-get install -y --no-install-recommends \
    ca-certificates cmake curl \
    default-jre-headless dnsutils gcc \
    git gnupg less \
    libffi8 libjpeg62-turbo libsqlite3-0 \
    libssl-dev libssl3 libxslt1.1 \
    make nodejs npm \
    openssh-client pkg-config procps \
    python3-dev python3-pip python3-venv \
    tree tzdata unzip \
    vim-tiny zlib1g zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
    mkdir -p /opt/app/{bin,lib,etc} && \
    cp -a /src/repo/config /etc/app/ && \
    chmod 0755 /usr/local/bin/tool && \
    useradd -r -g app -d /opt/app app && \
    useradd -r -g app -d /opt/app app && \
    find /usr/share/doc -depth -type f ! -name copyright -delete && \
    useradd -r -g app -d /opt/app app && \
    printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
    if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
    if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
    chmod 0755 /usr/local/bin/tool && \
    npm ci --omit=dev && \
    find /usr/share/doc -depth -type f ! -name copyright -delete && \
    git clone --depth 1 https://example.invalid/repo.git /src/repo

FROM ${RUNTIME}
WORKDIR /app
COPY --from=bulid /src/out /app
RUN pip install requests
RUN rm -rf /var/lib/apt/lists/*
USER nonroot
ENTRYPOINT ["/app/server"]
