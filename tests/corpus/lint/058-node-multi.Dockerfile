# syntax=docker/dockerfile:1
# node application, multi-stage
ARG BASE=node:20-alpine
ARG RUNTIME=node:20-slim
FROM ${BASE} AS deps
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
    git clone --depth 1 https://example.invalid/repo.git /src/repo && \
    printf '%s\n' 'a=1' 'b=2' >> /etc/app/app.conf && \
    sed -i 's/^# *en_US.UTF-8/en_US.UTF-8/' /etc/locale.gen && \
    go build -trimpath -ldflags='-s -w' -o /out/app ./cmd/app && \
    groupadd -r app && \
    ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
    if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi
RUN <<EOT
set -e
apt-get update
mkdir -p /opt/data
for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
cat /opt/data/items | sort | uniq > /opt/data/uniq
rm -rf /tmp/*
EOT

RUN python3 <<PY
import json, os
cfg = {'workers': 3, 'debug': False}
os.makedirs('/etc/app', exist_ok=True)
json.dump(cfg, open('/etc/app/config.json', 'w'))
PY


FROM deps AS build0

FROM ${RUNTIME}
WORKDIR /app
COPY --from=build0 /src/out /app
COPY --from=deps /etc/ssl/certs /etc/ssl/certs
RUN npm install -g pm2
RUN pip install requests
USER nonroot
ENTRYPOINT ["/app/server"]
