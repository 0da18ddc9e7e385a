#!/usr/bin/env bash
# Celeriac side by side with Celery, BullMQ, Sidekiq and the Redis yardstick, in ONE run on this machine.
#
#   bash bench/compare/compare.sh            # REPS=1 (default), ~10-15 min
#   REPS=3 bash bench/compare/compare.sh     # medians over 3 interleaved repetitions
#
# Env knobs:
#   REPS=1             repetitions; every system is measured once per repetition (interleaved)
#   REDIS_PORT=6391    the ONE redis-server this script starts (and stops) for Celery/BullMQ
#   YARD_PORT=6392     port lifecycle_lean.py uses for the redis-server it starts itself
#   WORK=/tmp/celeriac-compare     peers copy, venv, node_modules, binary copies (kept, reused)
#   OUT=$WORK/results-<timestamp>  the results folder (everything of the run is written there)
#   PEERS_SRC=<repo>/../shared/peers   LIMIT_SRC=<repo>/../shared/limit  (the reference folders
#                      beside the repository)
#   SYSTEMS="yardstick celery seed bullmq sidekiq celeriac"   which ones to run (default all)
#   SMOKE=0            1: tiny counts everywhere (yardstick 2000, peers 300, latency 50,
#                      celeriac-bench --smoke): proves the script runs, measures nothing
#   CELERIAC_BIN=<repo>/target/release  where celeriac-bench/-worker/-api were built with
#       cargo build --release -p celeriac-bench -p celeriac-worker -p celeriac-api --bins
#
# Loopback only. Every step is bounded with `timeout`; a failed step is logged in steps.tsv
# and the run goes on. Ends with compare.py's ratio table (also written to OUT/compare.md).
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
REPS=${REPS:-1}
export REDIS_PORT=${REDIS_PORT:-6391}
YARD_PORT=${YARD_PORT:-$((REDIS_PORT + 1))}
WORK=${WORK:-/tmp/celeriac-compare}
OUT=${OUT:-$WORK/results-$(date +%Y%m%d-%H%M%S)}
PEERS_SRC=${PEERS_SRC:-$REPO/../shared/peers}
LIMIT_SRC=${LIMIT_SRC:-$REPO/../shared/limit}
SYSTEMS=" ${SYSTEMS:-yardstick celery seed bullmq sidekiq celeriac} "
SMOKE=${SMOKE:-0}
if [ "$SMOKE" = 1 ]; then YARD_N=2000 PEER_N=300 LAT_N=50 CELERY_LAT_N=50 BENCH_FLAGS=(--smoke)
else YARD_N=100000 PEER_N=10000 LAT_N=500 CELERY_LAT_N=300 BENCH_FLAGS=(); fi
CELERIAC_BIN=${CELERIAC_BIN:-$REPO/target/release}
P=$WORK/peers
PY=$P/.venv/bin/python

mkdir -p "$WORK" "$OUT/logs"
LOG=$OUT/run.log
exec > >(tee -a "$LOG") 2>&1
echo "compare.sh: REPS=$REPS REDIS_PORT=$REDIS_PORT YARD_PORT=$YARD_PORT SMOKE=$SMOKE SYSTEMS=$SYSTEMS OUT=$OUT"
T_START=$(date +%s)

die() { echo "compare.sh: $*" >&2; exit 1; }
on() { [[ "$SYSTEMS" == *" $1 "* ]]; }   # is system $1 in SYSTEMS?
# shellcheck source=../../scripts/lib.sh
. "$REPO/scripts/lib.sh"
for s in $SYSTEMS; do
  case "$s" in yardstick|celery|seed|bullmq|sidekiq|celeriac) ;;
    *) die "SYSTEMS: unknown system '$s' (known: yardstick celery seed bullmq sidekiq celeriac)" ;; esac
done
[[ "$SMOKE" =~ ^[01]$ ]] || die "SMOKE must be 0 or 1, got '$SMOKE'"

# Copy Celeriac's binaries so a rebuild in the shared target/ cannot swap them mid-run
# (celeriac-bench starts the worker and gateway found beside itself).
mkdir -p "$WORK/bin"
HAVE_CELERIAC=1
for b in celeriac-bench celeriac-worker celeriac-api celeriac-http-yardstick celeriac-latency-yardstick; do
  if [ -x "$CELERIAC_BIN/$b" ]; then cp "$CELERIAC_BIN/$b" "$WORK/bin/$b.tmp" && mv "$WORK/bin/$b.tmp" "$WORK/bin/$b"
  else HAVE_CELERIAC=0; echo "missing $CELERIAC_BIN/$b: build with" \
    "cargo build --release -p celeriac-bench -p celeriac-worker -p celeriac-api --bins"; fi
done
# A side-by-side run without Celeriac's binaries would spend its minutes measuring only the
# peers: refused here, unless SYSTEMS leaves Celeriac out.
if on celeriac && [ "$HAVE_CELERIAC" = 0 ]; then
  die "Celeriac's release binaries are missing (above); build them, or leave celeriac out of SYSTEMS"
fi

# ---------------------------------------------------------------- setup (reused when present)
[ -d "$PEERS_SRC" ] || die "no peers folder at $PEERS_SRC"
mkdir -p "$P"
chmod -R u+w "$P" 2>/dev/null || true
cp -rT "$PEERS_SRC" "$P" || die "copying $PEERS_SRC failed"
cp "$LIMIT_SRC/lifecycle_lean.py" "$WORK/lifecycle_lean.py" || die "no yardstick at $LIMIT_SRC"
chmod -R u+w "$P" "$WORK/lifecycle_lean.py"
mkdir -p "$P/logs" "$P/results"
command -v redis-server >/dev/null && command -v redis-cli >/dev/null || {
  timeout 300 apt-get update && timeout 600 apt-get install -y redis-server; } || die "no redis-server"
# The venv runs the yardstick, Celery, the seed app and celeriac_http.py.
if { on yardstick || on celery || on seed; } && [ ! -x "$PY" ]; then
  echo "--- python venv + pip install -r requirements.txt"
  python3 -m venv "$P/.venv" && timeout 900 "$P/.venv/bin/pip" install -q -r "$P/requirements.txt" \
    || { rm -rf "$P/.venv"; die "venv/pip install failed"; }
fi
if on bullmq && [ ! -d "$P/bullmq/node_modules/bullmq" ]; then
  echo "--- npm ci (bullmq)"
  (cd "$P/bullmq" && timeout 600 npm ci --no-audit --no-fund) || echo "npm ci failed: BullMQ steps will fail"
fi
if on sidekiq; then
  ensure_packages ruby-sidekiq > "$OUT/logs/apt-sidekiq.log" 2>&1 || true
  command -v sidekiq >/dev/null || echo "ruby-sidekiq did not install (see logs/apt-sidekiq.log): Sidekiq steps will fail"
fi
HAVE_WRK=1
if on seed && ! command -v wrk >/dev/null; then
  echo "--- apt-get install wrk (for the seed app's HTTP measure)"
  { timeout 300 apt-get update -qq && timeout 300 apt-get install -y -qq wrk; } >"$OUT/logs/apt-wrk.log" 2>&1 || true
  command -v wrk >/dev/null || { HAVE_WRK=0; echo "wrk did not install: seed-app HTTP measure skipped"; }
fi

# ---------------------------------------------------------------- the ONE peers redis-server
for port in "$REDIS_PORT" "$YARD_PORT"; do
  if redis-cli -p "$port" ping >/dev/null 2>&1; then die "something already listens on $port; stop it or set REDIS_PORT/YARD_PORT"; fi
done
REDIS_DIR=$(mktemp -d "$WORK/redis.XXXXXX")
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
  --dir "$REDIS_DIR" > "$OUT/logs/redis.log" 2>&1 &
REDIS_PID=$!
echo "$REDIS_PID" > "$P/redis.pid"     # benchlib.py / lib.js read redis CPU from this PID
export REDIS_PID                       # sidekiq/lib.rb reads it from the environment
cleanup() {
  kill "$REDIS_PID" 2>/dev/null || true
  wait "$REDIS_PID" 2>/dev/null || true
  rm -f "$P/redis.pid"; rm -rf "$REDIS_DIR"
  cp -r "$P/logs" "$OUT/logs/peers" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 || die "redis-server did not start (see $OUT/logs/redis.log)"

export RESULTS_FILE=$OUT/peers_raw.jsonl     # every peer script appends its JSON lines here
: > "$RESULTS_FILE"
printf 'rep\tstep\trc\tseconds\n' > "$OUT/steps.tsv"
{
  echo "date: $(date -u +%FT%TZ)"; echo "nproc: $(nproc)"; echo "kernel: $(uname -r)"
  echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  redis-server --version; echo "node $(node --version 2>/dev/null)"; $PY --version 2>&1
  { wrk --version 2>&1 || true; } | head -1
  $PY -c 'import importlib.metadata as m; print("celery", m.version("celery"), "redis-py", m.version("redis"))' 2>&1
  echo "bullmq $(node -p 'require("'"$P"'/bullmq/node_modules/bullmq/package.json").version' 2>/dev/null)"
  echo "sidekiq $(ruby -e 'require "sidekiq"; print Sidekiq::VERSION, " (ruby ", RUBY_VERSION, ")"' 2>/dev/null)"
  echo "celeriac binaries: $(ls -l --time-style=+%FT%T "$CELERIAC_BIN/celeriac-bench" 2>/dev/null | awk '{print $6}')"
  echo "REPS=$REPS REDIS_PORT=$REDIS_PORT YARD_PORT=$YARD_PORT SMOKE=$SMOKE SYSTEMS=$SYSTEMS"
} > "$OUT/env.txt"

# step REP NAME SECONDS CMD...: bounded (SIGINT first so Python's finally blocks stop the workers
# they started, SIGKILL 20 s later), logged, status recorded; a failure does not stop the run.
step() {
  local rep=$1 name=$2 secs=$3; shift 3
  local t0 rc
  t0=$(date +%s)
  echo "=== rep $rep: $name ($(date +%T))"
  timeout -s INT -k 20 "$secs" "$@" >> "$OUT/logs/$name.rep$rep.log" 2>&1
  rc=$?
  printf '%s\t%s\t%s\t%s\n' "$rep" "$name" "$rc" "$(( $(date +%s) - t0 ))" >> "$OUT/steps.tsv"
  [ "$rc" = 0 ] || echo "    FAILED rc=$rc (timeout if 124/137): see $OUT/logs/$name.rep$rep.log"
  return 0
}

for rep in $(seq "$REPS"); do
  echo "############ repetition $rep/$REPS"
  # 1. yardstick: starts its own redis-server on YARD_PORT (that is how the script works)
  if on yardstick; then
    step "$rep" yardstick 600 env REDIS_PORT="$YARD_PORT" N="$YARD_N" "$PY" "$WORK/lifecycle_lean.py"
    grep '^lean:' "$OUT/logs/yardstick.rep$rep.log" 2>/dev/null | tail -1 > "$OUT/yardstick.rep$rep.txt"
  fi
  # 2. Celery
  if on celery; then
    (cd "$P" && step "$rep" celery-enqueue 180 "$PY" celery_bench/enqueue.py -n "$PEER_N")
    (cd "$P" && step "$rep" celery-drain-prefork 330 "$PY" celery_bench/drain.py -n "$PEER_N" --pool prefork --concurrency 2 --prefetch 1)
    (cd "$P" && step "$rep" celery-drain-solo 330 "$PY" celery_bench/drain.py -n "$PEER_N" --pool solo --concurrency 1 --prefetch 1)
    (cd "$P" && step "$rep" celery-latency-solo 240 "$PY" celery_bench/latency.py -n "$CELERY_LAT_N" --pool solo --concurrency 1 --prefetch 1)
  fi
  # 3. seed FastAPI + Celery app under wrk
  if on seed && [ "$HAVE_WRK" = 1 ]; then
    (cd "$P" && step "$rep" seed-http 150 "$PY" fastapi_seed/bench_http.py --workers 1 --reps 1)
    # Celeriac's gateway under the very same wrk load, on the same redis-server (like for like)
    if [ "$HAVE_CELERIAC" = 1 ]; then
      step "$rep" celeriac-http 150 env PEERS="$P" "$PY" "$HERE/celeriac_http.py" --api "$WORK/bin/celeriac-api"
    fi
  elif on seed; then
    printf '%s\t%s\t%s\t%s\n' "$rep" seed-http skipped-no-wrk 0 >> "$OUT/steps.tsv"
  fi
  # 4. BullMQ
  if on bullmq; then
    (cd "$P/bullmq" && step "$rep" bullmq-enqueue-add 120 node enqueue.js --n "$PEER_N" --mode add)
    (cd "$P/bullmq" && step "$rep" bullmq-enqueue-bulk 120 node enqueue.js --n "$PEER_N" --mode bulk --batch 1000)
    (cd "$P/bullmq" && step "$rep" bullmq-drain 300 node drain.js --n "$PEER_N" --concurrency 50)
    (cd "$P/bullmq" && step "$rep" bullmq-latency 200 node latency.js --n "$LAT_N" --concurrency 50)
  fi
  # 5. Sidekiq (Debian's ruby-sidekiq; scripts in sidekiq/, same measures and JSON lines as BullMQ's)
  if on sidekiq; then
    SK=(env LOG_DIR="$OUT/logs/sidekiq" ruby)
    step "$rep" sidekiq-enqueue-one 120 "${SK[@]}" "$HERE/sidekiq/enqueue.rb" --n "$PEER_N" --mode one
    step "$rep" sidekiq-enqueue-bulk 120 "${SK[@]}" "$HERE/sidekiq/enqueue.rb" --n "$PEER_N" --mode bulk --batch 1000
    step "$rep" sidekiq-drain 300 "${SK[@]}" "$HERE/sidekiq/drain.rb" --n "$PEER_N" --concurrency 50
    step "$rep" sidekiq-latency 200 "${SK[@]}" "$HERE/sidekiq/latency.rb" --n "$LAT_N" --concurrency 50
  fi
  redis-cli -p "$REDIS_PORT" flushall >/dev/null 2>&1 || true
  # 6. Celeriac (starts its own redis-server, worker and gateway; full mode, default sizes)
  if on celeriac && [ "$HAVE_CELERIAC" = 1 ]; then
    step "$rep" celeriac-bench 900 "$WORK/bin/celeriac-bench" --json "$OUT/celeriac.rep$rep.json" "${BENCH_FLAGS[@]}"
  elif on celeriac; then
    printf '%s\t%s\t%s\t%s\n' "$rep" celeriac-bench skipped-no-binaries 0 >> "$OUT/steps.tsv"
  fi
done

echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/env.txt"
echo "total seconds: $(( $(date +%s) - T_START ))" >> "$OUT/env.txt"
echo
python3 "$HERE/compare.py" "$OUT" | tee "$OUT/compare.md"
echo
echo "results: $OUT  (steps.tsv, peers_raw.jsonl, yardstick.rep*.txt, celeriac.rep*.json, logs/)"
