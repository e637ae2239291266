# syntax=docker/dockerfile:1
# python application, multi-stage
ARG BASE=python
ARG RUNTIME=python:3.12
FROM ${BASE} AS deps
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
    sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
    curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
    echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
    mkdir -p /opt/app/{bin,lib,etc} && \
    npm ci --omit=dev
RUN --mount=type=cache,target=/root/.cache \
    make -j4 all

FROM build0 AS build1
COPY . .
RUN set -eux; \
    if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
    echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
    python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
    printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
    ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
    export DEBIAN_FRONTEND=noninteractive && \
    export DEBIAN_FRONTEND=noninteractive
RUN <<EOT
set -e
echo building
mkdir -p /opt/data
for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
cat /opt/data/items | sort | uniq > /opt/data/uniq
rm -rf /tmp/*
EOT


FROM build1 AS build2
COPY . .
RUN set -eux; \
    ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
    git clone --depth 1 https://example.invalid/repo.git /src/repo && \
    cp -a /src/repo/config /etc/app/ && \
    useradd -r -g app -d /opt/app app && \
    echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
    if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
    curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
    sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
    git clone --depth 1 https://example.invalid/repo.git /src/repo && \
    curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
    find /usr/share/doc -depth -type f ! -name copyright -delete && \
    if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
    wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
    wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
    ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
    npm ci --omit=dev
RUN --mount=type=cache,target=/root/.cache \
    make -j4 all

FROM build2 AS build3
COPY . .
RUN set -eux; \
    for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
    ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
    if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
    if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
    export DEBIAN_FRONTEND=noninteractive && \
    printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
    npm ci --omit=dev && \
    go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
    if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
    printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
    find /usr/share/doc -depth -type f ! -name copyright -delete && \
    npm ci --omit=dev && \
    export DEBIAN_FRONTEND=noninteractive
RUN --mount=type=cache,target=/root/.cache \
    make -j4 all

FROM ${RUNTIME}
WORKDIR /app
COPY --from=build0 /src/out /app
COPY --from=deps /etc/ssl/certs /etc/ssl/certs
ONBUILD RUN echo child build
ADD ./config /etc/app/config
MAINTAINER someone@example.invalid
USER nonroot
ENTRYPOINT /app/server --port 8080
