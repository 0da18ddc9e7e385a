"""Celeriac's gateway under the same load as the seed app: `wrk -t2 -c50` on GET /tasks/<id>
(a task with a stored SUCCESS result) and on POST /emails.

    PEERS=<copy of ../shared/peers> python celeriac_http.py --api <celeriac-api binary>

Mirrors fastapi_seed/bench_http.py, so the figures compare like for like: the same load
generator, scripts and body, the same redis-server (the one compare.sh started), and the
queue purged after the run. The task read by GET is run first by a worker
(`celeriac-worker` beside the gateway's binary, or --worker) that is stopped before the
load, as the seed's result is stored before its load; no worker runs during either load. celeriac-bench measures the gateway
with its own in-process client instead, which shares the machine differently. Appends one
JSON line per measure to RESULTS_FILE (as the peer scripts do), with the CPU of the
gateway, of Redis and of wrk.
"""
import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

PEERS = os.environ["PEERS"]
sys.path.insert(0, PEERS)
from benchlib import record, start_group, stop_group, redis_cpu, tree_cpu, REDIS_PORT  # noqa: E402

SEED = os.path.join(PEERS, "fastapi_seed")
NAMESPACE = "celeriac-http"

ap = argparse.ArgumentParser()
ap.add_argument("--api", required=True, help="the celeriac-api binary")
ap.add_argument("--worker", help="the celeriac-worker binary (default: beside --api)")
ap.add_argument("--duration", type=int, default=10)
args = ap.parse_args()
worker_bin = args.worker or os.path.join(os.path.dirname(args.api), "celeriac-worker")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


port = free_port()
base = f"http://127.0.0.1:{port}"
env = dict(os.environ, RUST_LOG="warn", CELERIAC_CONFIG_DIR="/nonexistent",
           CELERIAC__REDIS__URL=f"redis://127.0.0.1:{REDIS_PORT}",
           CELERIAC__REDIS__NAMESPACE=NAMESPACE, CELERIAC__HTTP__BIND=f"127.0.0.1:{port}")
gateway = start_group([args.api], os.path.join(PEERS, "logs", "celeriac-api.log"), env=env)


def purge():
    """Deletes what the run stored (the gateway's namespace only)."""
    subprocess.run(["redis-cli", "-p", str(REDIS_PORT), "--no-raw", "eval",
                    "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('UNLINK', k) end",
                    "0", NAMESPACE + "*"], check=True, capture_output=True)


def wrk(path, script):
    """`wrk -t2 -c50` on `path` with the seed's `script`: its report, with the CPU the gateway,
    Redis and wrk took meanwhile."""
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    c_gw0, c_red0 = tree_cpu(gateway.pid), redis_cpu()
    out = subprocess.run(
        ["wrk", "-t2", "-c50", f"-d{args.duration}s", "--latency", "--timeout", "5s",
         "-s", os.path.join(SEED, script), base + path],
        capture_output=True, text=True, timeout=args.duration + 30,
        env=dict(os.environ, WRK_REPORT=os.path.join(SEED, "report.lua")))
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    c_gw1, c_red1 = tree_cpu(gateway.pid), redis_cpu()
    line = [l for l in out.stdout.splitlines() if l.startswith("WRKJSON ")]
    if not line:
        print(out.stdout, out.stderr, file=sys.stderr)
        raise SystemExit("wrk produced no report")
    res = json.loads(line[0][len("WRKJSON "):])
    errors = sum(v for k, v in res.items() if k.startswith("errors_"))
    if errors:
        raise SystemExit(f"wrk saw {errors} errors on {path}: {res}")
    res.update(gateway_cpu_s=c_gw1 - c_gw0, redis_cpu_s=c_red1 - c_red0,
               wrk_cpu_s=(ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime))
    return res


try:
    for _ in range(300):
        try:
            urllib.request.urlopen(base + "/readyz", timeout=1).read()
            break
        except Exception:
            time.sleep(0.1)
    else:
        raise SystemExit("the gateway did not come up")
    # A task with a stored SUCCESS result for GET, as the seed's: `add` run by a worker,
    # which is stopped before the load.
    worker = start_group([worker_bin], os.path.join(PEERS, "logs", "celeriac-worker.log"), env=env)
    try:
        tid = None
        for _ in range(300):  # until the worker has published its task types
            req = urllib.request.Request(base + "/tasks", method="POST", data=b'{"task":"add","args":[2,2]}',
                                         headers={"Content-Type": "application/json"})
            try:
                tid = json.loads(urllib.request.urlopen(req).read())["task_id"]
                break
            except urllib.error.HTTPError:
                time.sleep(0.1)
        if tid is None:
            raise SystemExit("the gateway never accepted the add task (did the worker start?)")
        body = urllib.request.urlopen(base + f"/tasks/{tid}?wait=10").read().decode()
        assert '"SUCCESS"' in body, body
    finally:
        stop_group(worker)
    get = wrk(f"/tasks/{tid}", "get_task.lua")
    command = f"wrk -t2 -c50 -d{args.duration}s -s fastapi_seed/get_task.lua (celeriac-api, no worker)"
    record("celeriac", "", "GET /tasks/<id> req/s (wrk -t2 -c50)", get["rps"], "req/s", command, **get)
    record("celeriac", "", "GET /tasks/<id> p99 (wrk -t2 -c50)", get["p99_ms"], "ms", command, **get)

    req = urllib.request.Request(base + "/emails", method="POST",
                                 data=b'{"to":"a@b.c","subject":"s","body":"b"}',
                                 headers={"Content-Type": "application/json"})
    assert "task_id" in urllib.request.urlopen(req).read().decode()
    purge()
    res = wrk("/emails", "post_emails.lua")
    command = f"wrk -t2 -c50 -d{args.duration}s -s fastapi_seed/post_emails.lua (celeriac-api, no worker)"
    record("celeriac", "", "POST /emails req/s (wrk -t2 -c50)", res["rps"], "req/s", command, **res)
    record("celeriac", "", "POST /emails p99 (wrk -t2 -c50)", res["p99_ms"], "ms", command, **res)
finally:
    stop_group(gateway)
    purge()
