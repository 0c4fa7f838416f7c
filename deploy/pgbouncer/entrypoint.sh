#!/bin/sh
# PgBouncer in transaction mode in front of one PostgreSQL server, configured from the
# environment (compose.yaml, deploy/kubernetes/pgbouncer.yaml):
#
#   DB_HOST, DB_PORT (5432)        the PostgreSQL server
#   DB_USER, DB_PASSWORD           the one role the app uses (clients log in as it too)
#   POOL_SIZE (20)                 server connections per database and user: what the
#                                  app may hold at once, whatever the number of replicas
#   MAX_CLIENT_CONN (1000)         client connections: replicas x workers x (pool + overflow)
#   LISTEN_ADDR (0.0.0.0), LISTEN_PORT (6432)
#
# Transaction mode suits the app: psycopg2 uses no server-side prepared statements, the
# only locks are transaction-scoped (pg_advisory_xact_lock), and nothing sets session
# state (SET, LISTEN, temporary tables). Migrations should go to PostgreSQL directly.
set -eu
: "${DB_HOST:?DB_HOST is not set}" "${DB_USER:?DB_USER is not set}" "${DB_PASSWORD:?DB_PASSWORD is not set}"
config="${PGBOUNCER_CONFIG_DIR:-/tmp/pgbouncer}"
mkdir -p "$config"
umask 077
printf '"%s" "%s"\n' "$DB_USER" "$DB_PASSWORD" >"$config/userlist.txt"
cat >"$config/pgbouncer.ini" <<INI
[databases]
* = host=$DB_HOST port=${DB_PORT:-5432}

[pgbouncer]
listen_addr = ${LISTEN_ADDR:-0.0.0.0}
listen_port = ${LISTEN_PORT:-6432}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $config/userlist.txt
pool_mode = transaction
default_pool_size = ${POOL_SIZE:-20}
max_client_conn = ${MAX_CLIENT_CONN:-1000}
server_reset_query =
ignore_startup_parameters = extra_float_digits,options
INI
exec pgbouncer "$config/pgbouncer.ini"
