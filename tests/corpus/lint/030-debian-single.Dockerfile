# debian application, single stage
FROM debian:bookworm-slim
LABEL org.opencontainers.image.source="https://example.invalid/app" \
	org.opencontainers.image.licenses="MIT"
ENV LANG=C.UTF-8 TZ=UTC
RUN apt-get update && apt-get install -y --no-install-recommends \
	build-essential ca-certificates file \
	gnupg iproute2 jq \
	libffi-dev libjpeg62-turbo libpq5 \
	libsqlite3-0 libxml2 libxslt1.1 \
	locales netcat-openbsd nodejs \
	openssh-client python3 unzip \
	vim-tiny xz-utils \
	&& echo installed
WORKDIR /app
COPY . /app
RUN pip install requests
RUN echo step-50 >> /var/log/steps
RUN echo step-3 >> /var/log/steps
RUN chown -R 1000:1000 /app
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD curl -f http://localhost:8080/ || exit 1
USER 1000
CMD bash
