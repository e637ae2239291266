# syntax=docker/dockerfile:1
# node application, multi-stage
ARG BASE=node:20-slim
ARG RUNTIME=gcr.io/distroless/nodejs20-debian12
FROM ${BASE} AS deps
RUN apt-get update && apt-get install -y --no-install-recommends \
  default-jre-headless dnsutils g++ \
  gcc libffi8 libssl-dev \
  libxml2 libxslt1.1 nodejs \
  python3 python3-dev python3-pip \
  unzip wget xz-utils \
  zlib1g \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
  rm -rf /usr/share/man/* /usr/share/info/* && \
  find /usr/share/doc -depth -type f ! -name copyright -delete && \
  chmod 0755 /usr/local/bin/tool && \
  ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
  git clone --depth 1 https://example.invalid/repo.git /src/repo && \
  sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
  printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
  export DEBIAN_FRONTEND=noninteractive
RUN --mount=type=cache,target=/root/.cache \
  make -j4 all

FROM deps AS build0

FROM ${RUNTIME}
WORKDIR /app
COPY --from=build0 /src/out /app
COPY --from=deps /etc/ssl/certs /etc/ssl/certs
WORKDIR app
MAINTAINER someone@example.invalid
ENTRYPOINT ["/app/server"]
