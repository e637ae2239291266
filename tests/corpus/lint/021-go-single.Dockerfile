# go application, single stage
FROM golang
ENV LANG=C.UTF-8 TZ=UTC
RUN apt-get update && apt-get install -y --no-install-recommends \
  gnupg jq less \
  libffi8 libjpeg62-turbo libpng16-16 \
  libsqlite3-0 libssl3 libxml2 \
  libxslt1.1 make netcat-openbsd \
  nodejs tree tzdata \
  zlib1g zlib1g-dev \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN go build -o /app/server .
MAINTAINER someone@example.invalid
RUN npm install -g pm2
ADD https://example.invalid/data.bin /opt/data.bin
RUN curl -fsSL https://example.invalid/install.sh | sh
RUN echo step-18 >> /var/log/steps
RUN echo step-58 >> /var/log/steps
RUN chown -R 1000:1000 /app
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD curl -f http://localhost:8080/ || exit 1
CMD /app/server
