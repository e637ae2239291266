# syntax=docker/dockerfile:1
# java application, multi-stage
ARG BASE=maven:3.9-eclipse-temurin-21
ARG RUNTIME=eclipse-temurin:21-jre
FROM ${BASE} AS deps
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
  go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
  export DEBIAN_FRONTEND=noninteractive && \
  mkdir -p /opt/app/{bin,lib,etc} && \
  curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
  sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
  for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
  python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
  echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
  groupadd -r app && \
  for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
  find /usr/share/doc -depth -type f ! -name copyright -delete && \
  ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
  chmod 0755 /usr/local/bin/tool && \
  find /usr/share/doc -depth -type f ! -name copyright -delete && \
  wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
  wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg
RUN --mount=type=cache,target=/root/.cache \
  make -j4 all

FROM build0 AS build1
COPY . .
RUN set -eux; \
  groupadd -r app && \
  go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
  wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
  ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
  useradd -r -g app -d /opt/app app && \
  useradd -r -g app -d /opt/app app && \
  ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
  rm -rf /usr/share/man/* /usr/share/info/*
RUN <<-EOT
	set -e
	apt-get update
	mkdir -p /opt/data
	for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
	cat /opt/data/items | sort | uniq > /opt/data/uniq
	rm -rf /tmp/*
EOT

RUN --mount=type=cache,target=/root/.cache \
  make -j4 all

FROM build1 AS build2
COPY . .
RUN set -eux; \
  groupadd -r app && \
  rm -rf /usr/share/man/* /usr/share/info/* && \
  curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
  cp -a /src/repo/config /etc/app/ && \
  echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
  useradd -r -g app -d /opt/app app && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  npm ci --omit=dev && \
  git clone --depth 1 https://example.invalid/repo.git /src/repo && \
  groupadd -r app && \
  chmod 0755 /usr/local/bin/tool && \
  cp -a /src/repo/config /etc/app/
RUN python3 <<PY
import json, os
cfg = {'workers': 4, 'debug': False}
os.makedirs('/etc/app', exist_ok=True)
json.dump(cfg, open('/etc/app/config.json', 'w'))
PY

RUN --mount=type=cache,target=/root/.cache \
  make -j4 all

FROM ${RUNTIME}
WORKDIR /app
COPY --from=build2 /src/out /app
COPY --from=deps /etc/ssl/certs /etc/ssl/certs
ARG DB_PASSWORD
RUN cd /opt && ls
USER nonroot
ENTRYPOINT /app/server --port 8080
