# node application, single stage
FROM node:20
LABEL org.opencontainers.image.source="https://example.invalid/app" \
    org.opencontainers.image.licenses="MIT"
ENV LANG=C.UTF-8 TZ=UTC
RUN apt-get update && apt-get install -y \
    ca-certificates default-jre-headless dnsutils \
    file gcc git \
    gnupg jq libjpeg62-turbo \
    libssl3 locales make \
    openssh-client procps python3 \
    python3-pip python3-venv tzdata \
    unzip xz-utils zlib1g \
    && echo installed
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY . .
ADD ./config /etc/app/config
RUN echo step-71 >> /var/log/steps
RUN <<EOF
set -e
apt-get update
mkdir -p /opt/data
for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
cat /opt/data/items | sort | uniq > /opt/data/uniq
rm -rf /tmp/*
EOF

EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD curl -f http://localhost:8080/ || exit 1
CMD ["npm", "start"]
