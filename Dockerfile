# The gateway image: the same package, pins, contracts and configuration the tests use, and no
# secret at all: config/gateway.yaml reads every secret from the environment (docker-compose.yml
# passes them from .env); TLS files are mounted read-only and named by GATEWAY_TLS_CERT_FILE /
# GATEWAY_TLS_KEY_FILE / GATEWAY_TLS_CLIENT_CA_FILE. Another configuration: mount it and set
# GATEWAY_CONFIG.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml requirements.lock README.md ./
COPY gateway ./gateway
COPY schemas ./schemas
COPY mappings ./mappings
COPY config/gateway.yaml ./config/gateway.yaml
RUN pip install --no-cache-dir -c requirements.lock -e . \
 && useradd --system --home /app gateway && mkdir -p /app/data && chown gateway /app/data
USER gateway
EXPOSE 8080
# All of the container's interfaces, callers authenticated (server.auth: x-tif, callers: in the
# configuration); `gateway serve` refuses any non-loopback host while server.auth is off.
CMD ["gateway", "serve", "--host", "0.0.0.0"]
