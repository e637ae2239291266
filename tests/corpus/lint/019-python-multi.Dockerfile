# syntax=docker/dockerfile:1
# python application, multi-stage
ARG BASE=python:3.12-slim
ARG RUNTIME=python:3.12
FROM ${BASE} AS deps
RUN apt-get update && apt-get install -y --no-install-recommends \
  build-essential cmake curl \
  default-jre-headless jq less \
  libssl3 libxml2 netcat-openbsd \
  nodejs python3 python3-dev \
  python3-venv tree unzip \
  vim-tiny zlib1g \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
  groupadd -r app && \
  wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
  rm -rf /usr/share/man/* /usr/share/info/* && \
  groupadd -r app && \
  export DEBIAN_FRONTEND=noninteractive && \
  useradd -r -g app -d /opt/app app
RUN python3 <<PY
import json, os
cfg = {'workers': 5, 'debug': False}
os.makedirs('/etc/app', exist_ok=True)
json.dump(cfg, open('/etc/app/config.json', 'w'))
PY


FROM build0 AS build1
COPY . .
RUN set -eux; \
  find /usr/share/doc -depth -type f ! -name copyright -delete && \
  mkdir -p /opt/app/{bin,lib,etc} && \
  npm ci --omit=dev && \
  sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
  ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
  git clone --depth 1 https://example.invalid/repo.git /src/repo && \
  groupadd -r app && \
  cp -a /src/repo/config /etc/app/ && \
  chmod 0755 /usr/local/bin/tool && \
  curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
  export DEBIAN_FRONTEND=noninteractive && \
  sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
  cp -a /src/repo/config /etc/app/ && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  export DEBIAN_FRONTEND=noninteractive && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  rm -rf /usr/share/man/* /usr/share/info/*
RUN <<EOT
set -e
echo building
mkdir -p /opt/data
for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
cat /opt/data/items | sort | uniq > /opt/data/uniq
rm -rf /tmp/*
EOT

RUN --mount=type=cache,target=/root/.cache \
  make -j4 all

FROM ${RUNTIME}
WORKDIR /app
COPY --from=build1 /src/out /app
RUN rm -rf /var/lib/apt/lists/*
MAINTAINER someone@example.invalid
USER root
ENTRYPOINT ["/app/server"]
