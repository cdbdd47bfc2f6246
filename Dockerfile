# The Sluice worker image: `docker compose up` builds it (see docker-compose.yml).
# Stage 1 builds Sluice's wheel from the source tree, with its C extensions (setup.py: the
# per-row codecs; without gcc they would silently be left out and Sluice run ~3x slower);
# stage 2 installs it with its pinned dependencies (pyproject.toml), so the final image holds
# no source tree and no build tools.
FROM python:3.11-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl \
 && rm -rf /wheels \
 && useradd --system --uid 10001 --create-home --home-dir /home/sluice sluice
USER sluice
WORKDIR /home/sluice
# The worker's REST API (Kafka Connect–shaped, see README "Workers"); /health answers UP.
EXPOSE 8083
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8083/health', timeout=4)"]
# `docker stop` sends this; it is the signal on which `sluice worker` is to shut down cleanly.
STOPSIGNAL SIGTERM
ENTRYPOINT ["sluice"]
CMD ["worker", "--group", "sluice"]
