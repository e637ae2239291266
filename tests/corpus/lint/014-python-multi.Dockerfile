# syntax=docker/dockerfile:1
# python application, multi-stage
ARG BASE=python:3.12-slim
ARG RUNTIME=python:3.12
FROM ${BASE} AS deps
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
  mkdir -p /opt/app/{bin,lib,etc} && \
  npm ci --omit=dev && \
  sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
  sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
  chmod 0755 /usr/local/bin/tool
RUN python3 <<PY
import json, os
cfg = {'workers': 2, 'debug': False}
os.makedirs('/etc/app', exist_ok=True)
json.dump(cfg, open('/etc/app/config.json', 'w'))
PY


FROM build0 AS build1
COPY . .
RUN set -eux; \
  rm -rf /usr/share/man/* /usr/share/info/* && \
  groupadd -r app && \
  useradd -r -g app -d /opt/app app && \
  export DEBIAN_FRONTEND=noninteractive && \
  go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
  chmod 0755 /usr/local/bin/tool && \
  wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
  python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
  python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
  npm ci --omit=dev && \
  chmod 0755 /usr/local/bin/tool
RUN <<'EOF'
set -e
echo building
mkdir -p /opt/data
for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
cat /opt/data/items | sort | uniq > /opt/data/uniq
rm -rf /tmp/*
EOF


FROM build1 AS build2
COPY . .
RUN set -eux; \
  wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
  curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
  wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
  chmod 0755 /usr/local/bin/tool && \
  wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
  ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
  useradd -r -g app -d /opt/app app && \
  echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
  git clone --depth 1 https://example.invalid/repo.git /src/repo && \
  curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
  go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
  python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
  printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
  rm -rf /usr/share/man/* /usr/share/info/* && \
  python3 -m pip install --no-cache-dir -r /tmp/requirements.txt
RUN --mount=type=cache,target=/root/.cache \
  make -j4 all

FROM ${RUNTIME}
WORKDIR /app
COPY --from=build0 /src/out /app
COPY --from=deps /etc/ssl/certs /etc/ssl/certs
RUN npm install -g pm2
RUN pip install requests
USER nonroot
ENTRYPOINT ["/app/server"]
