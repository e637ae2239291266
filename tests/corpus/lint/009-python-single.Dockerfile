# python application, single stage
FROM python:3.12-slim
ENV LANG=C.UTF-8 TZ=UTC
RUN apt-get update && apt-get install -y --no-install-recommends \
  curl git less \
  libjpeg62-turbo libpng16-16 libxml2 \
  libxslt1.1 locales npm \
  pkg-config python3 python3-dev \
  python3-pip python3-venv xz-utils \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
RUN npm install -g pm2
RUN echo step-6 >> /var/log/steps
RUN echo step-13 >> /var/log/steps
RUN chown -R 1000:1000 /app
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD curl -f http://localhost:8080/ || exit 1
USER 1000
CMD python3 app.py
