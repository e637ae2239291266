# syntax=docker/dockerfile:1
# debian application, multi-stage
ARG BASE=debian:bookworm-slim
ARG RUNTIME=debian:bookworm-slim
FROM ${BASE} AS deps
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
    if [ -f /etc/os-release ]; then . /etc/os-release && echo "$ID"; fi && \
    useradd -r -g app -d /opt/app app && \
    cp -a /src/repo/config /etc/app/ && \
    python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
    ln -sf /usr/share/zoneinfo/UTC /etc/localtime && \
    echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
    echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
    useradd -r -g app -d /opt/app app && \
    curl -fsSL https://example.invalid/tool.tar.gz | tar -xz -C /usr/local/bin
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
ONBUILD RUN echo child build
RUN pip install requests
USER nonroot
ENTRYPOINT ["/app/server"]
