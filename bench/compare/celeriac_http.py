"""Celeriac's gateway under the same load as the seed app: `wrk -t2 -c50` on GET /tasks/<id>
(a task with a stored SUCCESS result) and on POST /emails; and the HTTP yardstick
(`celeriac-http-yardstick`, the cheapest gateway for those two routes: one Redis call each)
under the very same load, each route measured on the gateway then on the yardstick.

    PEERS=<copy of ../shared/peers> python celeriac_http.py --api <celeriac-api binary>

Mirrors fastapi_seed/bench_http.py, so the figures compare like for like: the same load
generator, scripts and body, the same redis-server (the one compare.sh started), and the
queue purged after the run. The task read by GET is run first by a worker
(`celeriac-worker` beside the gateway's binary, or --worker) that is stopped before the
load, as the seed's result is stored before its load; no worker runs during either load.
The yardstick reads a copy of that very record (Redis' COPY), so both GETs read the same
bytes. celeriac-bench measures the gateway with its own in-process client instead, which
shares the machine differently. Appends one JSON line per measure to RESULTS_FILE (as the
peer scripts do), with the CPU of the server measured, of Redis and of wrk.
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
YARD_NAMESPACE = "http-yardstick"  # celeriac-http-yardstick's keys

ap = argparse.ArgumentParser()
ap.add_argument("--api", required=True, help="the celeriac-api binary")
ap.add_argument("--worker", help="the celeriac-worker binary (default: beside --api)")
ap.add_argument("--yardstick", help="the celeriac-http-yardstick binary (default: beside --api)")
ap.add_argument("--duration", type=int, default=10)
args = ap.parse_args()
worker_bin = args.worker or os.path.join(os.path.dirname(args.api), "celeriac-worker")
yardstick_bin = args.yardstick or os.path.join(os.path.dirname(args.api), "celeriac-http-yardstick")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


port, yard_port = free_port(), free_port()
base, yard_base = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{yard_port}"
env = dict(os.environ, RUST_LOG="warn", CELERIAC_CONFIG_DIR="/nonexistent",
           CELERIAC__REDIS__URL=f"redis://127.0.0.1:{REDIS_PORT}",
           CELERIAC__REDIS__NAMESPACE=NAMESPACE, CELERIAC__HTTP__BIND=f"127.0.0.1:{port}")
gateway = start_group([args.api], os.path.join(PEERS, "logs", "celeriac-api.log"), env=env)
yardstick = start_group([yardstick_bin, "--bind", f"127.0.0.1:{yard_port}",
                         "--redis-url", f"redis://127.0.0.1:{REDIS_PORT}"],
                        os.path.join(PEERS, "logs", "celeriac-http-yardstick.log"), env=env)


def redis_cli(*words):
    return subprocess.run(["redis-cli", "-p", str(REDIS_PORT), "--no-raw", *words],
                          check=True, capture_output=True, text=True).stdout


def purge():
    """Deletes what the run stored (the gateway's and the yardstick's namespaces only)."""
    for namespace in (NAMESPACE, YARD_NAMESPACE):
        redis_cli("eval", "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('UNLINK', k) end",
                  "0", namespace + "*")


def wait_up(url, what):
    for _ in range(300):
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except urllib.error.HTTPError:
            return  # it answers
        except Exception:
            time.sleep(0.1)
    raise SystemExit(f"{what} did not come up")


def wrk(server, url, script):
    """`wrk -t2 -c50` on `url` with the seed's `script`: its report, with the CPU the server
    (the process group `server`), Redis and wrk took meanwhile."""
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    c_gw0, c_red0 = tree_cpu(server.pid), redis_cpu()
    out = subprocess.run(
        ["wrk", "-t2", "-c50", f"-d{args.duration}s", "--latency", "--timeout", "5s",
         "-s", os.path.join(SEED, script), url],
        capture_output=True, text=True, timeout=args.duration + 30,
        env=dict(os.environ, WRK_REPORT=os.path.join(SEED, "report.lua")))
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    c_gw1, c_red1 = tree_cpu(server.pid), redis_cpu()
    line = [l for l in out.stdout.splitlines() if l.startswith("WRKJSON ")]
    if not line:
        print(out.stdout, out.stderr, file=sys.stderr)
        raise SystemExit("wrk produced no report")
    res = json.loads(line[0][len("WRKJSON "):])
    errors = sum(v for k, v in res.items() if k.startswith("errors_"))
    if errors:
        raise SystemExit(f"wrk saw {errors} errors on {url}: {res}")
    res.update(server_cpu_s=c_gw1 - c_gw0, redis_cpu_s=c_red1 - c_red0,
               wrk_cpu_s=(ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime))
    return res


def measure(route, script, gateway_path, yard_path, purge_after=False):
    """The route under wrk on the gateway, then on the yardstick: one record each. With
    `purge_after`, what each run stored is deleted after it, so both start from the same Redis."""
    for system, server, url in (("celeriac", gateway, base + gateway_path),
                                ("http-yardstick", yardstick, yard_base + yard_path)):
        res = wrk(server, url, script)
        command = f"wrk -t2 -c50 -d{args.duration}s -s fastapi_seed/{script} ({os.path.basename(server.args[0])}, no worker)"
        record(system, "", f"{route} req/s (wrk -t2 -c50)", res["rps"], "req/s", command, **res)
        record(system, "", f"{route} p99 (wrk -t2 -c50)", res["p99_ms"], "ms", command, **res)
        if purge_after:
            purge()


try:
    wait_up(base + "/readyz", "the gateway")
    wait_up(yard_base + "/tasks/none", "the HTTP yardstick")
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
    # The yardstick reads the very same record.
    queue, suffix = tid.rsplit("-", 1)
    redis_cli("copy", f"{NAMESPACE}:{{{queue}}}:t:{suffix}", f"{YARD_NAMESPACE}:{{emails}}:t:{tid}")
    measure("GET /tasks/<id>", "get_task.lua", f"/tasks/{tid}", f"/tasks/{tid}")

    req = urllib.request.Request(base + "/emails", method="POST",
                                 data=b'{"to":"a@b.c","subject":"s","body":"b"}',
                                 headers={"Content-Type": "application/json"})
    assert "task_id" in urllib.request.urlopen(req).read().decode()
    purge()
    measure("POST /emails", "post_emails.lua", "/emails", "/emails", purge_after=True)
finally:
    stop_group(gateway)
    stop_group(yardstick)
    purge()
