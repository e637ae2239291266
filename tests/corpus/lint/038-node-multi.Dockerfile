# syntax=docker/dockerfile:1
# node application, multi-stage
ARG BASE=node:20-slim
ARG RUNTIME=node:20-slim
FROM ${BASE} AS deps
WORKDIR /src

FROM deps AS build0
COPY . .
RUN set -eux; \
    python3 -m pip install --no-cache-dir -r /tmp/requirements.txt && \
    echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
    echo "export PATH=/opt/app/bin:$PATH" > /etc/profile.d/app.sh && \
    git clone --depth 1 https://example.invalid/repo.git /src/repo && \
    useradd -r -g app -d /opt/app app && \
    chmod 0755 /usr/local/bin/tool && \
    cp -a /src/repo/config /etc/app/ && \
    mkdir -p /opt/app/{bin,lib,etc}
RUN <<-EOT
	set -e
	apt-get update
	mkdir -p /opt/data
	for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
	cat /opt/data/items | sort | uniq > /opt/data/uniq
	rm -rf /tmp/*
EOT

RUN --mount=type=cache,target=/root/.cache \
    make -j4 all

FROM ${RUNTIME}
WORKDIR /app
COPY --from=build0 /src/out /app
RUN rm -rf /var/lib/apt/lists/*
ADD https://example.invalid/data.bin /opt/data.bin
USER nonroot
ENTRYPOINT ["/app/server"]
