#!/bin/sh
# The container's entrypoint (see Dockerfile and compose.yaml).
#
#   docker-entrypoint.sh serve         the app on 0.0.0.0:3000 (the default command):
#                                      frontend, websocket /_event, /api and /admin on
#                                      one port, from the frontend built into the image,
#                                      copied to RUN_DIR (default /tmp/referral) with the
#                                      server's other writable files, so the image itself
#                                      can stay read-only
#   docker-entrypoint.sh migrate       apply the database migrations (reflex db migrate);
#                                      run once per release, never by each replica
#   docker-entrypoint.sh healthcheck   exit 0 if GET /api/health answers 200 (the
#                                      HEALTHCHECK; HEALTHCHECK_URL overrides the URL)
#   docker-entrypoint.sh CMD [ARG...]  run anything else, e.g.
#                                      python -m referral_app create-admin alice
#
# `serve` execs the server, so it is PID 1 and gets the stop signal itself (SIGTERM:
# Granian stops accepting, lets the workers finish and exits).
set -eu

# The image's working directory holds rxconfig.py; run from there wherever we are called.
cd "$(dirname "$0")/.."

PORT=3000

# The image's code is read-only and shared by every replica: the local fallbacks of
# these two (a generated .secret_key file, an SQLite file) cannot work here.
require_settings() {
    for name in SECRET_KEY DATABASE_URL; do
        if [ -z "$(printenv "$name" || true)" ]; then
            echo "docker-entrypoint: $name is not set (see .env.example)" >&2
            exit 2
        fi
    done
}

case "${1:-serve}" in
    serve)
        require_settings
        # Several backend workers need shared state: only with Redis, as in scripts/run.sh
        # (WORKERS, default: the cores this container may use).
        if [ -n "${REFLEX_REDIS_URL:-}" ]; then
            GRANIAN_WORKERS="${WORKERS:-$(nproc)}"
            export GRANIAN_WORKERS
        fi
        # Everything the server writes, in one directory of this container's own, made
        # anew at each start: Reflex's web directory (a copy of the build), its state
        # files (used without Redis) and the metrics of the workers (prometheus-client's
        # multiprocess mode, whose files must not outlive the processes that wrote them).
        run_dir="${RUN_DIR:-/tmp/referral}"
        if [ ! -f .web/build/client/index.html ]; then
            echo "docker-entrypoint: .web/build/client is missing (build the image with the Dockerfile)" >&2
            exit 2
        fi
        rm -rf "$run_dir"
        mkdir -p "$run_dir/web/build" "$run_dir/states" "$run_dir/metrics" "$run_dir/reflex"
        cp -R .web/build/client "$run_dir/web/build/client"
        REFLEX_WEB_WORKDIR="$run_dir/web"
        REFLEX_STATES_WORKDIR="$run_dir/states"
        REFLEX_DIR="$run_dir/reflex"
        PROMETHEUS_MULTIPROC_DIR="$run_dir/metrics"
        export REFLEX_WEB_WORKDIR REFLEX_STATES_WORKDIR REFLEX_DIR PROMETHEUS_MULTIPROC_DIR
        exec python scripts/serve_prebuilt.py --host 0.0.0.0 --port "$PORT"
        ;;
    migrate)
        require_settings
        exec reflex db migrate
        ;;
    healthcheck)
        exec python - "${HEALTHCHECK_URL:-http://127.0.0.1:$PORT/api/health}" <<'PY'
import sys
import urllib.error
import urllib.request

try:
    with urllib.request.urlopen(sys.argv[1], timeout=4) as response:
        status, body = response.status, response.read(500)
except urllib.error.HTTPError as error:
    status, body = error.code, error.read(500)
except OSError as error:
    sys.exit(f"unhealthy: {error}")
if status != 200:
    sys.exit(f"unhealthy: HTTP {status} {body.decode(errors='replace')}")
PY
        ;;
    *)
        exec "$@"
        ;;
esac
