# syntax=docker/dockerfile:1
#
# The production image: frontend, websocket (/_event), REST API (/api) and admin
# (/admin) on port 3000, served by Granian from a frontend built at image build time.
#
#   docker compose up -d --build                       the whole stack (compose.yaml)
#   docker build -t referral-app .                     the image alone
#   docker run --rm --env-file .env referral-app migrate    apply migrations, once per release
#   docker run -d -p 3000:3000 --env-file .env referral-app  serve (the default command)
#
# Stage "build": Debian's npm installs bun with scripts/install-bun.sh (the step that
# `make run` and `make test` use), pip installs requirements.txt into /opt/venv, and
# `reflex export` builds the production frontend into .web/build/client.
# Stage "runtime": the same Python base with the venv, the app and the built frontend;
# no compiler, node, npm or bun; runs as an unprivileged user. Migrations are not run
# at start: `migrate` is a separate command (compose runs it once, before the app).
#
# The image serves any address: the built frontend opens its websocket at the page's own
# origin (referral_app/infra/frontend.py), so nothing about the public URL is built in.
#
# Build argument:
#   NPM_CONFIG_REGISTRY  where npm and bun get packages (default the public npm registry).

# One pinned base for both stages (an exact tag: Python 3.11.14 on Debian 12).
FROM python:3.11.14-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    REFLEX_TELEMETRY_ENABLED=false
WORKDIR /app


FROM base AS build

# npm (and the node it runs on) from Debian, only to fetch bun from the npm registry.
# Not pinned to a Debian package version (DL3008): bookworm's point and security
# releases remove superseded versions from the archive, so a pin would break the
# build; the base image's tag fixes the Debian release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends npm \
    && rm -rf /var/lib/apt/lists/*

ARG NPM_CONFIG_REGISTRY=https://registry.npmjs.org/
COPY scripts/install-bun.sh scripts/
RUN bun="$(scripts/install-bun.sh /opt/bun)" \
    && ln -s "$bun" /usr/local/bin/bun \
    && bun --version
ENV REFLEX_BUN_PATH=/usr/local/bin/bun

RUN python -m venv /opt/venv
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

COPY reflex.lock/ reflex.lock/
COPY rxconfig.py alembic.ini ./
COPY alembic/ alembic/
COPY assets/ assets/
COPY referral_app/ referral_app/
COPY scripts/docker-entrypoint.sh scripts/serve_prebuilt.py scripts/

# The production frontend, built once here (the server never rebuilds it: see
# scripts/serve_prebuilt.py). SECRET_KEY and DATABASE_URL only let the app module be
# imported for the build; neither is kept in the image. The JavaScript packages are
# dropped afterwards: the built files are all the server needs.
RUN SECRET_KEY=build-only-placeholder \
    DATABASE_URL=sqlite:////tmp/build.db \
    reflex export --frontend-only --no-zip \
    && test -f .web/build/client/index.html \
    && rm -rf .web/node_modules .states /tmp/build.db


FROM base AS runtime

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /home/app --create-home \
        --shell /usr/sbin/nologin app

COPY --from=build /opt/venv /opt/venv
# The code stays owned by root (read-only for the app). The server writes only under
# /tmp/referral (RUN_DIR in scripts/docker-entrypoint.sh: a copy of the built frontend,
# Reflex's state files, the metrics files), so the root filesystem can be read-only
# with a writable /tmp (an emptyDir in deploy/kubernetes).
COPY --from=build /app /app

USER 10001:10001
EXPOSE 3000

# Granian (the server) stops gracefully on SIGTERM: it stops accepting connections,
# lets the workers finish and exits 0. The entrypoint execs it, so it is PID 1 (or
# the child of compose's `init: true`, which passes the signal on).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/app/scripts/docker-entrypoint.sh", "healthcheck"]

ENTRYPOINT ["/app/scripts/docker-entrypoint.sh"]
CMD ["serve"]
