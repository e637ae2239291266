# syntax=docker/dockerfile:1
# python application, multi-stage
ARG BASE=python:3.12
ARG RUNTIME=gcr.io/distroless/python3-debian12
FROM ${BASE} AS deps
RUN apt-get update && apt-get install -y --no-install-recommends \
  build-essential default-jre-headless dnsutils \
  file g++ gcc \
  gnupg less libffi-dev \
  libpng16-16 libsqlite3-0 libssl-dev \
  libxml2 libxslt1.1 openssh-client \
  pkg-config unzip \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
  echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
  wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
  printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
  export DEBIAN_FRONTEND=noninteractive && \
  python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
  find /usr/share/doc -depth -type f ! -name copyright -delete && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  npm ci --omit=dev && \
  git clone --depth 1 https://example.invalid/repo.git /src/repo && \
  sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
  curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
  sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
  printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
  sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
  rm -rf /usr/share/man/* /usr/share/info/* && \
  sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen

FROM build0 AS build1
COPY . .
RUN set -eux; \
  npm ci --omit=dev && \
  find /usr/share/doc -depth -type f ! -name copyright -delete && \
  python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
  ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
  python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
  for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  mkdir -p /opt/app/{bin,lib,etc}
RUN --mount=type=cache,target=/root/.cache \
  make -j4 all

FROM build1 AS build2
COPY . .
RUN set -eux; \
  echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
  go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
  useradd -r -g app -d /opt/app app && \
  sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
  chmod 0755 /usr/local/bin/tool && \
  npm ci --omit=dev
RUN python3 <<PY
import json, os
cfg = {'workers': 4, 'debug': False}
os.makedirs('/etc/app', exist_ok=True)
json.dump(cfg, open('/etc/app/config.json', 'w'))
PY


FROM build2 AS build3
COPY . .
RUN set -eux; \
  groupadd -r app && \
  python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
  mkdir -p /opt/app/{bin,lib,etc} && \
  rm -rf /usr/share/man/* /usr/share/info/* && \
  curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
  echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
  cp -a /src/repo/config /etc/app/ && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  useradd -r -g app -d /opt/app app && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  npm ci --omit=dev && \
  printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
  npm ci --omit=dev && \
  rm -rf /usr/share/man/* /usr/share/info/* && \
  git clone --depth 1 https://example.invalid/repo.git /src/repo && \
  mkdir -p /opt/app/{bin,lib,etc} && \
  printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
  find /usr/share/doc -depth -type f ! -name copyright -delete
RUN <<EOF
set -e
apt-get update
mkdir -p /opt/data
for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
cat /opt/data/items | sort | uniq > /opt/data/uniq
rm -rf /tmp/*
EOF


FROM ${RUNTIME}
WORKDIR /app
COPY --from=build1 /src/out /app
COPY --from=deps /etc/ssl/certs /etc/ssl/certs
ONBUILD RUN echo child build
RUN pip install requests
RUN cd /opt && ls
ENTRYPOINT ["/app/server"]
