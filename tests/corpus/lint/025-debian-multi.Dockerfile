# syntax=docker/dockerfile:1
# debian application, multi-stage
ARG BASE=debian:bookworm
ARG RUNTIME=debian:bookworm
FROM ${BASE} AS deps
RUN apt-get update && apt-get install -y --no-install-recommends \
    ca-certificates cmake curl \
    default-jre-headless file g++ \
    gcc git gnupg \
    iproute2 jq less \
    libjpeg62-turbo libpng16-16 libssl-dev \
    libssl3 libxml2 netcat-openbsd \
    nodejs npm openssh-client \
    procps python3 python3-venv \
    tzdata unzip vim-tiny \
    wget xz-utils zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
    go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
    for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
    useradd -r -g app -d /opt/app app && \
    export DEBIAN_FRONTEND=noninteractive && \
    find /usr/share/doc -depth -type f ! -name copyright -delete && \
    find /usr/share/doc -depth -type f ! -name copyright -delete
RUN python3 <<PY
import json, os
cfg = {'workers': 8, 'debug': False}
os.makedirs('/etc/app', exist_ok=True)
json.dump(cfg, open('/etc/app/config.json', 'w'))
PY

RUN --mount=type=cache,target=/root/.cache \
    make -j4 all

FROM build0 AS build1
COPY . .
RUN set -eux; \
    cp -a /src/repo/config /etc/app/ && \
    rm -rf /usr/share/man/* /usr/share/info/* && \
    ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
    if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
    sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
    mkdir -p /opt/app/{bin,lib,etc} && \
    rm -rf /usr/share/man/* /usr/share/info/*
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
COPY --from=bulid /src/out /app
RUN rm -rf /var/lib/apt/lists/*
ARG DB_PASSWORD
ENTRYPOINT ["/app/server"]
