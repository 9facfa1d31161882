# spikegate: `docker run -p 8080:8080 spikegate` serves the embedded demo.
# Pinned: the base image by tag, every Python package by version (deploy/requirements.lock).
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NUMBA_CACHE_DIR=/var/cache/spikegate/numba \
    SPIKEGATE_SERVER__HOST=0.0.0.0 \
    SPIKEGATE_SERVER__PORT=8080

RUN groupadd --system --gid 10001 spikegate \
 && useradd --system --uid 10001 --gid spikegate --home-dir /app --shell /usr/sbin/nologin spikegate

WORKDIR /app

# dependencies first: this layer is reused while only the code changes
COPY deploy/requirements.lock deploy/requirements.lock
RUN pip install --no-deps -r deploy/requirements.lock

COPY pyproject.toml README.md ./
COPY spikegate spikegate
COPY drivers drivers
COPY models models
COPY service service
# the package, then numba's cache warmed at build (start-up warms it again
# if the CPU differs, before /readyz says 200)
RUN pip install --no-deps . \
 && mkdir -p "$NUMBA_CACHE_DIR" \
 && spikegate warm-up \
 && chown -R spikegate:spikegate /var/cache/spikegate

USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["spikegate", "probe"]
STOPSIGNAL SIGTERM
CMD ["spikegate", "serve"]
