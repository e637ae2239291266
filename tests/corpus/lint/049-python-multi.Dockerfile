# syntax=docker/dockerfile:1
# python application, multi-stage
ARG BASE=python:3.12
ARG RUNTIME=python:3.12
FROM ${BASE} AS deps
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
  wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
  ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
  npm ci --omit=dev && \
  git clone --depth 1 https://example.invalid/repo.git /src/repo && \
  printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
  wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
  mkdir -p /opt/app/{bin,lib,etc} && \
  git clone --depth 1 https://example.invalid/repo.git /src/repo
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
  rm -rf /usr/share/man/* /usr/share/info/* && \
  curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
  useradd -r -g app -d /opt/app app && \
  echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
  wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
  npm ci --omit=dev && \
  printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
  for f in /etc/app/*.conf; do test -r "$f" || exit 1; done
RUN python3 <<PY
import json, os
cfg = {'workers': 3, 'debug': False}
os.makedirs('/etc/app', exist_ok=True)
json.dump(cfg, open('/etc/app/config.json', 'w'))
PY


FROM build1 AS build2
COPY . .
RUN set -eux; \
  printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
  export DEBIAN_FRONTEND=noninteractive && \
  printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
  wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
  sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
  groupadd -r app && \
  git clone --depth 1 https://example.invalid/repo.git /src/repo && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  cp -a /src/repo/config /etc/app/ && \
  find /usr/share/doc -depth -type f ! -name copyright -delete && \
  ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
  for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
  useradd -r -g app -d /opt/app app && \
  ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
  cp -a /src/repo/config /etc/app/ && \
  mkdir -p /opt/app/{bin,lib,etc}
RUN <<'EOT'
set -e
echo building
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
  git clone --depth 1 https://example.invalid/repo.git /src/repo && \
  useradd -r -g app -d /opt/app app && \
  go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
  rm -rf /usr/share/man/* /usr/share/info/* && \
  useradd -r -g app -d /opt/app app && \
  git clone --depth 1 https://example.invalid/repo.git /src/repo && \
  chmod 0755 /usr/local/bin/tool && \
  sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
  wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg

FROM ${RUNTIME}
WORKDIR /app
COPY --from=build0 /src/out /app
ADD https://example.invalid/data.bin /opt/data.bin
RUN rm -rf /var/lib/apt/lists/*
USER nonroot
ENTRYPOINT /app/server --port 8080
