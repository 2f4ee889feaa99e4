# crossposter daemon image. Build: docker build -t crossposter .
# Run (see the README, "Running as a daemon in a container"):
#   docker run -d --user "$(id -u):$(id -g)" --stop-timeout 90 -v "$PWD:/data" -e CROSSPOSTER_BLUESKY_PASSWORD=... crossposter
#
# The same software on every rebuild: the Python packages come from the lock files, every version pinned and every
# file checked against its sha256 (pip --require-hashes); `tools/lock-requirements.sh` regenerates them. The base is
# Debian 12 (bookworm) with CPython 3.11: its tag still moves with 3.11 patch releases and Debian security updates.

# Stage 1: the locked dependencies, into /install. Reused (cached) until a lock file changes.
# --only-binary: the slim image has no compiler, and the locked wheels are what was tested.
# --ignore-installed: everything goes into /install, even what this stage's own Python already has.
FROM python:3.11-slim-bookworm AS deps
WORKDIR /src
COPY requirements-build.lock requirements.lock ./
RUN pip install --no-cache-dir --disable-pip-version-check --require-hashes --only-binary=:all: \
        -r requirements-build.lock \
    && pip install --no-cache-dir --disable-pip-version-check --require-hashes --only-binary=:all: \
        --ignore-installed --prefix=/install -r requirements.lock

# Stage 2: the package itself, into /app: no dependencies (they came from the lock), built by the locked
# setuptools of stage 1 (no build isolation, which would fetch whatever setuptools is newest).
FROM deps AS build
COPY pyproject.toml README.md ./
COPY crossposter ./crossposter
RUN pip install --no-cache-dir --disable-pip-version-check --no-deps --no-build-isolation --prefix=/app .

# Stage 3: the runtime: Python, the installed packages, nothing else. Two layers: the dependencies (the same
# until the lock changes, so an upgrade of crossposter alone downloads a small layer) and the package.
FROM python:3.11-slim-bookworm
COPY --from=deps /install /usr/local
COPY --from=build /app /usr/local
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /data crossposter \
    && mkdir -p /data && chown crossposter:crossposter /data
# /data holds the config, the archives (crossposter writes post IDs into them) and the state directory.
VOLUME /data
WORKDIR /data
# HOME=/data: a `~` in the config's paths means /data for any --user (Docker gives a uid the image has no passwd
# entry for HOME=/).
ENV CROSSPOSTER_CONFIG=/data/crossposter.yaml \
    HOME=/data \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER crossposter
# Healthy while the daemon's heartbeat file is fresh (younger than 3 x daemon.heartbeat_interval).
HEALTHCHECK --interval=60s --timeout=10s --start-period=30s --retries=3 CMD ["crossposter", "health"]
# SIGTERM (docker stop): the current request finishes, progress is recorded, exit 0. The longest request may take
# 60 s (the Mastodon client's timeout), so give `docker stop` more than its default 10 s: --stop-timeout 90.
STOPSIGNAL SIGTERM
ENTRYPOINT ["crossposter"]
CMD ["daemon"]
