# syntax=docker/dockerfile:1
# node application, multi-stage
ARG BASE=node:20-slim
ARG RUNTIME=node:20-slim
FROM ${BASE} AS deps
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
  cp -a /src/repo/config /etc/app/ && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  npm ci --omit=dev && \
  npm ci --omit=dev && \
  ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
  ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
  groupadd -r app && \
  python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
  for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
  groupadd -r app && \
  cp -a /src/repo/config /etc/app/ && \
  for f in /etc/app/*.conf; do test -r "$f" || exit 1; done
RUN --mount=type=cache,target=/root/.cache \
  make -j4 all

FROM build0 AS build1
COPY . .
RUN set -eux; \
  useradd -r -g app -d /opt/app app && \
  git clone --depth 1 https://example.invalid/repo.git /src/repo && \
  export DEBIAN_FRONTEND=noninteractive && \
  export DEBIAN_FRONTEND=noninteractive && \
  go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
  chmod 0755 /usr/local/bin/tool
RUN <<'EOF'
set -e
echo building
mkdir -p /opt/data
for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
cat /opt/data/items | sort | uniq > /opt/data/uniq
rm -rf /tmp/*
EOF

RUN python3 <<PY
import json, os
cfg = {'workers': 7, 'debug': False}
os.makedirs('/etc/app', exist_ok=True)
json.dump(cfg, open('/etc/app/config.json', 'w'))
PY


FROM build1 AS build2
COPY . .
RUN set -eux; \
  curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
  groupadd -r app && \
  ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
  mkdir -p /opt/app/{bin,lib,etc} && \
  find /usr/share/doc -depth -type f ! -name copyright -delete && \
  groupadd -r app && \
  wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
  chmod 0755 /usr/local/bin/tool && \
  npm ci --omit=dev && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  npm ci --omit=dev && \
  git clone --depth 1 https://example.invalid/repo.git /src/repo && \
  chmod 0755 /usr/local/bin/tool && \
  export DEBIAN_FRONTEND=noninteractive
RUN --mount=type=cache,target=/root/.cache \
  make -j4 all

FROM deps AS build0

FROM ${RUNTIME}
WORKDIR /app
COPY --from=build2 /src/out /app
ONBUILD RUN echo child build
ADD https://example.invalid/data.bin /opt/data.bin
USER nonroot
ENTRYPOINT ["/app/server"]
