# The gateway image: the same package, pins and configuration the tests use.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml requirements.lock README.md ./
COPY gateway ./gateway
COPY schemas ./schemas
COPY mappings ./mappings
COPY config ./config
COPY samples ./samples
RUN pip install --no-cache-dir -c requirements.lock -e . \
 && useradd --system --home /app gateway && mkdir -p /app/data && chown gateway /app/data
USER gateway
EXPOSE 8080
CMD ["gateway", "serve", "--host", "0.0.0.0"]
