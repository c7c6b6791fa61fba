#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer on 127.0.0.1 for the test suite.
# Starts them when installed and down; installs them with apt-get when missing and run as root;
# otherwise says exactly what is missing. Creates the project's database role and database.
set -u
PGHOST=127.0.0.1
PGPORT=${PGPORT:-5432}
REDIS_PORT=${REDIS_PORT:-6379}
DB_NAME=${DB_NAME:-tradingsite}
missing=()

have() { command -v "$1" >/dev/null 2>&1; }
pg_up() { have pg_isready && pg_isready -q -h "$PGHOST" -p "$PGPORT"; }
redis_up() { have redis-cli && [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]; }
as_root() { [ "$(id -u)" = "0" ]; }
apt_install() {
  if as_root && have apt-get; then
    echo "services: installing $* with apt-get" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } >/dev/null 2>&1
  else
    return 1
  fi
}
wait_for() { for _ in $(seq 1 30); do "$1" && return 0; sleep 0.5; done; return 1; }

start_postgres() {
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    apt_install postgresql || return 1
  fi
  local ver; ver=$(ls /etc/postgresql | sort -V | tail -n 1)
  # Trust local TCP connections, as the test machine is set up (only when we created the cluster).
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start >/dev/null 2>&1 || true
  wait_for pg_up
}

start_redis() {
  have redis-server || apt_install redis-server || return 1
  mkdir -p /tmp/redis-tradingsite
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir /tmp/redis-tradingsite >/dev/null 2>&1 || true
  wait_for redis_up
}

if ! pg_up; then
  have pg_isready || apt_install postgresql-client postgresql || true
  pg_up || start_postgres || missing+=("PostgreSQL on $PGHOST:$PGPORT (install the 'postgresql' package, or run as root so this script can)")
fi
if ! redis_up; then
  have redis-cli || apt_install redis-server redis-tools || true
  redis_up || start_redis || missing+=("Redis on 127.0.0.1:$REDIS_PORT (install the 'redis-server' package, or run as root so this script can)")
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "services: missing:" >&2
  for m in "${missing[@]}"; do echo "  - $m" >&2; done
  exit 1
fi

# The tests connect as the current user (trust auth); make sure that role and a database exist.
me=$(id -un)
psql_admin() {
  psql -h "$PGHOST" -p "$PGPORT" -U "$me" -d postgres -tAc "$1" 2>/dev/null \
    || { as_root && su postgres -c "psql -p $PGPORT -tAc \"$1\"" 2>/dev/null; }
}
if ! psql -h "$PGHOST" -p "$PGPORT" -U "$me" -d postgres -tAc "select 1" >/dev/null 2>&1; then
  as_root && su postgres -c "psql -p $PGPORT -tAc \"CREATE ROLE \\\"$me\\\" SUPERUSER LOGIN\"" >/dev/null 2>&1
fi
if [ "$(psql_admin "select 1 from pg_database where datname='$DB_NAME'")" != "1" ]; then
  psql_admin "CREATE DATABASE \"$DB_NAME\"" >/dev/null
fi
echo "services: PostgreSQL $PGHOST:$PGPORT and Redis 127.0.0.1:$REDIS_PORT are up"
