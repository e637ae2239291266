# python application, single stage
FROM python:3.12
LABEL org.opencontainers.image.source="https://example.invalid/app" \
	org.opencontainers.image.licenses="MIT"
ENV LANG=C.UTF-8 TZ=UTC
RUN apt-get update && apt-get install -y \
	cmake g++ gcc \
	iproute2 jq less \
	libffi8 libjpeg62-turbo libsqlite3-0 \
	libssl-dev libxml2 make \
	netcat-openbsd npm openssh-client \
	pkg-config python3 python3-venv \
	tree unzip zlib1g-dev \
	&& rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
ADD ./config /etc/app/config
ENV API_TOKEN=changeme
RUN echo step-87 >> /var/log/steps
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD curl -f http://localhost:8080/ || exit 1
USER 1000
CMD gunicorn -b 0.0.0.0:8080 app:app
