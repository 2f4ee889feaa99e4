# crossposter daemon image. Build: docker build -t crossposter .
# Run:  docker run -d -v "$PWD:/data" -e CROSSPOSTER_BLUESKY_PASSWORD=... -e CROSSPOSTER_MASTODON_ACCESS_TOKEN=... crossposter

# Stage 1: build the wheel and install it with its dependencies into /install (any build tools stay here).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY crossposter ./crossposter
RUN pip install --no-cache-dir --prefix=/install .

# Stage 2: the runtime: Python, the installed package, nothing else.
FROM python:3.11-slim
COPY --from=build /install /usr/local
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /data crossposter \
    && mkdir -p /data && chown crossposter:crossposter /data
# /data holds the config, the archives (crossposter writes post IDs into them) and the state directory.
VOLUME /data
WORKDIR /data
ENV CROSSPOSTER_CONFIG=/data/crossposter.yaml \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER crossposter
# Healthy while the daemon's heartbeat file is fresh (younger than 3 x daemon.heartbeat_interval).
HEALTHCHECK --interval=60s --timeout=10s --start-period=30s --retries=3 CMD ["crossposter", "health"]
# SIGTERM (docker stop): the current request finishes, progress is recorded, exit 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["crossposter"]
CMD ["daemon"]
