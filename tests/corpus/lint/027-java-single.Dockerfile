# java application, single stage
FROM eclipse-temurin:21-jre
LABEL org.opencontainers.image.source="https://example.invalid/app" \
  org.opencontainers.image.licenses="MIT"
ENV LANG=C.UTF-8 TZ=UTC
RUN apt-get update && apt-get install -y --no-install-recommends \
  default-jre-headless git less \
  libxml2 make npm \
  && echo installed
WORKDIR /app
COPY pom.xml .
RUN mvn -q dependency:go-offline
COPY src ./src
RUN mvn -q package
ADD ./config /etc/app/config
RUN pip install requests
RUN <<EOF
set -e
echo building
mkdir -p /opt/data
for i in 1 2 3; do echo "item $i" >> /opt/data/items; done
cat /opt/data/items | sort | uniq > /opt/data/uniq
rm -rf /tmp/*
EOF

RUN chown -R 1000:1000 /app
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD curl -f http://localhost:8080/ || exit 1
USER 1000
CMD java -jar target/app.jar
