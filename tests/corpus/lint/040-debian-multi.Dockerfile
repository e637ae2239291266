# syntax=docker/dockerfile:1
# debian application, multi-stage
ARG BASE=ubuntu:22.04
ARG RUNTIME=debian:bookworm
FROM ${BASE} AS deps
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
  wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
  cp -a /src/repo/config /etc/app/ && \
  go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
  python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
  find /usr/share/doc -depth -type f ! -name copyright -delete && \
  mkdir -p /opt/app/{bin,lib,etc}
RUN --mount=type=cache,target=/root/.cache \
  make -j4 all

FROM ${RUNTIME}
WORKDIR /app
COPY --from=build0 /src/out /app
COPY --from=deps /etc/ssl/certs /etc/ssl/certs
ONBUILD RUN echo child build
RUN rm -rf /var/lib/apt/lists/*
MAINTAINER someone@example.invalid
USER nonroot
ENTRYPOINT /app/server --port 8080
