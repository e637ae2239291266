# syntax=docker/dockerfile:1
# python application, multi-stage
ARG BASE=python
ARG RUNTIME=python:3.12-slim
FROM ${BASE} AS deps
RUN apt-get update && apt-get install -y --no-install-recommends \
    ca-certificates cmake dnsutils \
    g++ gcc gnupg \
    jq less libjpeg62-turbo \
    libpq5 libxslt1.1 locales \
    netcat-openbsd npm openssh-client \
    procps python3 python3-dev \
    python3-pip tree xz-utils \
    zlib1g \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
    cp -a /src/repo/config /etc/app/ && \
    export DEBIAN_FRONTEND=noninteractive && \
    git clone --depth 1 https://example.invalid/repo.git /src/repo && \
    export DEBIAN_FRONTEND=noninteractive && \
    mkdir -p /opt/app/{bin,lib,etc} && \
    useradd -r -g app -d /opt/app app

FROM build0 AS build1
COPY . .
RUN set -eux; \
    useradd -r -g app -d /opt/app app && \
    useradd -r -g app -d /opt/app app && \
    python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
    groupadd -r app && \
    wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
    groupadd -r app && \
    rm -rf /usr/share/man/* /usr/share/info/* && \
    export DEBIAN_FRONTEND=noninteractive && \
    curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin && \
    if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
    groupadd -r app && \
    echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
    find /usr/share/doc -depth -type f ! -name copyright -delete

FROM build1 AS build2
COPY . .
RUN set -eux; \
    ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
    wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
    sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
    echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
    if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
    printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
    chmod 0755 /usr/local/bin/tool && \
    if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi
RUN <<-'SCRIPT'
	set -e
	apt-get update
	mkdir -p /opt/data
	for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
	cat /opt/data/items | sort | uniq > /opt/data/uniq
	rm -rf /tmp/*
SCRIPT

RUN --mount=type=cache,target=/root/.cache \
    make -j4 all

FROM ${RUNTIME}
WORKDIR /app
COPY --from=build1 /src/out /app
ADD https://example.invalid/data.bin /opt/data.bin
RUN apt-get upgrade -y
ENTRYPOINT ["/app/server"]
