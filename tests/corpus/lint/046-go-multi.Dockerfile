# syntax=docker/dockerfile:1
# go application, multi-stage
ARG BASE=golang:1.22
ARG RUNTIME=debian:bookworm-slim
FROM ${BASE} AS deps
RUN apt-get update && apt-get install -y --no-install-recommends \
  curl g++ git \
  gnupg iproute2 libffi8 \
  libpng16-16 libssl-dev libxslt1.1 \
  locales nodejs npm \
  openssh-client python3-venv unzip \
  vim-tiny \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  find /usr/share/doc -depth -type f ! -name copyright -delete && \
  chmod 0755 /usr/local/bin/tool && \
  curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
  python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
  rm -rf /usr/share/man/* /usr/share/info/* && \
  echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
  wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
  chmod 0755 /usr/local/bin/tool && \
  rm -rf /usr/share/man/* /usr/share/info/* && \
  export DEBIAN_FRONTEND=noninteractive
RUN <<-SCRIPT
	set -e
	echo building
	mkdir -p /opt/data
	for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
	cat /opt/data/items | sort | uniq > /opt/data/uniq
	rm -rf /tmp/*
SCRIPT


FROM build0 AS build1
COPY . .
RUN set -eux; \
  export DEBIAN_FRONTEND=noninteractive && \
  echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
  printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
  rm -rf /usr/share/man/* /usr/share/info/* && \
  mkdir -p /opt/app/{bin,lib,etc} && \
  groupadd -r app && \
  find /usr/share/doc -depth -type f ! -name copyright -delete && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi
RUN <<-'EOF'
	set -e
	apt-get update
	mkdir -p /opt/data
	for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
	cat /opt/data/items | sort | uniq > /opt/data/uniq
	rm -rf /tmp/*
EOF

RUN python3 <<PY
import json, os
cfg = {'workers': 8, 'debug': False}
os.makedirs('/etc/app', exist_ok=True)
json.dump(cfg, open('/etc/app/config.json', 'w'))
PY

RUN --mount=type=cache,target=/root/.cache \
  make -j4 all

FROM build1 AS build2
COPY . .
RUN set -eux; \
  curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
  for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
  useradd -r -g app -d /opt/app app && \
  rm -rf /usr/share/man/* /usr/share/info/* && \
  ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
  find /usr/share/doc -depth -type f ! -name copyright -delete && \
  find /usr/share/doc -depth -type f ! -name copyright -delete && \
  python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
  for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
  git clone --depth 1 https://example.invalid/repo.git /src/repo && \
  groupadd -r app && \
  for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
  npm ci --omit=dev && \
  git clone --depth 1 https://example.invalid/repo.git /src/repo && \
  curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
  mkdir -p /opt/app/{bin,lib,etc} && \
  npm ci --omit=dev && \
  python3 -m pip install --no-cache-dir -r /tmp/requirements.txt
RUN --mount=type=cache,target=/root/.cache \
  make -j4 all

FROM ${RUNTIME}
WORKDIR /app
COPY --from=build0 /src/out /app
ONBUILD RUN echo child build
ARG DB_PASSWORD
RUN rm -rf /var/lib/apt/lists/*
USER root
ENTRYPOINT /app/server --port 8080
