#!/usr/bin/env bash
# The archive's cost with PostgreSQL and the archiver off the drain's core: `celeriac-bench
# --archive` runs under `taskset -c DRAIN_CPU` (so its Redis, worker and gateway, which it
# starts, share that core), while a loop moves every `postgres` and `celeriac-archiver`
# process to ARCHIVE_CPU, as a deployment with PostgreSQL on a machine of its own would have
# it (Redis, and the archiver's reads from it, stay on the drain's side). Interleaved with the
# same command unpinned, RUNS times each; prints the drains, their ratio, Redis CPU per drained
# task and the ingest rate of every run. docs/archive.md has the figures and what they say.
#
#   bash bench/compare/archive_pinned.sh                 # RUNS=5, 100,000 tasks a drain
#   RUNS=1 DRAIN=20000 bash bench/compare/archive_pinned.sh
#
# Needs two cores or more, `taskset` (util-linux) and the release binaries
# (`cargo build --release --bins`). Loopback only: celeriac-bench starts its own servers on
# 127.0.0.1. Each run is bounded by RUN_TIMEOUT seconds; the pinning loop ends with the script.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${CELERIAC_BIN:-$HERE/../../target/release}
RUNS=${RUNS:-5}
DRAIN=${DRAIN:-100000}
ROWS=${ROWS:-20000}
DRAIN_CPU=${DRAIN_CPU:-0}
ARCHIVE_CPU=${ARCHIVE_CPU:-1}
RUN_TIMEOUT=${RUN_TIMEOUT:-900}
OUT=${OUT:-/tmp/celeriac-archive-pinned/results-$(date +%Y%m%d-%H%M%S)}
die() { echo "archive_pinned.sh: $*" >&2; exit 2; }
for n in RUNS DRAIN ROWS DRAIN_CPU ARCHIVE_CPU RUN_TIMEOUT; do
  [[ ${!n} =~ ^[0-9]+$ ]] || die "$n must be a whole number, not '${!n}'"
done
[ "$RUNS" -ge 1 ] || die "RUNS must be at least 1"
[ "$DRAIN_CPU" != "$ARCHIVE_CPU" ] || die "DRAIN_CPU and ARCHIVE_CPU must differ (both $DRAIN_CPU)"
[ "$(nproc)" -gt "$ARCHIVE_CPU" ] && [ "$(nproc)" -gt "$DRAIN_CPU" ] || die "this machine has $(nproc) cores: DRAIN_CPU and ARCHIVE_CPU must be below that"
command -v taskset > /dev/null || die "taskset is missing (apt-get install util-linux)"
[ -x "$BIN/celeriac-bench" ] || die "no $BIN/celeriac-bench: cargo build --release --bins first"
# The pinning loop finds the bench's PostgreSQL and archiver by name (pg_ctl detaches the
# server from the bench), so it would pin any other one too: refuse to run beside them.
if pgrep -x postgres > /dev/null || pgrep -f celeriac-archiver > /dev/null; then
  die "a PostgreSQL server or celeriac-archiver is running already; stop it first (this script would move it to core $ARCHIVE_CPU too)"
fi
mkdir -p "$OUT"

# Moves the archiving processes (and all their threads) to ARCHIVE_CPU, every 0.1 s. The loop
# runs there itself: its pgrep and taskset processes would otherwise take the drain's core.
pin_archiving() {
  taskset -c -p "$ARCHIVE_CPU" "$BASHPID" > /dev/null
  while true; do
    for pid in $(pgrep -x postgres) $(pgrep -f celeriac-archiver); do
      taskset -a -c -p "$ARCHIVE_CPU" "$pid" > /dev/null 2>&1
    done
    sleep 0.1
  done
}

# celeriac-bench --archive, after the command prefix given (taskset, or none).
bench() {
  timeout "$RUN_TIMEOUT" "$@" "$BIN/celeriac-bench" --archive --drain "$DRAIN" --archive-rows "$ROWS"
}

for run in $(seq "$RUNS"); do
  pin_archiving & pinner=$!
  bench taskset -c "$DRAIN_CPU" > "$OUT/pinned.$run.txt" 2>&1; rc=$?
  kill "$pinner"; wait "$pinner" 2> /dev/null
  [ $rc = 0 ] || die "run $run, pinned: celeriac-bench exited $rc (see $OUT/pinned.$run.txt)"
  bench > "$OUT/unpinned.$run.txt" 2>&1 || die "run $run, unpinned: celeriac-bench failed (see $OUT/unpinned.$run.txt)"
  for setup in pinned unpinned; do
    echo "== run $run, $setup"
    grep -E '^  (drain|archive ingest|Redis CPU per drained)' "$OUT/$setup.$run.txt"
  done
done
echo "results: $OUT"
