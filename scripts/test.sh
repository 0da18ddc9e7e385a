#!/usr/bin/env bash
# Runs the full test suite: installs redis-server from apt if missing, builds everything once
# (debug profile), then runs every test. Tests start their own redis-server (and SMTP sink)
# on free loopback ports; nothing else needs to be running.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

ensure_packages redis-server

cargo build --workspace --all-targets --locked
cargo test --workspace --locked
# The benchmark tool in smoke mode (seconds, no assertions on speed), so it never rots.
target/debug/celeriac-bench --smoke --json target/bench-smoke.json
