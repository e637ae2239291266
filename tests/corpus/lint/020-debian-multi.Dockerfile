# syntax=docker/dockerfile:1
# debian application, multi-stage
ARG BASE=debian:bookworm-slim
ARG RUNTIME=debian:bookworm
FROM ${BASE} AS deps
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
  curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
  echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
  mkdir -p /opt/app/{bin,lib,etc} && \
  cp -a /src/repo/config /etc/app/ && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  cp -a /src/repo/config /etc/app/ && \
  npm ci --omit=dev && \
  chmod 0755 /usr/local/bin/tool && \
  go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
  useradd -r -g app -d /opt/app app && \
  cp -a /src/repo/config /etc/app/ && \
  useradd -r -g app -d /opt/app app
RUN <<-SCRIPT
	set -e
	apt-get update
	mkdir -p /opt/data
	for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
	cat /opt/data/items | sort | uniq > /opt/data/uniq
	rm -rf /tmp/*
SCRIPT


FROM build0 AS build1
COPY . .
RUN set -eux; \
  mkdir -p /opt/app/{bin,lib,etc} && \
  curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
  export DEBIAN_FRONTEND=noninteractive && \
  find /usr/share/doc -depth -type f ! -name copyright -delete && \
  useradd -r -g app -d /opt/app app && \
  python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
  rm -rf /usr/share/man/* /usr/share/info/* && \
  useradd -r -g app -d /opt/app app && \
  chmod 0755 /usr/local/bin/tool && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  mkdir -p /opt/app/{bin,lib,etc} && \
  export DEBIAN_FRONTEND=noninteractive
RUN <<EOT
set -e
echo building
mkdir -p /opt/data
for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
cat /opt/data/items | sort | uniq > /opt/data/uniq
rm -rf /tmp/*
EOT

RUN python3 <<PY
import json, os
cfg = {'workers': 1, 'debug': False}
os.makedirs('/etc/app', exist_ok=True)
json.dump(cfg, open('/etc/app/config.json', 'w'))
PY


FROM build1 AS build2
COPY . .
RUN set -eux; \
  groupadd -r app && \
  ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
  useradd -r -g app -d /opt/app app && \
  ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
  mkdir -p /opt/app/{bin,lib,etc} && \
  for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
  npm ci --omit=dev && \
  sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
  ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
  echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
  git clone --depth 1 https://example.invalid/repo.git /src/repo && \
  find /usr/share/doc -depth -type f ! -name copyright -delete && \
  useradd -r -g app -d /opt/app app && \
  rm -rf /usr/share/man/* /usr/share/info/* && \
  cp -a /src/repo/config /etc/app/
RUN --mount=type=cache,target=/root/.cache \
  make -j4 all

FROM build2 AS build3
COPY . .
RUN set -eux; \
  git clone --depth 1 https://example.invalid/repo.git /src/repo && \
  find /usr/share/doc -depth -type f ! -name copyright -delete && \
  mkdir -p /opt/app/{bin,lib,etc} && \
  rm -rf /usr/share/man/* /usr/share/info/* && \
  useradd -r -g app -d /opt/app app && \
  mkdir -p /opt/app/{bin,lib,etc} && \
  python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
  useradd -r -g app -d /opt/app app && \
  git clone --depth 1 https://example.invalid/repo.git /src/repo && \
  cp -a /src/repo/config /etc/app/ && \
  export DEBIAN_FRONTEND=noninteractive && \
  mkdir -p /opt/app/{bin,lib,etc} && \
  mkdir -p /opt/app/{bin,lib,etc} && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  npm ci --omit=dev
RUN <<EOF
set -e
apt-get update
mkdir -p /opt/data
for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
cat /opt/data/items | sort | uniq > /opt/data/uniq
rm -rf /tmp/*
EOF

RUN python3 <<PY
import json, os
cfg = {'workers': 1, 'debug': False}
os.makedirs('/etc/app', exist_ok=True)
json.dump(cfg, open('/etc/app/config.json', 'w'))
PY


FROM ${RUNTIME}
WORKDIR /app
COPY --from=build1 /src/out /app
COPY --from=deps /etc/ssl/certs /etc/ssl/certs
RUN pip install requests
WORKDIR app
USER nonroot
ENTRYPOINT ["/app/server"]
