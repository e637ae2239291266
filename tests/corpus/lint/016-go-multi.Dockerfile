# syntax=docker/dockerfile:1
# go application, multi-stage
ARG BASE=golang:1.22
ARG RUNTIME=scratch
FROM ${BASE} AS deps
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
  python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
  export DEBIAN_FRONTEND=noninteractive && \
  python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
  mkdir -p /opt/app/{bin,lib,etc} && \
  go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
  printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
  ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
  python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
  groupadd -r app && \
  cp -a /src/repo/config /etc/app/ && \
  chmod 0755 /usr/local/bin/tool
RUN <<EOF
set -e
apt-get update
mkdir -p /opt/data
for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
cat /opt/data/items | sort | uniq > /opt/data/uniq
rm -rf /tmp/*
EOF

RUN --mount=type=cache,target=/root/.cache \
  make -j4 all

FROM build0 AS build1
COPY . .
RUN set -eux; \
  groupadd -r app && \
  rm -rf /usr/share/man/* /usr/share/info/* && \
  git clone --depth 1 https://example.invalid/repo.git /src/repo && \
  printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
  go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  rm -rf /usr/share/man/* /usr/share/info/* && \
  for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
  groupadd -r app && \
  useradd -r -g app -d /opt/app app && \
  rm -rf /usr/share/man/* /usr/share/info/*

FROM build1 AS build2
COPY . .
RUN set -eux; \
  curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
  sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
  printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
  printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
  chmod 0755 /usr/local/bin/tool

FROM build2 AS build3
COPY . .
RUN set -eux; \
  chmod 0755 /usr/local/bin/tool && \
  groupadd -r app && \
  sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
  chmod 0755 /usr/local/bin/tool && \
  groupadd -r app && \
  for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
  sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
  groupadd -r app && \
  git clone --depth 1 https://example.invalid/repo.git /src/repo && \
  curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
  export DEBIAN_FRONTEND=noninteractive && \
  export DEBIAN_FRONTEND=noninteractive && \
  find /usr/share/doc -depth -type f ! -name copyright -delete
RUN <<-EOT
	set -e
	apt-get update
	mkdir -p /opt/data
	for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
	cat /opt/data/items | sort | uniq > /opt/data/uniq
	rm -rf /tmp/*
EOT


FROM ${RUNTIME}
WORKDIR /app
COPY --from=build1 /src/out /app
COPY --from=deps /etc/ssl/certs /etc/ssl/certs
RUN pip install requests
USER nonroot
ENTRYPOINT /app/server --port 8080
