# syntax=docker/dockerfile:1
# node application, multi-stage
ARG BASE=node
ARG RUNTIME=node:20-slim
FROM ${BASE} AS deps
RUN apt-get update && apt-get install -y --no-install-recommends \
  build-essential dnsutils git \
  iproute2 libsqlite3-0 libssl-dev \
  locales npm pkg-config \
  python3-dev tree wget \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  npm ci --omit=dev && \
  sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
  go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
  git clone --depth 1 https://example.invalid/repo.git /src/repo && \
  ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
  mkdir -p /opt/app/{bin,lib,etc} && \
  cp -a /src/repo/config /etc/app/
RUN --mount=type=cache,target=/root/.cache \
  make -j4 all

FROM build0 AS build1
COPY . .
RUN set -eux; \
  python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
  groupadd -r app && \
  useradd -r -g app -d /opt/app app && \
  git clone --depth 1 https://example.invalid/repo.git /src/repo && \
  chmod 0755 /usr/local/bin/tool && \
  useradd -r -g app -d /opt/app app

FROM ${RUNTIME}
WORKDIR /app
COPY --from=build0 /src/out /app
ADD ./config /etc/app/config
ADD https://example.invalid/data.bin /opt/data.bin
ENTRYPOINT ["/app/server"]
