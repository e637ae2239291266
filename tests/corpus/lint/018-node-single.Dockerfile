# node application, single stage
FROM node:20
LABEL org.opencontainers.image.source="https://example.invalid/app" \
  org.opencontainers.image.licenses="MIT"
ENV LANG=C.UTF-8 TZ=UTC
RUN apt-get update && apt-get install -y --no-install-recommends \
  dnsutils jq less \
  libffi-dev libpq5 libxslt1.1 \
  nodejs tzdata unzip \
  && echo installed
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY . .
WORKDIR app
RUN rm -rf /var/lib/apt/lists/*
RUN npm install -g pm2
RUN echo step-70 >> /var/log/steps
RUN chown -R 1000:1000 /app
EXPOSE 8080
USER 1000
CMD ["npm", "start"]
