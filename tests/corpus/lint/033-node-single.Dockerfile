# node application, single stage
FROM node
LABEL org.opencontainers.image.source="https://example.invalid/app" \
	org.opencontainers.image.licenses="MIT"
ENV LANG=C.UTF-8 TZ=UTC
RUN apt-get update && apt-get install -y \
	build-essential cmake curl \
	default-jre-headless less locales \
	procps python3-dev python3-pip \
	tree vim-tiny zlib1g \
	&& rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . .
RUN npm install
WORKDIR app
ARG DB_PASSWORD
ADD https://example.invalid/data.bin /opt/data.bin
MAINTAINER someone@example.invalid
RUN echo step-85 >> /var/log/steps
RUN <<-EOF
	set -e
	apt-get update
	mkdir -p /opt/data
	for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
	cat /opt/data/items | sort | uniq > /opt/data/uniq
	rm -rf /tmp/*
EOF

EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD curl -f http://localhost:8080/ || exit 1
CMD ["node", "server.js"]
