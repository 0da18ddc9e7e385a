#!/usr/bin/env bash
# Starts the whole system locally: redis-server (installed from apt if missing; data in
# data/redis), PostgreSQL for the task archive (installed from apt if missing; data in
# data/postgres, database `celeriac`), an SMTP sink for development (mail in data/mail), the
# gateway (which applies the archive's migrations at start), a worker for the emails, reports
# and default queues (started again if it dies), one beat (periodic schedules) and
# celeriac-archiver (moves every finished task into PostgreSQL). Ctrl-C stops everything it
# started.
#
#   PORT=8000 REDIS_PORT=6379 PG_PORT=5432 SMTP_PORT=1025 PROFILE=release scripts/run.sh
#
# DATA_DIR (default data) holds what it keeps; BIN_DIR names binaries built already, which
# are then used as they are (the test of this script passes the test build's).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

PORT="${PORT:-8000}"
REDIS_PORT="${REDIS_PORT:-6379}"
SMTP_PORT="${SMTP_PORT:-1025}"
PG_PORT="${PG_PORT:-5432}"
PROFILE="${PROFILE:-release}"

# make: the gateway's allocator (jemalloc) is built from C source with it.
ensure_packages redis-server make postgresql # postgresql: the task archive

# Only the binaries started below (not the benchmark or the test tools).
BINARIES=(--bin celeriac-api --bin celeriac-worker --bin celeriac-beat --bin celeriac-smtp-sink --bin celeriac-archiver)
if [ -n "${BIN_DIR:-}" ]; then
  BIN=$BIN_DIR
elif [ "$PROFILE" = release ]; then
  echo "building ($PROFILE)..."
  cargo build --release --locked "${BINARIES[@]}"
  BIN=target/release
else
  echo "building ($PROFILE)..."
  cargo build --locked "${BINARIES[@]}"
  BIN=target/debug
fi

mkdir -p "${DATA_DIR:-data}"/{redis,mail,reports}
DATA=$(cd "${DATA_DIR:-data}" && pwd)
pids=()
pg_started=""
stop_all() {
  # Further signals are ignored, not fatal: bash kills itself when a child it waits for died
  # of SIGINT (as Ctrl-C's do), which would leave the rest unstopped.
  trap - EXIT
  trap '' INT TERM
  echo
  echo "stopping..."
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  # PostgreSQL last: the archiver and the gateway are gone, so nothing is cut mid-write.
  if [ -n "$pg_started" ]; then as_pg "$PG_BIN/pg_ctl" -D "$DATA/postgres/data" -m fast -w stop >/dev/null 2>&1 || true; fi
}
trap stop_all INT TERM EXIT

if redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
  echo "using the redis-server already on port $REDIS_PORT"
else
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$DATA/redis" \
    --appendonly yes --save '' --hash-max-listpack-value 512 --rdbcompression no --logfile "$DATA/redis/redis.log" &
  pids+=($!)
  for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

# PostgreSQL refuses to run as root: as root it runs as the `postgres` user (made by Debian's
# package), which then owns data/postgres and must be able to reach it.
PG_BIN=/usr/lib/postgresql/15/bin
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; then
  echo "using the PostgreSQL already on port $PG_PORT (user postgres, database celeriac)"
else
  mkdir -p "$DATA/postgres"
  if [ "$(id -u)" -eq 0 ]; then
    chmod o+x "$DATA" # entry only (no listing), for the postgres user to reach its folder
    chown postgres:postgres "$DATA/postgres"
    if ! runuser -u postgres -- test -x "$DATA/postgres"; then
      echo "the postgres user cannot reach $DATA/postgres (a parent folder is closed to it): set DATA_DIR elsewhere" >&2
      exit 1
    fi
  fi
  if [ ! -f "$DATA/postgres/data/PG_VERSION" ]; then
    as_pg "$PG_BIN/initdb" -D "$DATA/postgres/data" -U postgres --auth=trust -E UTF8 --no-locale >"$DATA/postgres/initdb.log" 2>&1 ||
      { echo "initdb failed: see $DATA/postgres/initdb.log" >&2; exit 1; }
  fi
  pg_started=yes
  as_pg "$PG_BIN/pg_ctl" -D "$DATA/postgres/data" -l "$DATA/postgres/postgres.log" -w -t 30 \
    -o "-p $PG_PORT -k $DATA/postgres -c listen_addresses=127.0.0.1" start >/dev/null ||
    { echo "PostgreSQL did not start: see $DATA/postgres/postgres.log" >&2; exit 1; }
fi
if [ -z "$("$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'celeriac'")" ]; then
  "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres celeriac
fi

export CELERIAC_ENV="${CELERIAC_ENV:-development}"
export CELERIAC__REDIS__URL="redis://127.0.0.1:$REDIS_PORT"
export CELERIAC__HTTP__BIND="127.0.0.1:$PORT"
export CELERIAC__SMTP__HOST=127.0.0.1
export CELERIAC__SMTP__PORT="$SMTP_PORT"
export CELERIAC__REPORTS__DIR="$DATA/reports"
# The archive on for every process: the gateway migrates the database at start and reads
# history from it, the worker hands endings over and counts them in reports.
export CELERIAC__ARCHIVE__ENABLED=true
export CELERIAC__ARCHIVE__DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/celeriac"

"$BIN/celeriac-smtp-sink" --port "$SMTP_PORT" --maildir "$DATA/mail" &
pids+=($!)
"$BIN/celeriac-api" &
pids+=($!)
# The worker is kept running, as docker-compose's restart policy keeps it: killed or crashed,
# it is started again, and the new worker takes back the old one's tasks once their lease
# expires (worker.lease, 30 s by default). Stopping this script stops it for good.
supervise_worker() {
  local pid="" nap="" status started delay=1
  # Each step may fail (the worker may be gone already): none may end the trap early (set -e).
  stop_worker() {
    trap '' INT TERM
    if [ -n "$nap" ]; then kill "$nap" 2>/dev/null || true; fi
    if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    exit 0
  }
  trap stop_worker INT TERM
  while true; do
    started=$SECONDS
    "$BIN/celeriac-worker" --queues emails,reports,default &
    pid=$!
    status=0
    wait "$pid" || status=$?
    pid=""
    # One that keeps failing at once (a bad setting) is retried ever more slowly, up to 30 s.
    if [ $((SECONDS - started)) -lt 10 ]; then delay=$((delay * 2 > 30 ? 30 : delay * 2)); else delay=1; fi
    echo "celeriac-worker exited (status $status); starting a new one in ${delay} s, which takes back its tasks when their lease expires"
    sleep "$delay" &
    nap=$!
    wait "$nap" || true # not a plain sleep: a stop signal must not wait for it to end
    nap=""
  done
}
supervise_worker &
pids+=($!)
"$BIN/celeriac-beat" &
pids+=($!)

for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
# After the gateway, which applied the migrations (the archiver would too: they are idempotent).
"$BIN/celeriac-archiver" &
pids+=($!)
cat <<MSG

Celeriac is running (Ctrl-C stops it):
  API        http://127.0.0.1:$PORT            (try: curl -s -XPOST localhost:$PORT/emails -H 'content-type: application/json' -d '{"to":"ada@example.com","subject":"Hi","body":"Hello"}')
  Schedules  http://127.0.0.1:$PORT/schedules  (fired by celeriac-beat; example in config/development.toml)
  API docs   http://127.0.0.1:$PORT/docs
  OpenAPI    http://127.0.0.1:$PORT/openapi.json
  Redis      redis://127.0.0.1:$REDIS_PORT     (data in $DATA/redis)
  Archive    postgres://postgres@127.0.0.1:$PG_PORT/celeriac  (data in $DATA/postgres; history: GET /tasks?source=archive)
  SMTP sink  127.0.0.1:$SMTP_PORT              (received mail in $DATA/mail)
  Reports    $DATA/reports

MSG
wait -n "${pids[@]}" || true
echo "a process exited; stopping the rest"
