#!/usr/bin/env python3
"""Ratio table of one compare.sh run: Celeriac vs the Redis yardstick, Celery, BullMQ and Sidekiq.

    python3 bench/compare/compare.py RESULTS_DIR

Reads RESULTS_DIR/peers_raw.jsonl (JSON lines of the peer scripts, sidekiq/*.rb and celeriac_http.py),
RESULTS_DIR/yardstick.rep*.txt (the line lifecycle_lean.py prints) and
RESULTS_DIR/celeriac.rep*.json (celeriac-bench --json), and prints one markdown table. With several repetitions every cell is the median. Standard
library only.
"""
import glob
import json
import os
import re
import statistics
import sys

NA = "n/a"


def load_peers(path):
    vals, rows = {}, {}
    if not os.path.exists(path):
        return vals, rows
    for line in open(path):
        line = line.strip()
        if not line:
            continue
        try:
            r = json.loads(line)
        except ValueError:
            continue
        key = (r.get("system"), r.get("measure"))
        vals.setdefault(key, []).append(r.get("value"))
        rows.setdefault(key, []).append(r)
    return vals, rows


YARD_RE = re.compile(
    r"enqueue batched ([\d.]+) us, fetch\+ack batched ([\d.]+) us, total ([\d.]+) us Redis CPU/task; "
    r"([\d.]+) bytes/pending task; drain ([\d.]+)/s")


def load_yardstick(out):
    got = {"enqueue_us": [], "fetch_ack_us": [], "total_us": [], "bytes": [], "drain": []}
    for f in sorted(glob.glob(os.path.join(out, "yardstick.rep*.txt"))):
        m = YARD_RE.search(open(f).read())
        if not m:
            continue
        for k, v in zip(got, m.groups()):
            got[k].append(float(v))
    return got


def load_celeriac(out):
    got = {}
    for f in sorted(glob.glob(os.path.join(out, "celeriac.rep*.json"))):
        try:
            doc = json.load(open(f))
        except (OSError, ValueError):
            continue
        for row in doc.get("rows", []):
            got.setdefault(row["measure"], []).append(row["value"])
    return got


def med(xs):
    xs = [x for x in (xs or []) if isinstance(x, (int, float)) and x == x]
    return statistics.median(xs) if xs else None


def fmt(v):
    if v is None:
        return NA
    if v >= 10000:
        return f"{v:,.0f}"
    if v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def ratio(celeriac, other, lower_better):
    if celeriac is None or other is None or celeriac == 0 or other == 0:
        return NA
    r = other / celeriac if lower_better else celeriac / other
    return f"{r:.2f}x" if r < 10 else f"{r:.0f}x"


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    peers, peer_rows = load_peers(os.path.join(out, "peers_raw.jsonl"))
    yard = load_yardstick(out)
    cel = load_celeriac(out)

    def p(system, measure):
        return med(peers.get((system, measure)))

    def c(measure):
        return med(cel.get(measure))

    def redis_cpu_us(system, measure):
        """Median Redis CPU µs per task of a peer's measured phase (redis_cpu_s / n)."""
        xs = [r["redis_cpu_s"] / r["n"] * 1e6 for r in peer_rows.get((system, measure), [])
              if r.get("redis_cpu_s") is not None and r.get("n")]
        return med(xs)

    # One worker process, as the peers drain; any drain row when there is none (--smoke runs two).
    drain_key = next((k for k in cel if k.startswith("drain, no-op tasks, 1 worker process")),
                     next((k for k in cel if k.startswith("drain, no-op tasks")), None))
    http_rps = next((k for k in cel if re.fullmatch(r"HTTP POST /emails, \d+ connections", k)), None)
    http_p99 = next((k for k in cel if re.fullmatch(r"HTTP POST /emails, \d+ connections, p99", k)), None)
    # Enqueue to SUCCESS while other producers load the worker, on Celeriac's and on the latency
    # yardstick's (celeriac-latency-yardstick, measured right after by the same probe).
    loaded = {p: next((k for k in cel if re.fullmatch(
        r"enqueue to SUCCESS, worker under load \(\d+ other tasks/s\), " + p, k)), None) for p in ("p50", "p99")}

    # Celery drain: the faster of the two pools measured in this run (both shown in the notes).
    cp = p("celery", "drain pool=prefork c=2 prefetch=1")
    cs = p("celery", "drain pool=solo c=1 prefetch=1")
    celery_drain, celery_drain_label = None, ""
    for v, lab in ((cp, "prefork c=2"), (cs, "solo")):
        if v is not None and (celery_drain is None or v > celery_drain):
            celery_drain, celery_drain_label = v, lab

    sk_drain = "drain sidekiq -c 50"
    # (label, unit, lower_is_better, celeriac, yardstick, celery, bullmq, sidekiq, celery cell suffix)
    rows = [
        ("enqueue, one task per call", "tasks/s", False,
         c("enqueue, one per call, 1 caller (as the peers measure it)"), None,
         p("celery", "enqueue .delay()"), p("bullmq", "enqueue await queue.add()"),
         p("sidekiq", "enqueue perform_async"), ""),
        ("enqueue, batches of 100 (BullMQ: addBulk of 1000; Sidekiq: push_bulk of 1000)", "tasks/s", False,
         c("enqueue, batches of 100, 1 caller(s)"), None,
         None, p("bullmq", "enqueue addBulk(batch=1000)"), p("sidekiq", "enqueue push_bulk(batch=1000)"), ""),
        ("enqueue, batches of 1000 (as BullMQ's addBulk and Sidekiq's push_bulk)", "tasks/s", False,
         c("enqueue, batches of 1000, 1 caller(s)"), None,
         None, p("bullmq", "enqueue addBulk(batch=1000)"), p("sidekiq", "enqueue push_bulk(batch=1000)"), ""),
        ("drain, no-op tasks", "tasks/s", False,
         c(drain_key) if drain_key else None, med(yard["drain"]),
         celery_drain, p("bullmq", "drain Worker concurrency=50"), p("sidekiq", sk_drain),
         f" ({celery_drain_label})" if celery_drain_label else ""),
        ("e2e latency p50 (lower is better)", "ms", True,
         c("enqueue to SUCCESS, idle worker, p50"), None,
         p("celery", "e2e latency p50 (pool=solo)"), p("bullmq", "e2e latency p50 (QueueEvents)"),
         p("sidekiq", "e2e latency p50 (BLPOP)"), ""),
        ("e2e latency p99 (lower is better)", "ms", True,
         c("enqueue to SUCCESS, idle worker, p99"), None,
         p("celery", "e2e latency p99 (pool=solo)"), p("bullmq", "e2e latency p99 (QueueEvents)"),
         p("sidekiq", "e2e latency p99 (BLPOP)"), ""),
        ("e2e latency p50 while other producers enqueue 20,000 tasks/s (lower is better)", "ms", True,
         c(loaded["p50"]) if loaded["p50"] else None,
         c("latency yardstick: " + loaded["p50"]) if loaded["p50"] else None, None, None, None, ""),
        ("e2e latency p99 while other producers enqueue 20,000 tasks/s (lower is better)", "ms", True,
         c(loaded["p99"]) if loaded["p99"] else None,
         c("latency yardstick: " + loaded["p99"]) if loaded["p99"] else None, None, None, None, ""),
        ("HTTP POST /emails, wrk -t2 -c50 (Celery = seed FastAPI app)", "req/s", False,
         p("celeriac", "POST /emails req/s (wrk -t2 -c50)"), p("http-yardstick", "POST /emails req/s (wrk -t2 -c50)"),
         p("seed FastAPI+Celery", "POST /emails req/s (uvicorn workers=1)"), None, None, ""),
        ("HTTP POST /emails, wrk -t2 -c50, p99 (lower is better)", "ms", True,
         p("celeriac", "POST /emails p99 (wrk -t2 -c50)"), p("http-yardstick", "POST /emails p99 (wrk -t2 -c50)"),
         p("seed FastAPI+Celery", "POST /emails p99 (uvicorn workers=1)"), None, None, ""),
        ("HTTP GET /tasks/<id> of a stored SUCCESS, wrk -t2 -c50 (Celery = seed FastAPI app)", "req/s", False,
         p("celeriac", "GET /tasks/<id> req/s (wrk -t2 -c50)"), p("http-yardstick", "GET /tasks/<id> req/s (wrk -t2 -c50)"),
         p("seed FastAPI+Celery", "GET /tasks/<id> req/s (uvicorn workers=1)"), None, None, ""),
        ("HTTP GET /tasks/<id>, wrk -t2 -c50, p99 (lower is better)", "ms", True,
         p("celeriac", "GET /tasks/<id> p99 (wrk -t2 -c50)"), p("http-yardstick", "GET /tasks/<id> p99 (wrk -t2 -c50)"),
         p("seed FastAPI+Celery", "GET /tasks/<id> p99 (uvicorn workers=1)"), None, None, ""),
        ("HTTP POST /emails, celeriac-bench's own client, 50 connections", "req/s", False,
         c(http_rps) if http_rps else None, None, None, None, None, ""),
        ("HTTP POST /emails, celeriac-bench's own client, p99 (lower is better)", "ms", True,
         c(http_p99) if http_p99 else None, None, None, None, None, ""),
        ("Redis CPU per task, drain (lower is better)", "µs", True,
         c("Redis CPU per task (fetch + start + ack)"), med(yard["fetch_ack_us"]),
         redis_cpu_us("celery", "drain pool=prefork c=2 prefetch=1"),
         redis_cpu_us("bullmq", "drain Worker concurrency=50"), redis_cpu_us("sidekiq", sk_drain),
         " (prefork c=2)"),
        ("lifecycle, one client, batches of 100 (the yardstick's method): fetch + start + ack", "tasks/s", False,
         c("lifecycle, one client, batches of 100: rate of fetch + start + ack"), med(yard["drain"]), None, None, None, ""),
        ("lifecycle, one client, batches of 100: Redis CPU per task, enqueue to result (lower is better)", "µs", True,
         c("lifecycle, one client, batches of 100: Redis CPU per task, in all"), med(yard["total_us"]), None, None, None, ""),
        ("Redis bytes per pending task (lower is better)", "bytes", True,
         c("Redis memory per pending task (a 73-byte e-mail payload)"), med(yard["bytes"]), None, None, None, ""),
    ]

    nreps = max([len(v) for v in cel.values()] + [len(yard["drain"])]
                + [len(v) for v in peers.values()] + [0])
    print(f"## Celeriac vs peers, one run on this machine ({nreps} repetition(s); medians when more than one)")
    print()
    env = os.path.join(out, "env.txt")
    if os.path.exists(env) and "SMOKE=1" in open(env).read():
        print("**SMOKE run (SMOKE=1: tiny counts, celeriac-bench --smoke): proves the script runs; the figures "
              "mean nothing, and the sizes in the notes below are not the ones run.**")
        print()
    print("Ratios: Celeriac÷peer for rates; for rows marked *lower is better* the ratio is peer÷Celeriac. "
          "So in every ratio column **> 1 means Celeriac is ahead**, < 1 behind (vs the yardstick, "
          "< 1 is expected: it is the floor). n/a = not measured or the step failed.")
    print()
    print("| measure | unit | Celeriac | yardstick | Celery | BullMQ | Sidekiq | Celeriac÷Celery | Celeriac÷BullMQ "
          "| Celeriac÷Sidekiq | Celeriac÷yardstick |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for label, unit, lower, cv, yv, celv, bv, sv, suffix in rows:
        cel_cell = fmt(celv) + (suffix if celv is not None else "")
        print(f"| {label} | {unit} | {fmt(cv)} | {fmt(yv)} | {cel_cell} | {fmt(bv)} | {fmt(sv)} | "
              f"{ratio(cv, celv, lower)} | {ratio(cv, bv, lower)} | {ratio(cv, sv, lower)} | {ratio(cv, yv, lower)} |")

    print()
    print("What each cell is:")
    print(f"- Celeriac: `celeriac-bench` full mode. Enqueue one per call = 1 sequential caller, as the peers; "
          f"connection (peers: one sequential client, `.delay()` / `await queue.add()`); batch = batches of 100, "
          f"then of 1000, 1 caller (BullMQ: `addBulk` of 1000). Drain = `{drain_key or 'n/a'}`; latency = enqueue to SUCCESS, "
          f"idle worker; HTTP (own client) = celeriac-bench's in-process client, 50 connections, 10 s.")
    print("- HTTP, wrk rows: the seed app (uvicorn workers=1) and Celeriac's gateway (`celeriac_http.py`) each "
          "under `wrk -t2 -c50 -d10s` with the seed's `post_emails.lua` (and `get_task.lua` on one task with a "
          "stored SUCCESS result: the seed's stored by Celery's backend, Celeriac's run by a worker stopped "
          "before the load), on the same redis-server, no worker running, the queue purged afterwards. Their "
          "yardstick cells: `celeriac-http-yardstick` (the cheapest gateway for the two routes: axum, jemalloc, "
          "one Redis call a request, the yardstick's own enqueue script for POST and one HGETALL of a copy of "
          "Celeriac's record for GET) under the same load right after the gateway, in the same step.")
    print(f"- Celery drain: prefork c=2 prefetch 1 = {fmt(cp)} tasks/s, solo = {fmt(cs)} tasks/s; the faster is in "
          f"the table. Celery latency: solo pool, 300 tasks. BullMQ drain: one Worker, concurrency 50; latency via "
          f"QueueEvents, 500 tasks. Sidekiq (Debian's 6.4, `bench/compare/sidekiq/`): enqueue `perform_async` "
          f"one at a time and `Sidekiq::Client.push_bulk` of 1000; drain = one `sidekiq -c 50` process, no-op job, "
          f"first to last job end (per-job logging off, as in Sidekiq's own load test); latency = one job at a "
          f"time on an idle `sidekiq -c 50`, done signalled by the job's RPUSH to a list the client BLPOPs, 500 "
          f"jobs.")
    print(f"- Yardstick (`lifecycle_lean.py`, N=100000, batches of 100, its own redis-server): drain = fetch+ack "
          f"loop of one Python client, no task code; Redis CPU = its fetch+ack part "
          f"({fmt(med(yard['fetch_ack_us']))} µs; enqueue {fmt(med(yard['enqueue_us']))} µs, total "
          f"{fmt(med(yard['total_us']))} µs); bytes = used_memory ÷ N (whole server, includes ~1 MB baseline, "
          f"i.e. ~10 bytes/task); Celeriac's is the used_memory delta ÷ tasks.")
    print("- e2e latency rows under load: enqueue to SUCCESS of one no-op task at a time (500) while the bench "
          "enqueues 20,000 other tasks a second in batches of 100, on one worker process; their yardstick cells: "
          "`celeriac-latency-yardstick` (the cheapest Redis worker: one thread, one script to take and start a "
          "batch, one to store it, no fencing, log or retries), measured right after Celeriac's worker by the "
          "same probe under the same load, in the same `celeriac-bench` step.")
    print("- Lifecycle rows: `celeriac-bench`'s library lifecycle, measured as the yardstick measures itself: "
          "one client, batches of 100, enqueue then fetch (claim and start in one call, as a native worker) + "
          "acknowledge through Celeriac's scripts, no "
          "worker process and no task code; 'Redis CPU ... enqueue to result' = enqueue + fetch/start/ack parts.")
    print("- Redis CPU per task for Celery/BullMQ/Sidekiq: redis-server CPU over their drain phase ÷ tasks (from "
          "peers_raw.jsonl); Celeriac's: over its drain (incl. worker start-up and its 5 ms progress polling).")
    print()
    print("Not like for like (read these ratios with care):")
    print("- enqueue, one task per call: one sequential caller on every side (celeriac-bench also reports 64 "
          "concurrent callers pipelined on one connection, which is what a web gateway does).")
    print("- bytes per pending task: both carry the same 73-byte e-mail payload; Celeriac's Redis runs with "
          "hash-max-listpack-value 512 (as its scripts and compose file start it), the yardstick's with the "
          "default 64, and the yardstick's figure includes the empty server's ~1 MB (~10 bytes a task). "
          "Celeriac's includes its listing log (about 35 bytes a task).")
    print("- sizes differ: Celeriac drains 100,000 tasks, Celery, BullMQ and Sidekiq 10,000 (BullMQ's drain can be over "
          "in well under a second, so it is the noisiest cell); the yardstick drains 100,000 without running "
          "any task code.")

    steps = os.path.join(out, "steps.tsv")
    if os.path.exists(steps):
        bad = [l.rstrip("\n").split("\t") for l in open(steps).readlines()[1:] if l.strip()]
        bad = [b for b in bad if len(b) >= 3 and b[2] != "0"]
        print()
        if bad:
            print("Steps that failed or were skipped (rep, step, rc; 124 = timed out):")
            for b in bad:
                print(f"- rep {b[0]}: {b[1]} rc={b[2]} (log: logs/{b[1]}.rep{b[0]}.log)")
        else:
            print("All steps exited 0.")


if __name__ == "__main__":
    main()
