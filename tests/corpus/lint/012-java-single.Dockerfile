# java application, single stage
FROM eclipse-temurin:21-jre
LABEL org.opencontainers.image.source="https://example.invalid/app" \
    org.opencontainers.image.licenses="MIT"
ENV LANG=C.UTF-8 TZ=UTC
RUN apt-get update && apt-get install -y \
    build-essential file g++ \
    gnupg libffi-dev libffi8 \
    libpq5 libssl-dev libssl3 \
    locales make nodejs \
    openssh-client python3 python3-pip \
    python3-venv tzdata xz-utils \
    zlib1g \
    && echo installed
WORKDIR /app
COPY pom.xml .
RUN mvn -q dependency:go-offline
COPY src ./src
RUN mvn -q package
RUN pip install requests
RUN sudo apt-get install -y htop
MAINTAINER someone@example.invalid
RUN echo step-44 >> /var/log/steps
RUN echo step-90 >> /var/log/steps
RUN chown -R 1000:1000 /app
EXPOSE 8080
CMD java -jar target/app.jar
