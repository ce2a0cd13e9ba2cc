# svcnet in a container: the daemon plus the seed's manifests from config/.
#   docker compose up          (see docker-compose.yml)
# then, on the host: dig @127.0.0.1 echo.default +short; curl -s localhost:30026
FROM python:3.11-slim

# dig and curl, for trying the cluster from inside (`docker compose exec svcnet ...`).
RUN apt-get update \
    && apt-get install -y --no-install-recommends dnsutils curl \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY svcnet ./svcnet
RUN pip install --no-cache-dir --root-user-action=ignore . \
    && rm -rf build svcnet.egg-info

COPY config ./config
COPY docker/svcnet.yaml /etc/svcnet/svcnet.yaml

# API, cluster DNS (UDP and TCP, 5353 inside; see docker/svcnet.yaml), the seed's NodePort.
EXPOSE 6443 5353/udp 5353/tcp 30026
STOPSIGNAL SIGTERM
CMD ["svcnet", "up", "-f", "/app/config", "--config", "/etc/svcnet/svcnet.yaml", "--state-dir", "/var/lib/svcnet"]
