# syntax=docker/dockerfile:1
# python application, multi-stage
ARG BASE=python:3.12
ARG RUNTIME=gcr.io/distroless/python3-debian12
FROM ${BASE} AS deps
RUN apt-get update && apt-get install -y --no-install-recommends \
  ca-certificates g++ gcc \
  git gnupg iproute2 \
  jq less libffi-dev \
  libjpeg62-turbo libxml2 netcat-openbsd \
  npm pkg-config procps \
  python3-dev python3-pip python3-venv \
  tree tzdata unzip \
  zlib1g-dev \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
  curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
  echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
  find /usr/share/doc -depth -type f ! -name copyright -delete && \
  curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
  go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  chmod 0755 /usr/local/bin/tool
RUN <<-'SCRIPT'
	set -e
	echo building
	mkdir -p /opt/data
	for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
	cat /opt/data/items | sort | uniq > /opt/data/uniq
	rm -rf /tmp/*
SCRIPT

RUN python3 <<PY
import json, os
cfg = {'workers': 1, 'debug': False}
os.makedirs('/etc/app', exist_ok=True)
json.dump(cfg, open('/etc/app/config.json', 'w'))
PY


FROM build0 AS build1
COPY . .
RUN set -eux; \
  groupadd -r app && \
  npm ci --omit=dev && \
  python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  chmod 0755 /usr/local/bin/tool && \
  ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
  for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
  npm ci --omit=dev && \
  npm ci --omit=dev && \
  chmod 0755 /usr/local/bin/tool && \
  sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
  printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
  for f in /etc/app/*.conf; do test -r "$f" || exit 1; done
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

FROM build1 AS build2
COPY . .
RUN set -eux; \
  groupadd -r app && \
  python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
  wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  chmod 0755 /usr/local/bin/tool && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  git clone --depth 1 https://example.invalid/repo.git /src/repo && \
  wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
  mkdir -p /opt/app/{bin,lib,etc} && \
  mkdir -p /opt/app/{bin,lib,etc} && \
  for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  rm -rf /usr/share/man/* /usr/share/info/*

FROM build2 AS build3
COPY . .
RUN set -eux; \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
  find /usr/share/doc -depth -type f ! -name copyright -delete && \
  cp -a /src/repo/config /etc/app/ && \
  cp -a /src/repo/config /etc/app/ && \
  wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
  find /usr/share/doc -depth -type f ! -name copyright -delete && \
  ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
  sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
  ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  git clone --depth 1 https://example.invalid/repo.git /src/repo && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  useradd -r -g app -d /opt/app app && \
  useradd -r -g app -d /opt/app app

FROM ${RUNTIME}
WORKDIR /app
COPY --from=build2 /src/out /app
RUN apt-get upgrade -y
WORKDIR app
USER nonroot
ENTRYPOINT ["/app/server"]
