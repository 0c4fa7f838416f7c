#!/usr/bin/env bash
# Start the app: bootstrap the runtime, apply migrations, serve on one port.
#
#   scripts/run.sh          production build; frontend, API and websocket on
#                           http://127.0.0.1:$PORT (PORT default 3000)
#   scripts/run.sh --dev    Reflex dev server with hot reload: frontend on $PORT
#                           (default 3000), backend on $BACKEND_PORT (default 8000)
#
# DATABASE_URL picks the database (default: SQLite file referral.db in the project);
# REFLEX_REDIS_URL turns on Redis-backed state and WORKERS backend workers.
# HOST is the address to listen on (default 127.0.0.1).
# Ctrl-C (SIGINT) or SIGTERM stops everything.
#
# Several instances may run from one checkout at once (each on its own PORT): the
# frontend is built once into .web (again only when the sources change), and each
# instance serves a copy of its own from .run/<pid>/ (its Reflex web and state
# directories and its metrics files), removed by the next start after it has ended.
# The build does not depend on the host or port it is served from
# (referral_app/infra/frontend.py).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=prod
case "${1:-}" in
    "") ;;
    --dev) mode=dev ;;
    *) echo "usage: scripts/run.sh [--dev]" >&2; exit 2 ;;
esac

say() { printf 'run: %s\n' "$*" >&2; }

# Run a command quietly; on failure show its output and exit with its status.
quiet() {
    local log rc=0
    log="$(mktemp "${TMPDIR:-/tmp}/run.XXXXXX")"
    "$@" >"$log" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        cat "$log" >&2
        say "FAILED ($rc): $*"
        rm -f "$log"
        exit "$rc"
    fi
    rm -f "$log"
}

source scripts/bootstrap.sh

PORT="${PORT:-3000}"
HOST="${HOST:-127.0.0.1}"
export PORT

# A first local run shows the simulated SMS on the page; the app's own default (and the
# image's, and compose's) is off. DEMO_MODE=false make run turns it off here too.
if [ -z "${DEMO_MODE:-}" ]; then
    export DEMO_MODE=true
    echo "run: demo mode for this local run: sign-in codes are shown on the page (DEMO_MODE=false turns it off)" >&2
fi

# Several backend workers need shared state: only with Redis (WORKERS, default: the core count).
if [ -n "${REFLEX_REDIS_URL:-}" ]; then
    export GRANIAN_WORKERS="${WORKERS:-$(nproc)}"
fi

if [ "$mode" = dev ]; then
    quiet reflex db migrate
    # The dev server's pages (on PORT) talk to the backend on another port: a second origin.
    export ALLOWED_ORIGINS="${ALLOWED_ORIGINS:-http://localhost:$PORT,http://127.0.0.1:$PORT}"
    exec reflex run --env dev --frontend-port "$PORT" --backend-port "${BACKEND_PORT:-8000}"
fi

# What the frontend build depends on: the app's sources, the Reflex version, the settings
# Reflex reads at build time.
sources_hash() {
    {
        find referral_app assets rxconfig.py requirements.txt reflex.lock -type f \
            ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 2>/dev/null \
            | sort -z | xargs -0 sha256sum
        env | grep -E '^REFLEX_(API_URL|DEPLOY_URL|FRONTEND_PATH)=' | sort || true
    } | sha256sum | cut -d' ' -f1
}

mkdir -p .stamps .run
instance=".run/$$"
(
    # One start at a time until it serves: migrations, the build, the copy (two first
    # starts would otherwise race on the same tables and the same .web).
    flock 8
    quiet reflex db migrate
    hash="$(sources_hash)"
    if [ "$(cat .stamps/frontend.sha256 2>/dev/null)" != "$hash" ] || [ ! -f .web/build/client/index.html ]; then
        say "building the frontend (first start, or the sources changed; about a minute)..."
        rm -f .stamps/frontend.sha256
        quiet reflex export --frontend-only --no-zip
        echo "$hash" >.stamps/frontend.sha256
    fi
    # Leftovers of instances that have ended (the directory is named after the server's pid).
    for old in .run/*/; do
        pid="$(basename "$old")"
        [ "$pid" = "$$" ] || kill -0 "$pid" 2>/dev/null || rm -rf "$old"
    done
    rm -rf "$instance"
    mkdir -p "$instance/web/build" "$instance/states" "$instance/metrics"
    cp -R .web/build/client "$instance/web/build/client"
) 8>.stamps/frontend.lock

export REFLEX_WEB_WORKDIR="$PWD/$instance/web"
export REFLEX_STATES_WORKDIR="$PWD/$instance/states"
export PROMETHEUS_MULTIPROC_DIR="$PWD/$instance/metrics"

shown_host="$HOST"
[ "$HOST" = 0.0.0.0 ] && shown_host=127.0.0.1
say "serving http://$shown_host:$PORT (staff pages: http://$shown_host:$PORT/admin/); Ctrl-C stops"
# exec: the server keeps this pid, so .run/<pid> is its directory.
exec python scripts/serve_prebuilt.py --host "$HOST" --port "$PORT"
