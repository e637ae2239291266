# syntax=docker/dockerfile:1
# java application, multi-stage
ARG BASE=maven:3.9-eclipse-temurin-21
ARG RUNTIME=gcr.io/distroless/java21-debian12
FROM ${BASE} AS deps
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
    cp -a /src/repo/config /etc/app/ && \
    mkdir -p /opt/app/{bin,lib,etc} && \
    wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
    go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
    ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
    groupadd -r app && \
    find /usr/share/doc -depth -type f ! -name copyright -delete && \
    printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
    curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
    printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
    export DEBIAN_FRONTEND=noninteractive && \
    export DEBIAN_FRONTEND=noninteractive && \
    chmod 0755 /usr/local/bin/tool && \
    mkdir -p /opt/app/{bin,lib,etc} && \
    chmod 0755 /usr/local/bin/tool && \
    mkdir -p /opt/app/{bin,lib,etc} && \
    git clone --depth 1 https://example.invalid/repo.git /src/repo && \
    find /usr/share/doc -depth -type f ! -name copyright -delete
RUN --mount=type=cache,target=/root/.cache \
    make -j4 all

FROM ${RUNTIME}
WORKDIR /app
COPY --from=build0 /src/out /app
ONBUILD RUN echo child build
RUN rm -rf /var/lib/apt/lists/*
ENV API_TOKEN=changeme
USER nonroot
ENTRYPOINT ["/app/server"]
