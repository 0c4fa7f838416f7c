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
# Ctrl-C (SIGINT) or SIGTERM stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=prod
case "${1:-}" in
    "") ;;
    --dev) mode=dev ;;
    *) echo "usage: scripts/run.sh [--dev]" >&2; exit 2 ;;
esac

source scripts/bootstrap.sh

PORT="${PORT:-3000}"
export PORT

# A first local run shows the simulated SMS on the page; the app's own default (and the
# image's, and compose's) is off. DEMO_MODE=false make run turns it off here too.
if [ -z "${DEMO_MODE:-}" ]; then
    export DEMO_MODE=true
    echo "run: demo mode for this local run: sign-in codes are shown on the page (DEMO_MODE=false turns it off)" >&2
fi

reflex db migrate

# Several backend workers need shared state: only with Redis (WORKERS, default: the core count).
if [ -n "${REFLEX_REDIS_URL:-}" ]; then
    export GRANIAN_WORKERS="${WORKERS:-$(nproc)}"
fi

if [ "$mode" = dev ]; then
    # The dev server's pages (on PORT) talk to the backend on another port: a second origin.
    export ALLOWED_ORIGINS="${ALLOWED_ORIGINS:-http://localhost:$PORT,http://127.0.0.1:$PORT}"
    exec reflex run --env dev --frontend-port "$PORT" --backend-port "${BACKEND_PORT:-8000}"
fi
exec reflex run --env prod --single-port --frontend-port "$PORT" --backend-port "$PORT"
