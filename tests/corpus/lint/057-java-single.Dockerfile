# java application, single stage
FROM maven:3.9-eclipse-temurin-21
ENV LANG=C.UTF-8 TZ=UTC
RUN apt-get update && apt-get install -y \
    build-essential cmake dnsutils \
    gnupg libpng16-16 libsqlite3-0 \
    libssl-dev libxslt1.1 npm \
    pkg-config tzdata unzip \
    wget xz-utils \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pom.xml .
RUN mvn -q dependency:go-offline
COPY src ./src
RUN mvn -q package
ENV API_TOKEN=changeme
RUN pip install requests
RUN echo step-27 >> /var/log/steps
RUN echo step-60 >> /var/log/steps
RUN chown -R 1000:1000 /app
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD curl -f http://localhost:8080/ || exit 1
CMD ["java", "-jar", "target/app.jar"]
