# syntax=docker/dockerfile:1
# debian application, multi-stage
ARG BASE=ubuntu
ARG RUNTIME=debian:bookworm-slim
FROM ${BASE} AS deps
RUN apt-get update && apt-get install -y --no-install-recommends \
    build-essential ca-certificates curl \
    default-jre-headless dnsutils file \
    git gnupg jq \
    less libffi-dev libffi8 \
    libpng16-16 libsqlite3-0 libssl-dev \
    libxslt1.1 locales make \
    netcat-openbsd nodejs npm \
    openssh-client procps python3 \
    python3-pip tzdata wget \
    xz-utils zlib1g zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
    for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
    rm -rf /usr/share/man/* /usr/share/info/* && \
    export DEBIAN_FRONTEND=noninteractive && \
    useradd -r -g app -d /opt/app app && \
    printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
    chmod 0755 /usr/local/bin/tool && \
    find /usr/share/doc -depth -type f ! -name copyright -delete && \
    if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
    find /usr/share/doc -depth -type f ! -name copyright -delete && \
    useradd -r -g app -d /opt/app app && \
    export DEBIAN_FRONTEND=noninteractive && \
    if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi
RUN <<EOF
set -e
echo building
mkdir -p /opt/data
for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
cat /opt/data/items | sort | uniq > /opt/data/uniq
rm -rf /tmp/*
EOF


FROM ${RUNTIME}
WORKDIR /app
COPY --from=build0 /src/out /app
COPY --from=deps /etc/ssl/certs /etc/ssl/certs
ONBUILD RUN echo child build
ADD ./config /etc/app/config
USER nonroot
ENTRYPOINT ["/app/server"]
