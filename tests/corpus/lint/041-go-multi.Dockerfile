# syntax=docker/dockerfile:1
# go application, multi-stage
ARG BASE=golang:1.22-bookworm
ARG RUNTIME=scratch
FROM ${BASE} AS deps
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
  chmod 0755 /usr/local/bin/tool && \
  cp -a /src/repo/config /etc/app/ && \
  cp -a /src/repo/config /etc/app/ && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  groupadd -r app && \
  ln -sf /usr/share/zoneinfo/UTC /etc/localtime
RUN python3 <<PY
import json, os
cfg = {'workers': 5, 'debug': False}
os.makedirs('/etc/app', exist_ok=True)
json.dump(cfg, open('/etc/app/config.json', 'w'))
PY

RUN --mount=type=cache,target=/root/.cache \
  make -j4 all

FROM build0 AS build1
COPY . .
RUN set -eux; \
  curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
  cp -a /src/repo/config /etc/app/ && \
  curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
  cp -a /src/repo/config /etc/app/ && \
  go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
  cp -a /src/repo/config /etc/app/ && \
  useradd -r -g app -d /opt/app app && \
  npm ci --omit=dev && \
  python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
  wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
  useradd -r -g app -d /opt/app app
RUN python3 <<PY
import json, os
cfg = {'workers': 5, 'debug': False}
os.makedirs('/etc/app', exist_ok=True)
json.dump(cfg, open('/etc/app/config.json', 'w'))
PY


FROM build1 AS build2
COPY . .
RUN set -eux; \
  wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
  find /usr/share/doc -depth -type f ! -name copyright -delete && \
  export DEBIAN_FRONTEND=noninteractive && \
  for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
  mkdir -p /opt/app/{bin,lib,etc} && \
  cp -a /src/repo/config /etc/app/ && \
  groupadd -r app && \
  curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
  echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
  echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
  find /usr/share/doc -depth -type f ! -name copyright -delete && \
  python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
  for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
  go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app

FROM build2 AS build3
COPY . .
RUN set -eux; \
  ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
  curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
  cp -a /src/repo/config /etc/app/ && \
  curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
  groupadd -r app
RUN <<'SCRIPT'
set -e
apt-get update
mkdir -p /opt/data
for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
cat /opt/data/items | sort | uniq > /opt/data/uniq
rm -rf /tmp/*
SCRIPT

RUN python3 <<PY
import json, os
cfg = {'workers': 5, 'debug': False}
os.makedirs('/etc/app', exist_ok=True)
json.dump(cfg, open('/etc/app/config.json', 'w'))
PY

RUN --mount=type=cache,target=/root/.cache \
  make -j4 all

FROM ${RUNTIME}
WORKDIR /app
COPY --from=build3 /src/out /app
ONBUILD RUN echo child build
RUN pip install requests
RUN sudo apt-get install -y htop
USER nonroot
ENTRYPOINT ["/app/server"]
