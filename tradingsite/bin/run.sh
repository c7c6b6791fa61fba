#!/usr/bin/env bash
# `make run`: the web site, a Celery worker, Celery beat, the IB listener (ib_listen) and, when
# IBKR_HOST is unset, the loopback IB Gateway — all stopped together on Ctrl-C. Expects
# migrations already applied.
set -u
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
PORT=${PORT:-8000}
mkdir -p var/log
pids=()
stop() {
  trap - INT TERM EXIT
  [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null
  wait 2>/dev/null
}
trap stop INT TERM EXIT

# ib_listen is IB's master client: the gateway sends it every client's orders and fills.
export IBKR_MASTER_CLIENT_ID=${IBKR_MASTER_CLIENT_ID:-$(( ${IBKR_CLIENT_ID:-1} + 3 ))}
if [ -z "${IBKR_HOST:-}" ]; then
  export IBKR_HOST=127.0.0.1
  export IBKR_PORT=${IBKR_PORT:-4002}
  # AAPL's history is the demo's bars file (load_demo.py, DEMO_BARS_DIR): the first run buys it.
  "$PY" manage.py ibgateway --host 127.0.0.1 --port "$IBKR_PORT" --tick-seconds 2 \
    --bars-dir tradingsite/demo_bars \
    --master-client-id "$IBKR_MASTER_CLIENT_ID" >var/log/ibgateway.log 2>&1 &
  pids+=($!)
  echo "Loopback IB Gateway (paper) on 127.0.0.1:$IBKR_PORT - log: var/log/ibgateway.log"
fi
"$PY" -m celery -A tradingsite worker --loglevel=INFO --concurrency=1 --pool=solo \
  >var/log/worker.log 2>&1 &
pids+=($!)
"$PY" -m celery -A tradingsite beat --loglevel=INFO --schedule=var/celerybeat-schedule \
  >var/log/beat.log 2>&1 &
pids+=($!)
"$PY" manage.py ib_listen >var/log/ib_listen.log 2>&1 &
pids+=($!)
echo "Celery worker and beat started - logs: var/log/worker.log, var/log/beat.log"
echo "IB listener (fills, commissions, position prices) - log: var/log/ib_listen.log"
echo "The site: http://127.0.0.1:$PORT/admin/"
"$PY" manage.py runserver "127.0.0.1:$PORT"
