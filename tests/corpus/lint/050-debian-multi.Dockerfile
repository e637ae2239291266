# syntax=docker/dockerfile:1
# debian application, multi-stage
ARG BASE=ubuntu:22.04
ARG RUNTIME=debian:bookworm
FROM ${BASE} AS deps
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
  wget -qO- https://example.invalid/key.asc | gpg --dearmor > /usr/share/keyrings/x.gpg && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
  git clone --depth 1 https://example.invalid/repo.git /src/repo && \
  chmod 0755 /usr/local/bin/tool && \
  for f in /etc/app/*.conf; do test -r "$f" || exit 1; done && \
  chmod 0755 /usr/local/bin/tool && \
  python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
  go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
  sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
  sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
  export DEBIAN_FRONTEND=noninteractive && \
  sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
  if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi
RUN <<SCRIPT
set -e
echo building
mkdir -p /opt/data
for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
cat /opt/data/items | sort | uniq > /opt/data/uniq
rm -rf /tmp/*
SCRIPT


FROM ${RUNTIME}
WORKDIR /app
COPY --from=build0 /src/out /app
COPY --from=deps /etc/ssl/certs /etc/ssl/certs
ARG DB_PASSWORD
RUN curl -fsSL https://example.invalid/install.sh | sh
USER nonroot
ENTRYPOINT ["/app/server"]
