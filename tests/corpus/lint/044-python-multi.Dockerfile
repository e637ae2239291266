# syntax=docker/dockerfile:1
# python application, multi-stage
ARG BASE=python:3.12
ARG RUNTIME=gcr.io/distroless/python3-debian12
FROM ${BASE} AS deps
RUN apt-get update && apt-get install -y --no-install-recommends \
  build-essential default-jre-headless g++ \
  gnupg jq less \
  libffi-dev libffi8 libjpeg62-turbo \
  libpng16-16 libpq5 libssl3 \
  libxslt1.1 npm pkg-config \
  python3 python3-dev python3-venv \
  tree tzdata unzip \
  vim-tiny wget xz-utils \
  zlib1g \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
  wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
  cp -a /src/repo/config /etc/app/ && \
  sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
  npm ci --omit=dev && \
  rm -rf /usr/share/man/* /usr/share/info/* && \
  mkdir -p /opt/app/{bin,lib,etc} && \
  echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
  find /usr/share/doc -depth -type f ! -name copyright -delete && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  chmod 0755 /usr/local/bin/tool && \
  sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
  sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
  mkdir -p /opt/app/{bin,lib,etc}
RUN <<'EOF'
set -e
echo building
mkdir -p /opt/data
for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
cat /opt/data/items | sort | uniq > /opt/data/uniq
rm -rf /tmp/*
EOF


FROM build0 AS build1
COPY . .
RUN set -eux; \
  find /usr/share/doc -depth -type f ! -name copyright -delete && \
  wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
  npm ci --omit=dev && \
  ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
  npm ci --omit=dev && \
  python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
  npm ci --omit=dev && \
  useradd -r -g app -d /opt/app app && \
  curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
  go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
  chmod 0755 /usr/local/bin/tool && \
  for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  cp -a /src/repo/config /etc/app/ && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  mkdir -p /opt/app/{bin,lib,etc} && \
  groupadd -r app
RUN <<-SCRIPT
	set -e
	echo building
	mkdir -p /opt/data
	for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
	cat /opt/data/items | sort | uniq > /opt/data/uniq
	rm -rf /tmp/*
SCRIPT

RUN python3 <<PY
import json, os
cfg = {'workers': 6, 'debug': False}
os.makedirs('/etc/app', exist_ok=True)
json.dump(cfg, open('/etc/app/config.json', 'w'))
PY

RUN --mount=type=cache,target=/root/.cache \
  make -j4 all

FROM build1 AS build2
COPY . .
RUN set -eux; \
  echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
  chmod 0755 /usr/local/bin/tool && \
  python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
  curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
  for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
  rm -rf /usr/share/man/* /usr/share/info/* && \
  useradd -r -g app -d /opt/app app && \
  export DEBIAN_FRONTEND=noninteractive && \
  export DEBIAN_FRONTEND=noninteractive && \
  curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
  python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
  cp -a /src/repo/config /etc/app/
RUN <<EOF
set -e
apt-get update
mkdir -p /opt/data
for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
cat /opt/data/items | sort | uniq > /opt/data/uniq
rm -rf /tmp/*
EOF


FROM build2 AS build3
COPY . .
RUN set -eux; \
  sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
  ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
  cp -a /src/repo/config /etc/app/ && \
  curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
  groupadd -r app && \
  printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
  echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh
RUN <<-EOF
	set -e
	apt-get update
	mkdir -p /opt/data
	for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
	cat /opt/data/items | sort | uniq > /opt/data/uniq
	rm -rf /tmp/*
EOF


FROM ${RUNTIME}
WORKDIR /app
COPY --from=build0 /src/out /app
ONBUILD RUN echo child build
RUN sudo apt-get install -y htop
RUN rm -rf /var/lib/apt/lists/*
ENTRYPOINT ["/app/server"]
