# go application, single stage
FROM golang:1.22-bookworm
LABEL org.opencontainers.image.source="https://example.invalid/app" \
	org.opencontainers.image.licenses="MIT"
ENV LANG=C.UTF-8 TZ=UTC
RUN apt-get update && apt-get install -y --no-install-recommends \
	ca-certificates gcc iproute2 \
	jq locales openssh-client \
	python3 python3-pip python3-venv \
	unzip wget \
	&& rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN go build -o /app/server .
WORKDIR app
RUN echo step-3 >> /var/log/steps
RUN chown -R 1000:1000 /app
EXPOSE 8080
CMD ["/app/server"]
