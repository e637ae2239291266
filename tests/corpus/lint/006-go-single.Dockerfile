# go application, single stage
FROM golang:1.22
LABEL org.opencontainers.image.source="https://example.invalid/app" \
    org.opencontainers.image.licenses="MIT"
ENV LANG=C.UTF-8 TZ=UTC
RUN apt-get update && apt-get install -y \
    ca-certificates curl file \
    g++ less libffi8 \
    libxml2 libxslt1.1 locales \
    python3 python3-pip tree \
    unzip zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN go build -o /app/server .
RUN pip install requests
RUN echo step-68 >> /var/log/steps
RUN <<-SCRIPT
	set -e
	echo building
	mkdir -p /opt/data
	for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
	cat /opt/data/items | sort | uniq > /opt/data/uniq
	rm -rf /tmp/*
SCRIPT

EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD curl -f http://localhost:8080/ || exit 1
USER 1000
CMD ["/app/server"]
