# syntax=docker/dockerfile:1
# java application, multi-stage
ARG BASE=openjdk:17
ARG RUNTIME=gcr.io/distroless/java21-debian12
FROM ${BASE} AS deps
RUN apt-get update && apt-get install -y --no-install-recommends \
  default-jre-headless file gcc \
  libffi-dev libssl3 libxml2 \
  libxslt1.1 make procps \
  unzip zlib1g \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
  echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
  export DEBIAN_FRONTEND=noninteractive && \
  echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
  sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
  find /usr/share/doc -depth -type f ! -name copyright -delete && \
  npm ci --omit=dev && \
  export DEBIAN_FRONTEND=noninteractive && \
  npm ci --omit=dev && \
  mkdir -p /opt/app/{bin,lib,etc} && \
  python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
  rm -rf /usr/share/man/* /usr/share/info/* && \
  go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  chmod 0755 /usr/local/bin/tool && \
  python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
  rm -rf /usr/share/man/* /usr/share/info/*
RUN <<EOT
set -e
apt-get update
mkdir -p /opt/data
for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
cat /opt/data/items | sort | uniq > /opt/data/uniq
rm -rf /tmp/*
EOT

RUN python3 <<PY
import json, os
cfg = {'workers': 6, 'debug': False}
os.makedirs('/etc/app', exist_ok=True)
json.dump(cfg, open('/etc/app/config.json', 'w'))
PY

RUN --mount=type=cache,target=/root/.cache \
  make -j4 all

FROM ${RUNTIME}
WORKDIR /app
COPY --from=build0 /src/out /app
RUN sudo apt-get install -y htop
USER nonroot
ENTRYPOINT ["/app/server"]
