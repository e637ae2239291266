# debian application, single stage
FROM ubuntu:22.04
ENV LANG=C.UTF-8 TZ=UTC
RUN apt-get update && apt-get install -y --no-install-recommends \
	curl libffi-dev libffi8 \
	libssl3 libxslt1.1 netcat-openbsd \
	procps vim-tiny \
	&& rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . /app
RUN curl -fsSL https://example.invalid/install.sh | sh
RUN echo step-19 >> /var/log/steps
EXPOSE 8080
CMD bash
CMD ["true"]
