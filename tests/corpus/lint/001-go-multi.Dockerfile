# syntax=docker/dockerfile:1
# go application, multi-stage
ARG BASE=golang:1.22
ARG RUNTIME=debian:bookworm-slim
FROM ${BASE} AS deps
RUN apt-get update && apt-get install -y --no-install-recommends \
  cmake dnsutils gcc \
  gnupg iproute2 libjpeg62-turbo \
  libpq5 libsqlite3-0 libssl-dev \
  libssl3 locales npm \
  pkg-config python3-dev tzdata \
  unzip vim-tiny wget \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
  export DEBIAN_FRONTEND=noninteractive && \
  useradd -r -g app -d /opt/app app && \
  useradd -r -g app -d /opt/app app && \
  mkdir -p /opt/app/{bin,lib,etc} && \
  cp -a /src/repo/config /etc/app/ && \
  groupadd -r app && \
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

FROM build0 AS build1
COPY . .
RUN set -eux; \
  npm ci --omit=dev && \
  printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
  go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
  npm ci --omit=dev && \
  rm -rf /usr/share/man/* /usr/share/info/* && \
  sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
  wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
  chmod 0755 /usr/local/bin/tool && \
  find /usr/share/doc -depth -type f ! -name copyright -delete && \
  echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
  echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  groupadd -r app && \
  cp -a /src/repo/config /etc/app/ && \
  rm -rf /usr/share/man/* /usr/share/info/* && \
  groupadd -r app && \
  export DEBIAN_FRONTEND=noninteractive
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
cfg = {'workers': 7, 'debug': False}
os.makedirs('/etc/app', exist_ok=True)
json.dump(cfg, open('/etc/app/config.json', 'w'))
PY

RUN --mount=type=cache,target=/root/.cache \
  make -j4 all

FROM build1 AS build2
COPY . .
RUN set -eux; \
  npm ci --omit=dev && \
  groupadd -r app && \
  find /usr/share/doc -depth -type f ! -name copyright -delete && \
  find /usr/share/doc -depth -type f ! -name copyright -delete && \
  export DEBIAN_FRONTEND=noninteractive
RUN <<'EOT'
set -e
apt-get update
mkdir -p /opt/data
for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
cat /opt/data/items | sort | uniq > /opt/data/uniq
rm -rf /tmp/*
EOT

RUN --mount=type=cache,target=/root/.cache \
  make -j4 all

FROM build2 AS build3
COPY . .
RUN set -eux; \
  sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
  export DEBIAN_FRONTEND=noninteractive && \
  for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
  ln -sf /usr/share/zoneinfo/UTC /etc/localtime

FROM ${RUNTIME}
WORKDIR /app
COPY --from=build3 /src/out /app
COPY --from=deps /etc/ssl/certs /etc/ssl/certs
ONBUILD RUN echo child build
WORKDIR app
RUN pip install requests
ENTRYPOINT ["/app/server"]
