# syntax=docker/dockerfile:1
# node application, multi-stage
ARG BASE=node:20-slim
ARG RUNTIME=node:20
FROM ${BASE} AS deps
RUN apt-get update && apt-get install -y --no-install-recommends \
  build-essential curl git \
  gnupg jq less \
  libffi-dev libffi8 libpng16-16 \
  libpq5 libssl-dev libssl3 \
  libxml2 libxslt1.1 make \
  netcat-openbsd nodejs npm \
  openssh-client pkg-config procps \
  python3-dev python3-pip python3-venv \
  tree tzdata vim-tiny \
  zlib1g \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
  mkdir -p /opt/app/{bin,lib,etc} && \
  echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
  chmod 0755 /usr/local/bin/tool && \
  export DEBIAN_FRONTEND=noninteractive && \
  echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
  groupadd -r app && \
  go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
  export DEBIAN_FRONTEND=noninteractive && \
  sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
  find /usr/share/doc -depth -type f ! -name copyright -delete && \
  rm -rf /usr/share/man/* /usr/share/info/* && \
  sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
  chmod 0755 /usr/local/bin/tool && \
  echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
  go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
  wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg
RUN <<-'EOT'
	set -e
	echo building
	mkdir -p /opt/data
	for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
	cat /opt/data/items | sort | uniq > /opt/data/uniq
	rm -rf /tmp/*
EOT


FROM build0 AS build1
COPY . .
RUN set -eux; \
  sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  groupadd -r app && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
  find /usr/share/doc -depth -type f ! -name copyright -delete && \
  find /usr/share/doc -depth -type f ! -name copyright -delete && \
  rm -rf /usr/share/man/* /usr/share/info/* && \
  useradd -r -g app -d /opt/app app && \
  groupadd -r app && \
  printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
  export DEBIAN_FRONTEND=noninteractive && \
  groupadd -r app && \
  git clone --depth 1 https://example.invalid/repo.git /src/repo

FROM build1 AS build2
COPY . .
RUN set -eux; \
  groupadd -r app && \
  printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
  rm -rf /usr/share/man/* /usr/share/info/* && \
  git clone --depth 1 https://example.invalid/repo.git /src/repo && \
  for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
  export DEBIAN_FRONTEND=noninteractive && \
  mkdir -p /opt/app/{bin,lib,etc} && \
  useradd -r -g app -d /opt/app app && \
  git clone --depth 1 https://example.invalid/repo.git /src/repo && \
  find /usr/share/doc -depth -type f ! -name copyright -delete && \
  printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
  npm ci --omit=dev && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  find /usr/share/doc -depth -type f ! -name copyright -delete && \
  ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
  npm ci --omit=dev
RUN python3 <<PY
import json, os
cfg = {'workers': 7, 'debug': False}
os.makedirs('/etc/app', exist_ok=True)
json.dump(cfg, open('/etc/app/config.json', 'w'))
PY


FROM build2 AS build3
COPY . .
RUN set -eux; \
  chmod 0755 /usr/local/bin/tool && \
  rm -rf /usr/share/man/* /usr/share/info/* && \
  chmod 0755 /usr/local/bin/tool && \
  useradd -r -g app -d /opt/app app && \
  mkdir -p /opt/app/{bin,lib,etc} && \
  printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
  useradd -r -g app -d /opt/app app && \
  ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
  git clone --depth 1 https://example.invalid/repo.git /src/repo && \
  wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
  ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
  export DEBIAN_FRONTEND=noninteractive
RUN <<SCRIPT
set -e
echo building
mkdir -p /opt/data
for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
cat /opt/data/items | sort | uniq > /opt/data/uniq
rm -rf /tmp/*
SCRIPT


FROM ${RUNTIME}
WORKDIR /app
COPY --from=build1 /src/out /app
COPY --from=deps /etc/ssl/certs /etc/ssl/certs
ADD https://example.invalid/data.bin /opt/data.bin
USER nonroot
ENTRYPOINT /app/server --port 8080
