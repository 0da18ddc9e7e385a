#!/usr/bin/env bash
# The chaos command: enqueues tasks while killing and restarting workers and Redis at random,
# then reports accepted, finished, lost and redelivered counts. CHAOS_SECS sets the duration.
# --cluster: on a local Redis Cluster (three masters with a replica each), killing masters at
# random besides the workers, with durability = "replicated".
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_packages redis-server
case "${1:-}" in
  "") test=chaos::chaos ;;
  --cluster) test=chaos::chaos_cluster ;;
  *) echo "usage: scripts/chaos.sh [--cluster]" >&2; exit 2 ;;
esac
CHAOS_SECS="${CHAOS_SECS:-30}" cargo test --locked -p celeriac-worker --test worker -- --ignored --exact "$test" --nocapture
