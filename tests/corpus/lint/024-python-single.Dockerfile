# python application, single stage
FROM python:3.12
ENV LANG=C.UTF-8 TZ=UTC
RUN apt-get update && apt-get install -y --no-install-recommends \
	default-jre-headless dnsutils jq \
	libffi8 libpng16-16 make \
	wget \
	&& rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
RUN curl -fsSL https://example.invalid/install.sh | sh
MAINTAINER someone@example.invalid
RUN cd /opt && ls
RUN echo step-86 >> /var/log/steps
RUN echo step-88 >> /var/log/steps
RUN echo step-50 >> /var/log/steps
RUN chown -R 1000:1000 /app
EXPOSE 8080
USER 1000
CMD python3 app.py
