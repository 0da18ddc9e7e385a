"""celeriac-bench, Python side: the pull protocol's throughput with ONE Python worker process.

Starts a real Celeriac (scripts/python/celeriac_stack.py, the built debug binaries unless
CELERIAC_BIN_DIR says otherwise), enqueues N `noop` tasks on a queue no native worker
consumes, then runs one Python worker process (clients/python's `Worker`, `@worker.task`)
that claims them over HTTP (long poll, `max` per claim = its concurrency), runs them and
completes each through its run token. Prints the tasks per second from the first claim to
the last completion, and checks every task ended SUCCESS.

    target/pyenv/bin/python bench/python/pull_throughput.py --tasks 2000 --concurrency 8
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "python"))
from celeriac_stack import Stack  # noqa: E402

import httpx  # noqa: E402

QUEUE = "bench-pull"

WORKER = """
import sys, time, json
from celeriac import Worker
w = Worker(sys.argv[1], queues=[sys.argv[2]], concurrency=int(sys.argv[3]), wait=2.0)
@w.task("noop")
def noop(args, ctx):
    return None
n = int(sys.argv[4])
first = None
orig = w.claim
def claim(*a, **k):
    global first
    tasks = orig(*a, **k)
    if tasks and first is None:
        first = time.perf_counter()
    return tasks
w.claim = claim
w.run(max_tasks=n)
print(json.dumps({"seconds": time.perf_counter() - first, "processed": w.processed, "failed": w.failed}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    with Stack.start(worker=False) as stack, httpx.Client(base_url=stack.url, timeout=30) as http:
        ids = []
        for _ in range(args.tasks):
            answer = http.post("/tasks", json={"task": "noop", "args": None, "queue": QUEUE})
            answer.raise_for_status()
            ids.append(answer.json()["task_id"])
        run = subprocess.run(
            [sys.executable, "-c", WORKER, stack.url, QUEUE, str(args.concurrency), str(args.tasks)],
            capture_output=True, text=True, timeout=600,
        )
        if run.returncode != 0:
            print(run.stdout, run.stderr, file=sys.stderr)
            return 1
        figures = json.loads(run.stdout.strip().splitlines()[-1])
        states = {http.get(f"/tasks/{i}").json()["state"] for i in ids[:: max(1, len(ids) // 50)]}
        figures.update(tasks=args.tasks, concurrency=args.concurrency, tasks_per_second=round(args.tasks / figures["seconds"], 1), sampled_states=sorted(states))
        print(json.dumps(figures))
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n")
        return 0 if figures["processed"] == args.tasks and states == {"SUCCESS"} else 1


if __name__ == "__main__":
    sys.exit(main())
