#!/usr/bin/env bash
# Run the test suite: bootstrap the dev toolchain, then pytest with any arguments.
#
#   scripts/test.sh [pytest args...]     e.g. scripts/test.sh -x -k activation
#
# DATABASE_URL unset: SQLite. DATABASE_URL=postgresql://...: the suite creates and
# drops fresh databases on that server. pytest's exit code is passed on; "no tests
# collected" (exit 5) counts as a failure too.
set -uo pipefail
cd "$(dirname "$0")/.."

source scripts/bootstrap.sh --dev || exit $?

python -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
    echo "test.sh: pytest collected no tests; that is a failure." >&2
fi
exit "$rc"
