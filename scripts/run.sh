#!/usr/bin/env bash
# Starts the whole system locally: redis-server (installed from apt if missing; data in
# data/redis), an SMTP sink for development (mail in data/mail), the gateway, a worker for
# the emails, reports and default queues (started again if it dies), and one beat (periodic
# schedules). Ctrl-C stops everything it started.
#
#   PORT=8000 REDIS_PORT=6379 SMTP_PORT=1025 PROFILE=release scripts/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

PORT="${PORT:-8000}"
REDIS_PORT="${REDIS_PORT:-6379}"
SMTP_PORT="${SMTP_PORT:-1025}"
PROFILE="${PROFILE:-release}"

# make: the gateway's allocator (jemalloc) is built from C source with it.
ensure_packages redis-server make

echo "building ($PROFILE)..."
if [ "$PROFILE" = release ]; then
  cargo build --release --locked --bins
  BIN=target/release
else
  cargo build --locked --bins
  BIN=target/debug
fi

mkdir -p data/redis data/mail data/reports
pids=()
stop_all() {
  trap - INT TERM EXIT
  echo
  echo "stopping..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap stop_all INT TERM EXIT

if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
  echo "using the redis-server already on port $REDIS_PORT"
else
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$PWD/data/redis" \
    --appendonly yes --save '' --hash-max-listpack-value 512 --logfile "$PWD/data/redis/redis.log" &
  pids+=($!)
  for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

export CELERIAC_ENV="${CELERIAC_ENV:-development}"
export CELERIAC__REDIS__URL="redis://127.0.0.1:$REDIS_PORT"
export CELERIAC__HTTP__BIND="127.0.0.1:$PORT"
export CELERIAC__SMTP__HOST=127.0.0.1
export CELERIAC__SMTP__PORT="$SMTP_PORT"
export CELERIAC__REPORTS__DIR="$PWD/data/reports"

"$BIN/celeriac-smtp-sink" --port "$SMTP_PORT" --maildir data/mail &
pids+=($!)
"$BIN/celeriac-api" &
pids+=($!)
# The worker is kept running, as docker-compose's restart policy keeps it: killed or crashed,
# it is started again, and the new worker takes back the old one's tasks once their lease
# expires (worker.lease_secs, 30 s by default). Stopping this script stops it for good.
supervise_worker() {
  local pid="" nap="" status started delay=1
  trap '[ -z "$nap" ] || kill "$nap" 2>/dev/null; [ -z "$pid" ] || { kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }; exit 0' TERM
  while true; do
    started=$SECONDS
    "$BIN/celeriac-worker" --queues emails,reports,default &
    pid=$!
    status=0
    wait "$pid" || status=$?
    # One that keeps failing at once (a bad setting) is retried ever more slowly, up to 30 s.
    if [ $((SECONDS - started)) -lt 10 ]; then delay=$((delay * 2 > 30 ? 30 : delay * 2)); else delay=1; fi
    echo "celeriac-worker exited (status $status); starting a new one in ${delay} s, which takes back its tasks when their lease expires"
    sleep "$delay" &
    nap=$!
    wait "$nap" # not a plain sleep: a stop signal must not wait for it to end
  done
}
supervise_worker &
pids+=($!)
"$BIN/celeriac-beat" &
pids+=($!)

for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
cat <<MSG

Celeriac is running (Ctrl-C stops it):
  API        http://127.0.0.1:$PORT            (try: curl -s -XPOST localhost:$PORT/emails -H 'content-type: application/json' -d '{"to":"ada@example.com","subject":"Hi","body":"Hello"}')
  Schedules  http://127.0.0.1:$PORT/schedules  (fired by celeriac-beat; example in config/development.toml)
  API docs   http://127.0.0.1:$PORT/docs
  OpenAPI    http://127.0.0.1:$PORT/openapi.json
  Redis      redis://127.0.0.1:$REDIS_PORT     (data in data/redis)
  SMTP sink  127.0.0.1:$SMTP_PORT              (received mail in data/mail)
  Reports    data/reports

MSG
wait -n "${pids[@]}" || true
echo "a process exited; stopping the rest"
