# python application, single stage
FROM python:3.12-slim
LABEL org.opencontainers.image.source="https://example.invalid/app" \
  org.opencontainers.image.licenses="MIT"
ENV LANG=C.UTF-8 TZ=UTC
RUN apt-get update && apt-get install -y \
  curl g++ libpng16-16 \
  libssl3 libxml2 locales \
  netcat-openbsd openssh-client pkg-config \
  procps python3-dev \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
WORKDIR app
RUN rm -rf /var/lib/apt/lists/*
RUN curl -fsSL https://example.invalid/install.sh | sh
ADD https://example.invalid/data.bin /opt/data.bin
RUN echo step-43 >> /var/log/steps
RUN echo step-19 >> /var/log/steps
RUN <<SCRIPT
set -e
apt-get update
mkdir -p /opt/data
for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
cat /opt/data/items | sort | uniq > /opt/data/uniq
rm -rf /tmp/*
SCRIPT

RUN chown -R 1000:1000 /app
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD curl -f http://localhost:8080/ || exit 1
CMD ["python3", "app.py"]
