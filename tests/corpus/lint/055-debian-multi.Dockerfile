# syntax=docker/dockerfile:1
# debian application, multi-stage
ARG BASE=debian:bookworm
ARG RUNTIME=debian:bookworm
FROM ${BASE} AS deps
RUN apt-get update && apt-get install -y --no-install-recommends \
    build-essential ca-certificates curl \
    default-jre-headless dnsutils g++ \
    gcc git gnupg \
    iproute2 jq less \
    libffi-dev libffi8 libjpeg62-turbo \
    libpq5 libssl-dev libssl3 \
    libxslt1.1 locales netcat-openbsd \
    nodejs pkg-config python3-dev \
    python3-pip python3-venv tzdata \
    unzip wget xz-utils \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
    sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
    chmod 0755 /usr/local/bin/tool && \
    curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
    cp -a /src/repo/config /etc/app/ && \
    groupadd -r app && \
    python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
    go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
    curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
    echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh

FROM build0 AS build1
COPY . .
RUN set -eux; \
    find /usr/share/doc -depth -type f ! -name copyright -delete && \
    mkdir -p /opt/app/{bin,lib,etc} && \
    printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
    chmod 0755 /usr/local/bin/tool && \
    wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg
RUN --mount=type=cache,target=/root/.cache \
    make -j4 all

FROM build1 AS build2
COPY . .
RUN set -eux; \
    find /usr/share/doc -depth -type f ! -name copyright -delete && \
    echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
    sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
    mkdir -p /opt/app/{bin,lib,etc} && \
    sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
    groupadd -r app && \
    cp -a /src/repo/config /etc/app/ && \
    cp -a /src/repo/config /etc/app/ && \
    git clone --depth 1 https://example.invalid/repo.git /src/repo && \
    python3 -m pip install --no-cache-dir -r /tmp/requirements.txt

FROM deps AS build0

FROM ${RUNTIME}
WORKDIR /app
COPY --from=bulid /src/out /app
ADD https://example.invalid/data.bin /opt/data.bin
RUN sudo apt-get install -y htop
ENTRYPOINT ["/app/server"]
