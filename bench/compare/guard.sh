#!/usr/bin/env bash
# Regression guard: the previous release (BASE) and the current code, side by side in ONE run.
#
#   bash bench/compare/guard.sh                     # BASE from bench/compare/BASE, REPS=5
#   BASE=6c1f529 REPS=3 bash bench/compare/guard.sh
#   SMOKE=1 REPS=1 bash bench/compare/guard.sh      # celeriac-bench --smoke: proves the script, measures nothing
#
# Builds BASE (release: celeriac-bench, -worker, -api only) in a clone of this repository under
# WORK, with a target dir of its own (both reused by the next run), builds the current code in
# the repository's own target dir, then runs the two `celeriac-bench` binaries interleaved
# (base, current, base, current, ... REPS times; each run starts its own redis-server, worker
# and gateway on loopback, so no run inherits the other's keys), and prints guard.py's table of
# current/base ratios (medians over REPS). The drain of no-op tasks is the headline: the run
# exits 1 when its median ratio is below MIN_DRAIN_RATIO (not in SMOKE mode).
#
# Env knobs:
#   BASE=<commit>          default: the first word of bench/compare/BASE that is not a comment
#   REPS=5                 repetitions (each runs base then current)
#   SMOKE=0                1: pass --smoke to both (seconds a run, figures meaningless)
#   BENCH_ARGS=""          more flags for both benches, e.g. "--drain 50000"; every flag must be
#                          one both binaries accept (checked against their --help first)
#   MIN_DRAIN_RATIO=0.95   the guard's threshold
#   RUN_TIMEOUT=900        seconds one celeriac-bench run may take; BUILD_TIMEOUT=5400 per build
#   WORK=/tmp/celeriac-guard   base clone (base-src), its target, binary copies
#   BASE_TARGET=$WORK/base-target  the base's target dir (a release target takes a few GB). Never
#                          the current code's: cargo names the workspace's own crates by their
#                          path inside the workspace, so one tree's artifacts pass as fresh for
#                          the other's, and the current build would link the base's library.
#   PROFILE=release        debug: both built without --release (a quick smoke of the script only)
#   OUT=$WORK/results-<timestamp>  everything of the run: raw JSON per rep and side, logs, guard.md
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
REPS=${REPS:-5}
SMOKE=${SMOKE:-0}
BENCH_ARGS=${BENCH_ARGS:-}
MIN_DRAIN_RATIO=${MIN_DRAIN_RATIO:-0.95}
RUN_TIMEOUT=${RUN_TIMEOUT:-900}
BUILD_TIMEOUT=${BUILD_TIMEOUT:-5400}
WORK=${WORK:-/tmp/celeriac-guard}
OUT=${OUT:-$WORK/results-$(date +%Y%m%d-%H%M%S)}
BASE_TARGET=${BASE_TARGET:-$WORK/base-target}
PROFILE=${PROFILE:-release}
BINS=(celeriac-bench celeriac-worker celeriac-api)
BUILD=(cargo build -p celeriac-bench -p celeriac-worker -p celeriac-api --bins)
case "$PROFILE" in
  release) BUILD+=(--release) ;;
  debug) ;;
  *) echo "guard.sh: PROFILE must be release or debug, got '$PROFILE'" >&2; exit 2 ;;
esac

die() { echo "guard.sh: $*" >&2; exit 2; }

[[ "$REPS" =~ ^[1-9][0-9]*$ ]] || die "REPS must be a positive integer, got '$REPS'"
[[ "$SMOKE" =~ ^[01]$ ]] || die "SMOKE must be 0 or 1, got '$SMOKE'"
if [ -z "${BASE:-}" ]; then
  BASE=$(grep -v '^[[:space:]]*#' "$HERE/BASE" 2>/dev/null | awk 'NF { print $1; exit }')
  [ -n "$BASE" ] || die "no BASE given and no commit in $HERE/BASE"
fi
BASE_SHA=$(git -C "$REPO" rev-parse --verify --quiet "$BASE^{commit}") \
  || die "BASE=$BASE is not a commit of $REPO"

mkdir -p "$WORK" "$OUT/logs"
exec > >(tee -a "$OUT/run.log") 2>&1
echo "guard.sh: BASE=$BASE ($BASE_SHA) REPS=$REPS SMOKE=$SMOKE OUT=$OUT"
T_START=$(date +%s)

# ---------------------------------------------------------------- the base: a clone of its own
SRC=$WORK/base-src
if [ ! -d "$SRC/.git" ]; then
  echo "--- cloning $REPO into $SRC"
  git clone -q --no-checkout "$REPO" "$SRC" || die "git clone into $SRC failed"
fi
if ! git -C "$SRC" cat-file -e "$BASE_SHA^{commit}" 2>/dev/null; then
  git -C "$SRC" fetch -q "$REPO" '+refs/heads/*:refs/remotes/origin/*' HEAD || die "git fetch into $SRC failed"
fi
git -C "$SRC" checkout -q -f --detach "$BASE_SHA" || die "checkout of $BASE_SHA in $SRC failed"

# build DIR TARGET_DIR LOG: the three release binaries, bounded in time.
build() {
  local dir=$1 target=$2 log=$3
  echo "--- ${BUILD[*]} in $dir (target $target; log $log)"
  (cd "$dir" && CARGO_TARGET_DIR=$target timeout "$BUILD_TIMEOUT" "${BUILD[@]}") > "$log" 2>&1 \
    || die "build in $dir failed (see $log)"
}
CUR_TARGET=${CARGO_TARGET_DIR:-$REPO/target}
mkdir -p "$BASE_TARGET" "$CUR_TARGET"
[ "$(cd "$BASE_TARGET" && pwd -P)" != "$(cd "$CUR_TARGET" && pwd -P)" ] \
  || die "BASE_TARGET must not be the current code's target dir ($CUR_TARGET): cargo would take one tree's crates for the other's"
build "$SRC" "$BASE_TARGET" "$OUT/logs/build-base.log"
build "$REPO" "$CUR_TARGET" "$OUT/logs/build-current.log"

# Copies, so a rebuild of either tree cannot swap a binary mid-run (celeriac-bench starts the
# worker and gateway found beside itself).
for side in base current; do
  mkdir -p "$WORK/bin-$side"
  [ "$side" = base ] && from=$BASE_TARGET/$PROFILE || from=$CUR_TARGET/$PROFILE
  for b in "${BINS[@]}" celeriac-latency-yardstick; do
    # The latency yardstick, which the benches since it measure after their own worker: an
    # older base has none.
    [ "$b" = celeriac-latency-yardstick ] && [ ! -e "$from/$b" ] && continue
    cp "$from/$b" "$WORK/bin-$side/$b.tmp" && mv "$WORK/bin-$side/$b.tmp" "$WORK/bin-$side/$b" \
      || die "copying $from/$b failed"
  done
done

# Flags both benches understand: --json always, --smoke when asked, and BENCH_ARGS.
read -r -a EXTRA <<< "$BENCH_ARGS"
[ "$SMOKE" = 1 ] && EXTRA=(--smoke "${EXTRA[@]}")
for side in base current; do
  help=$("$WORK/bin-$side/celeriac-bench" --help 2>&1) || die "$side celeriac-bench --help failed"
  for flag in --json "${EXTRA[@]}"; do
    case "$flag" in --*) ;; *) continue ;; esac
    grep -q -- "${flag%%=*}\b" <<< "$help" || die "the $side celeriac-bench does not accept ${flag%%=*}"
  done
done

{
  echo "date: $(date -u +%FT%TZ)"; echo "nproc: $(nproc)"; echo "kernel: $(uname -r)"
  echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  redis-server --version
  echo "base: $BASE_SHA $(git -C "$SRC" log -1 --format='%ad %s' --date=iso | cut -c1-120)"
  echo "current: $(git -C "$REPO" rev-parse HEAD)$(git -C "$REPO" diff --quiet HEAD -- . 2>/dev/null || echo ' (plus uncommitted changes)')"
  echo "bench flags: --json <file> ${EXTRA[*]}"
  echo "REPS=$REPS SMOKE=$SMOKE MIN_DRAIN_RATIO=$MIN_DRAIN_RATIO PROFILE=$PROFILE"
} > "$OUT/env.txt"
printf 'rep\tside\trc\tseconds\n' > "$OUT/steps.tsv"

# ---------------------------------------------------------------- interleaved runs
for rep in $(seq "$REPS"); do
  for side in base current; do
    t0=$(date +%s)
    echo "=== rep $rep/$REPS: $side ($(date +%T))"
    timeout -s INT -k 20 "$RUN_TIMEOUT" "$WORK/bin-$side/celeriac-bench" \
      --json "$OUT/$side.rep$rep.json" "${EXTRA[@]}" > "$OUT/logs/$side.rep$rep.log" 2>&1
    rc=$?
    printf '%s\t%s\t%s\t%s\n' "$rep" "$side" "$rc" "$(( $(date +%s) - t0 ))" >> "$OUT/steps.tsv"
    [ "$rc" = 0 ] || echo "    FAILED rc=$rc (124/137: timed out): see $OUT/logs/$side.rep$rep.log"
  done
done

echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/env.txt"
echo "total seconds: $(( $(date +%s) - T_START ))" >> "$OUT/env.txt"
echo
GUARD_ARGS=(--min-drain-ratio "$MIN_DRAIN_RATIO")
[ "$SMOKE" = 1 ] && GUARD_ARGS+=(--smoke)
python3 "$HERE/guard.py" "${GUARD_ARGS[@]}" "$OUT" | tee "$OUT/guard.md"
rc=${PIPESTATUS[0]}
echo
echo "results: $OUT  (base.rep*.json, current.rep*.json, steps.tsv, env.txt, logs/, guard.md)"
exit "$rc"
