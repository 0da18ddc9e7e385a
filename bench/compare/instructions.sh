#!/usr/bin/env bash
# The regression guard's noise-free companion: instructions, not seconds. For the base and the
# current binaries that guard.sh built (WORK/bin-base, WORK/bin-current), counts with
# valgrind's callgrind, RUNS times each, interleaved:
#
#   redis   the instructions redis-server runs for the one-client lifecycle of LIFECYCLE tasks
#           (`celeriac-bench --lifecycle-only`: enqueue, fetch, acknowledge), and for
#           PUSH native no-op tasks drained by a real worker process then PUSH remote ones
#           (`celeriac-bench --push`): the scripts' cost per task, through the worker's batches;
#   worker  the instructions of the worker process that drained the PUSH native tasks.
#
#   bash bench/compare/instructions.sh            # after guard.sh (or with its WORK)
#   RUNS=1 LIFECYCLE=2000 PUSH=1000 bash bench/compare/instructions.sh   # quick
#
# Timed figures on this shared VM move with the host: the same binary's Redis CPU per drained
# task ranged from 9.7 to 15.9 µs between adjacent guard repetitions, so a 5% change in the
# drain cannot be told from noise in 9 of them. Instruction counts of one build moved by at
# most 1.5% between runs here (0.2% on a quiet machine; the rest is Redis' random hash seed
# and batch sizes that follow the timing), and the runs are interleaved, so a change of a few
# percent shows.
# Prints one table of medians and current÷base; the raw callgrind files stay in OUT.
set -uo pipefail

WORK=${WORK:-/tmp/celeriac-guard}
OUT=${OUT:-$WORK/instructions-$(date +%Y%m%d-%H%M%S)}
RUNS=${RUNS:-2}
LIFECYCLE=${LIFECYCLE:-10000}
PUSH=${PUSH:-5000}
die() { echo "instructions.sh: $*" >&2; exit 2; }
for n in RUNS LIFECYCLE PUSH; do
  [[ "${!n}" =~ ^[1-9][0-9]*$ ]] || die "$n must be a positive integer, got '${!n}'"
done
command -v valgrind >/dev/null || die "valgrind is missing (apt-get install valgrind)"
command -v redis-server >/dev/null || die "redis-server is missing (apt-get install redis-server)"
for side in base current; do
  for bin in celeriac-bench celeriac-worker celeriac-api; do
    [ -x "$WORK/bin-$side/$bin" ] || die "$WORK/bin-$side/$bin is missing: run bench/compare/guard.sh first"
  done
done
mkdir -p "$OUT"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
total() { callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1; exit }'; }

# redis_count SIDE KIND DIR: one bench run (KIND lifecycle or push) against a redis-server
# under callgrind; prints the server's instruction total.
redis_count() {
  local side=$1 kind=$2 dir=$3 port
  port=$(free_port)
  mkdir -p "$dir"
  valgrind --tool=callgrind --callgrind-out-file="$dir/redis.cg" redis-server --port "$port" \
    --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" >"$dir/redis.log" 2>&1 &
  local vpid=$!
  for _ in $(seq 150); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.2; done
  local args=(--lifecycle-only --drain "$LIFECYCLE")
  [ "$kind" = push ] && args=(--push "$PUSH" --concurrency 1024)
  timeout 900 "$WORK/bin-$side/celeriac-bench" "${args[@]}" --redis-url "redis://127.0.0.1:$port" \
    --json "$dir/bench.json" >"$dir/bench.log" 2>&1 || echo "instructions.sh: $side $kind bench failed, see $dir/bench.log" >&2
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1
  wait "$vpid"
  total "$dir/redis.cg"
}

# worker_count SIDE DIR: the push bench with a plain redis-server and its native worker under
# callgrind (a wrapper named celeriac-worker beside copies of the bench and gateway).
worker_count() {
  local side=$1 dir=$2 port
  port=$(free_port)
  mkdir -p "$dir/bin"
  cp "$WORK/bin-$side/celeriac-bench" "$WORK/bin-$side/celeriac-api" "$dir/bin/"
  printf '#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file=%s/worker.%%p.cg %s "$@"\n' \
    "$dir" "$WORK/bin-$side/celeriac-worker" >"$dir/bin/celeriac-worker"
  chmod +x "$dir/bin/celeriac-worker"
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" >"$dir/redis.log" 2>&1 &
  local rpid=$!
  for _ in $(seq 150); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  timeout 900 "$dir/bin/celeriac-bench" --push "$PUSH" --concurrency 1024 --redis-url "redis://127.0.0.1:$port" \
    --json "$dir/bench.json" >"$dir/bench.log" 2>&1 || echo "instructions.sh: $side worker bench failed, see $dir/bench.log" >&2
  redis-cli -p "$port" shutdown nosave >/dev/null 2>&1
  wait "$rpid"
  # The first worker process drained the native tasks (the second, the remote ones).
  total "$(ls -tr "$dir"/worker.*.cg | head -1)"
  rm -rf "$dir/bin"
}

echo -e "measure\tside\trun\tinstructions" >"$OUT/counts.tsv"
for run in $(seq "$RUNS"); do
  for side in base current; do
    echo "--- run $run/$RUNS: $side ($(date +%H:%M:%S))"
    echo -e "redis, lifecycle of $LIFECYCLE tasks\t$side\t$run\t$(redis_count "$side" lifecycle "$OUT/$side-$run-lifecycle")" >>"$OUT/counts.tsv"
    echo -e "redis, drain of $PUSH native + $PUSH remote tasks by a worker\t$side\t$run\t$(redis_count "$side" push "$OUT/$side-$run-push")" >>"$OUT/counts.tsv"
    echo -e "worker, drain of $PUSH native tasks\t$side\t$run\t$(worker_count "$side" "$OUT/$side-$run-worker")" >>"$OUT/counts.tsv"
  done
done

python3 - "$OUT/counts.tsv" <<'EOF' | tee "$OUT/instructions.md"
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
print("| measure | base | current | current÷base |")
print("|---|---:|---:|---:|")
for measure in dict.fromkeys(r["measure"] for r in rows):
    def median(side):
        values = [int(r["instructions"]) for r in rows if r["measure"] == measure and r["side"] == side and r["instructions"]]
        return statistics.median(values) if values else None
    base, current = median("base"), median("current")
    ratio = f"{current / base:.3f}" if base and current else "n/a"
    print(f"| {measure} | {base:,.0f} | {current:,.0f} | {ratio} |" if base and current else f"| {measure} | {base} | {current} | n/a |")
EOF
echo "results: $OUT (counts.tsv, instructions.md, callgrind files)"
