# Collect: one image for the web server (default) and the workers.
#
#   docker build -t collect .
#   docker run collect web          # gunicorn on 0.0.0.0:8000 (the default command)
#   docker run collect worker       # a Celery worker; run as many as the load needs
#   docker run collect migrate      # any `collect` (manage.py) command
#
# The HEALTHCHECK probes the web server; a worker container overrides it (see
# compose.yaml) or runs with --no-healthcheck. Settings: .env.example, docs/deploy.md.

# --- build: compilers and headers live here only -----------------------------
FROM python:3.11-slim AS build

# Debian's security updates replace these versions; pinning them would break
# the build on the next update, so the base image tag is what pins them.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev libmariadb-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv
WORKDIR /src
COPY . .
# The project and its database drivers, with the version ranges pyproject.toml pins.
RUN pip install --no-cache-dir "/src[mysql,postgres]"

# --- final: the virtualenv, the source, no compilers -------------------------
FROM python:3.11-slim

# libmariadb3 is the only native library mysqlclient needs at run time
# (psycopg's binary wheel brings its own libpq). Unpinned for the reason above.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libmariadb3 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 collect \
    && useradd --system --uid 10001 --gid collect --home-dir /app --shell /usr/sbin/nologin collect \
    && mkdir /data \
    && chown collect:collect /data

COPY --from=build /opt/venv /opt/venv

# The code runs from /app: the templates/ and static/ folders sit next to the
# packages (settings find them from the package's location), so PYTHONPATH puts
# this copy ahead of the one pip installed into the virtualenv.
# The data folder (uploads, exports, temporary files) is /data: mount one
# volume there, shared by the web and every worker (or configure a shared
# storage, docs/deploy.md). Static files are collected into the image.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=collect.settings \
    COLLECT_DATA_DIR=/data \
    STATIC_ROOT=/app/staticfiles \
    COLLECT_BIND=0.0.0.0:8000

WORKDIR /app
# Owned by root: the app user can read its code but not change it.
COPY . .

# Settings need a key and a writable data folder to load; both exist only for
# this step (the real key comes from the environment at run time; production
# mode, which refuses such a key, is for run time too).
RUN COLLECT_PRODUCTION=false SECRET_KEY=build-only-not-secret COLLECT_DATA_DIR=/tmp/build-data \
    collect collectstatic --noinput --verbosity 0 \
    && rm -rf /tmp/build-data

USER 10001:10001
EXPOSE 8000

# /healthz answering 200 means the web server and Django are up. The Host is one
# ALLOWED_HOSTS accepts; /healthz is exempt from COLLECT_PRODUCTION's redirect to
# https (the probe speaks plain HTTP from inside the container).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; host = os.environ.get('ALLOWED_HOSTS', 'localhost').split(',')[0].strip().lstrip('.*') or 'localhost'; port = os.environ.get('COLLECT_BIND', '0.0.0.0:8000').rsplit(':', 1)[1]; r.urlopen(r.Request(f'http://127.0.0.1:{port}/healthz', headers={'Host': host}), timeout=4)"]

ENTRYPOINT ["collect"]
CMD ["web"]
