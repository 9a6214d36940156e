# The gateway image: the same package, pins and contracts the tests use, and no secret at all.
# config/container.yaml (generated from config/gateway.yaml by scripts/container_config.py) takes
# every credential from the environment (docker-compose.yml passes them from .env); TLS files are
# mounted read-only and named by GATEWAY_TLS_CERT_FILE / _KEY_FILE / _CLIENT_CA_FILE.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml requirements.lock README.md ./
COPY gateway ./gateway
COPY schemas ./schemas
COPY mappings ./mappings
COPY config/container.yaml ./config/container.yaml
RUN pip install --no-cache-dir -c requirements.lock -e . \
 && useradd --system --home /app gateway && mkdir -p /app/data && chown gateway /app/data
USER gateway
ENV GATEWAY_CONFIG=/app/config/container.yaml
EXPOSE 8080
# Listens on the container's interfaces (server.host in container.yaml) with callers
# authenticated (server.auth: x-tif); `gateway serve` refuses any non-loopback host with auth off.
CMD ["gateway", "serve"]
