# debian application, single stage
FROM ubuntu
LABEL org.opencontainers.image.source="https://example.invalid/app" \
    org.opencontainers.image.licenses="MIT"
ENV LANG=C.UTF-8 TZ=UTC
RUN apt-get update && apt-get install -y --no-install-recommends \
    ca-certificates curl git \
    gnupg iproute2 less \
    libjpeg62-turbo libssl-dev libxml2 \
    nodejs npm openssh-client \
    pkg-config procps python3-pip \
    unzip vim-tiny wget \
    xz-utils \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . /app
ADD https://example.invalid/data.bin /opt/data.bin
RUN cd /opt && ls
RUN chown -R 1000:1000 /app
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD curl -f http://localhost:8080/ || exit 1
CMD ["bash"]
