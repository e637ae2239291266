# go application, single stage
FROM golang
LABEL org.opencontainers.image.source="https://example.invalid/app" \
    org.opencontainers.image.licenses="MIT"
ENV LANG=C.UTF-8 TZ=UTC
RUN apt-get update && apt-get install -y \
    dnsutils libffi-dev libffi8 \
    libpng16-16 libsqlite3-0 libssl-dev \
    libxslt1.1 locales netcat-openbsd \
    nodejs openssh-client pkg-config \
    procps python3-pip vim-tiny \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN go build -o /app/server .
WORKDIR app
ARG DB_PASSWORD
RUN curl -fsSL https://example.invalid/install.sh | sh
RUN echo step-47 >> /var/log/steps
RUN echo step-88 >> /var/log/steps
RUN echo step-57 >> /var/log/steps
RUN <<EOF
set -e
apt-get update
mkdir -p /opt/data
for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
cat /opt/data/items | sort | uniq > /opt/data/uniq
rm -rf /tmp/*
EOF

RUN chown -R 1000:1000 /app
EXPOSE 8080
CMD /app/server
