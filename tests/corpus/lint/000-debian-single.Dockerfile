# debian application, single stage
FROM debian:bookworm
LABEL org.opencontainers.image.source="https://example.invalid/app" \
	org.opencontainers.image.licenses="MIT"
ENV LANG=C.UTF-8 TZ=UTC
RUN apt-get update && apt-get install -y \
	g++ gcc jq \
	libjpeg62-turbo libpq5 libsqlite3-0 \
	libssl3 libxml2 locales \
	make netcat-openbsd openssh-client \
	python3-pip wget zlib1g-dev \
	&& echo installed
WORKDIR /app
COPY . /app
RUN sudo apt-get install -y htop
RUN echo step-67 >> /var/log/steps
RUN echo step-74 >> /var/log/steps
RUN echo step-95 >> /var/log/steps
EXPOSE 8080
USER 1000
CMD ["bash"]
