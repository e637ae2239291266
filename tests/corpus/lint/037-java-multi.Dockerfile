# syntax=docker/dockerfile:1
# java application, multi-stage
ARG BASE=eclipse-temurin:21-jre
ARG RUNTIME=gcr.io/distroless/java21-debian12
FROM ${BASE} AS deps
RUN apt-get update && apt-get install -y --no-install-recommends \
    ca-certificates default-jre-headless gnupg \
    iproute2 make npm \
    openssh-client python3 python3-venv \
    zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
    curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
    if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
    sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
    mkdir -p /opt/app/{bin,lib,etc} && \
    useradd -r -g app -d /opt/app app && \
    groupadd -r app && \
    export DEBIAN_FRONTEND=noninteractive && \
    groupadd -r app && \
    rm -rf /usr/share/man/* /usr/share/info/* && \
    groupadd -r app
RUN python3 <<PY
import json, os
cfg = {'workers': 5, 'debug': False}
os.makedirs('/etc/app', exist_ok=True)
json.dump(cfg, open('/etc/app/config.json', 'w'))
PY

RUN --mount=type=cache,target=/root/.cache \
    make -j4 all

FROM build0 AS build1
COPY . .
RUN set -eux; \
    chmod 0755 /usr/local/bin/tool && \
    rm -rf /usr/share/man/* /usr/share/info/* && \
    npm ci --omit=dev && \
    ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
    find /usr/share/doc -depth -type f ! -name copyright -delete && \
    echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
    python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
    useradd -r -g app -d /opt/app app && \
    export DEBIAN_FRONTEND=noninteractive && \
    wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
    find /usr/share/doc -depth -type f ! -name copyright -delete && \
    ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
    ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
    echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
    find /usr/share/doc -depth -type f ! -name copyright -delete && \
    cp -a /src/repo/config /etc/app/ && \
    groupadd -r app && \
    curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin
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
    sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
    go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
    git clone --depth 1 https://example.invalid/repo.git /src/repo && \
    python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
    find /usr/share/doc -depth -type f ! -name copyright -delete && \
    npm ci --omit=dev && \
    printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
    git clone --depth 1 https://example.invalid/repo.git /src/repo && \
    export DEBIAN_FRONTEND=noninteractive && \
    cp -a /src/repo/config /etc/app/ && \
    find /usr/share/doc -depth -type f ! -name copyright -delete && \
    useradd -r -g app -d /opt/app app && \
    python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
    python3 -m pip install --no-cache-dir -r /tmp/requirements.txt
RUN <<'EOF'
set -e
apt-get update
mkdir -p /opt/data
for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
cat /opt/data/items | sort | uniq > /opt/data/uniq
rm -rf /tmp/*
EOF

RUN --mount=type=cache,target=/root/.cache \
    make -j4 all

FROM build2 AS build3
COPY . .
RUN set -eux; \
    sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
    if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
    sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
    cp -a /src/repo/config /etc/app/ && \
    mkdir -p /opt/app/{bin,lib,etc} && \
    if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
    for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
    for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
    groupadd -r app && \
    chmod 0755 /usr/local/bin/tool && \
    wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
    sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
    for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
    rm -rf /usr/share/man/* /usr/share/info/* && \
    for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
    python3 -m pip install --no-cache-dir -r /tmp/requirements.txt
RUN <<-'EOT'
	set -e
	echo building
	mkdir -p /opt/data
	for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
	cat /opt/data/items | sort | uniq > /opt/data/uniq
	rm -rf /tmp/*
EOT


FROM ${RUNTIME}
WORKDIR /app
COPY --from=build0 /src/out /app
COPY --from=deps /etc/ssl/certs /etc/ssl/certs
ONBUILD RUN echo child build
RUN curl -fsSL https://example.invalid/install.sh | sh
USER nonroot
ENTRYPOINT ["/app/server"]
