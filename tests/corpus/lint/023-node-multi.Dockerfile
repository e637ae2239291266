# syntax=docker/dockerfile:1
# node application, multi-stage
ARG BASE=node:20-alpine
ARG RUNTIME=node:20-slim
FROM ${BASE} AS deps
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
  mkdir -p /opt/app/{bin,lib,etc} && \
  python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
  python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
  python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
  cp -a /src/repo/config /etc/app/ && \
  export DEBIAN_FRONTEND=noninteractive && \
  find /usr/share/doc -depth -type f ! -name copyright -delete
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
  ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
  mkdir -p /opt/app/{bin,lib,etc} && \
  git clone --depth 1 https://example.invalid/repo.git /src/repo && \
  export DEBIAN_FRONTEND=noninteractive && \
  groupadd -r app && \
  npm ci --omit=dev && \
  find /usr/share/doc -depth -type f ! -name copyright -delete && \
  find /usr/share/doc -depth -type f ! -name copyright -delete && \
  for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
  export DEBIAN_FRONTEND=noninteractive && \
  ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
  useradd -r -g app -d /opt/app app && \
  for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
  groupadd -r app && \
  git clone --depth 1 https://example.invalid/repo.git /src/repo && \
  git clone --depth 1 https://example.invalid/repo.git /src/repo
RUN <<-'EOF'
	set -e
	echo building
	mkdir -p /opt/data
	for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
	cat /opt/data/items | sort | uniq > /opt/data/uniq
	rm -rf /tmp/*
EOF

RUN --mount=type=cache,target=/root/.cache \
  make -j4 all

FROM build1 AS build2
COPY . .
RUN set -eux; \
  echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
  rm -rf /usr/share/man/* /usr/share/info/* && \
  cp -a /src/repo/config /etc/app/ && \
  useradd -r -g app -d /opt/app app && \
  groupadd -r app && \
  sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
  sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
  export DEBIAN_FRONTEND=noninteractive && \
  npm ci --omit=dev && \
  echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
  go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
  groupadd -r app && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  chmod 0755 /usr/local/bin/tool && \
  export DEBIAN_FRONTEND=noninteractive && \
  chmod 0755 /usr/local/bin/tool
RUN --mount=type=cache,target=/root/.cache \
  make -j4 all

FROM build2 AS build3
COPY . .
RUN set -eux; \
  python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
  chmod 0755 /usr/local/bin/tool && \
  useradd -r -g app -d /opt/app app && \
  useradd -r -g app -d /opt/app app && \
  go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app
RUN <<SCRIPT
set -e
apt-get update
mkdir -p /opt/data
for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
cat /opt/data/items | sort | uniq > /opt/data/uniq
rm -rf /tmp/*
SCRIPT


FROM ${RUNTIME}
WORKDIR /app
COPY --from=bulid /src/out /app
COPY --from=deps /etc/ssl/certs /etc/ssl/certs
ONBUILD RUN echo child build
RUN rm -rf /var/lib/apt/lists/*
RUN cd /opt && ls
USER root
ENTRYPOINT /app/server --port 8080
