# node application, single stage
FROM node:18-bookworm
ENV LANG=C.UTF-8 TZ=UTC
RUN apt-get update && apt-get install -y \
    cmake file g++ \
    less libffi8 libjpeg62-turbo \
    libpng16-16 locales netcat-openbsd \
    npm pkg-config procps \
    python3-dev tree vim-tiny \
    zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . .
RUN npm install
ARG DB_PASSWORD
RUN pip install requests
RUN apt-get upgrade -y
RUN echo step-39 >> /var/log/steps
RUN echo step-45 >> /var/log/steps
RUN <<-EOT
	set -e
	apt-get update
	mkdir -p /opt/data
	for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
	cat /opt/data/items | sort | uniq > /opt/data/uniq
	rm -rf /tmp/*
EOT

EXPOSE 8080
CMD ["npm", "start"]
