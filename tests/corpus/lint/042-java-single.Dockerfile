# java application, single stage
FROM eclipse-temurin:21-jre
LABEL org.opencontainers.image.source="https://example.invalid/app" \
	org.opencontainers.image.licenses="MIT"
ENV LANG=C.UTF-8 TZ=UTC
RUN apt-get update && apt-get install -y \
	ca-certificates curl default-jre-headless \
	iproute2 less libffi-dev \
	libffi8 libjpeg62-turbo netcat-openbsd \
	python3-dev python3-pip wget \
	xz-utils \
	&& echo installed
WORKDIR /app
COPY pom.xml .
RUN mvn -q dependency:go-offline
COPY src ./src
RUN mvn -q package
ENV API_TOKEN=changeme
RUN echo step-19 >> /var/log/steps
EXPOSE 8080
USER 1000
CMD java -jar target/app.jar
