#!/usr/bin/env bash
# The chaos command: enqueues tasks while killing and restarting workers and Redis at random,
# then reports accepted, finished, lost and redelivered counts. CHAOS_SECS sets the duration.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_packages redis-server
CHAOS_SECS="${CHAOS_SECS:-30}" cargo test --locked -p celeriac-worker --test worker -- --ignored --exact chaos::chaos --nocapture
