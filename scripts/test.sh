#!/usr/bin/env bash
# Runs the full test suite: installs redis-server and make from apt if missing, builds
# everything once (debug profile), then runs every test. Tests start their own redis-server
# (and SMTP sink) on free loopback ports; nothing else needs to be running.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

# make: the gateway's allocator (jemalloc) is built from C source with it. tmux: the test of
# `celeriac top` runs it in a terminal and reads the screen. postgresql: the archive (tests
# start their own server).
ensure_packages redis-server make tmux postgresql

cargo build --workspace --all-targets --locked
cargo test --workspace --locked
# The library's integration suites again on a local Redis Cluster (three masters with a replica
# each, started by the harness): every script, the MONITOR check of hash tags, schedules and
# workflows (the Cluster/Sentinel/TLS tests pick their own servers and ran above already).
# `--workspace` with `--test` picks one suite from the build above: with `-p`, cargo would resolve
# the dependencies' features for that package alone and build them all a second time.
CELERIAC_TEST_REDIS=cluster cargo test --workspace --test shared --locked -- --skip topology_
# And the gateway's suite (about 3 minutes: each test starts its own six-node Cluster). The
# worker's suite runs on one node only: its Cluster and Sentinel failover tests start their own.
CELERIAC_TEST_REDIS=cluster cargo test --workspace --test api --locked
# The dashboard in headless Chromium: Debian's browser (npm's own browser download does not
# work here) driven by playwright-core, against the debug binaries built above; and the start
# command, scripts/run.sh, with those binaries (run-script.test.mjs).
ensure_packages chromium procps # procps: ps, for the test of scripts/run.sh
[ -d api/tests/browser/node_modules/playwright-core ] || npm ci --prefix api/tests/browser --no-audit --no-fund
CELERIAC_BIN_DIR="$(cd "${CARGO_TARGET_DIR:-target}" && pwd)/debug" node --test api/tests/browser/
# The Python side, from a pinned environment (target/pyenv, scripts/python/requirements.txt):
# the API tester (schemathesis, every check, bounded examples per operation) against a real
# gateway and worker, then the pytest suites (the Python client, the FastAPI example, the
# client generated from openapi.yaml, the outbox examples in Python and Rust against a
# PostgreSQL of their own), each starting its own processes from target/debug.
ensure_packages python3 python3-venv
scripts/python/env.sh
target/pyenv/bin/python scripts/python/api_check.py
target/pyenv/bin/python -m pytest -q -rs clients/python/tests scripts/python/tests examples/fastapi/tests examples/outbox/tests
# The benchmark tool in smoke mode (seconds, no assertions on speed), so it never rots.
target/debug/celeriac-bench --smoke --json target/bench-smoke.json
# (Its archive and Cluster measures run from bench/tests/modes.rs, which checks their rows.)
# And the flow limits' measures (the drain without limits, under a cap, and through a rate).
target/debug/celeriac-bench --smoke --limits --json target/bench-limits-smoke.json
# And the pull protocol's throughput with one Python worker process (the pinned env above).
target/debug/celeriac-bench --smoke --pull-python 4 --json target/bench-pull-smoke.json
# The container image: built from the Dockerfile (buildah; the base image made from Debian's
# packages, the test build's binaries) and docker-compose.yml's Celeriac services run from it
# against loopback Redis, PostgreSQL and SMTP (no Docker daemon or registry here; see the script).
BIN_DIR="${CARGO_TARGET_DIR:-target}/debug" scripts/container-smoke.sh
