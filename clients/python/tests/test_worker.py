"""The Python worker over the pull protocol, against a real gateway: tasks sent to a queue no
native worker consumes (`py-work`) are claimed, run by the decorated functions, report
progress, complete; an exception retries, a PermanentError fails for good. Skipped, saying
why, on a gateway without the pull protocol."""

import threading

import httpx
import pytest

from celeriac import PermanentError, Worker
from conftest import TOKEN

QUEUE = "py-work"


@pytest.fixture
def worker(stack):
    answer = httpx.post(f"{stack.url}/queues/{QUEUE}/claim", params={"max": 1}, headers={"Authorization": f"Bearer {TOKEN}"})
    if answer.status_code == 404:
        pytest.skip("this gateway has no pull protocol (POST /queues/{q}/claim) yet")
    w = Worker(stack.url, queues=[QUEUE], token=TOKEN, concurrency=2, wait=1.0)
    thread = threading.Thread(target=w.run, daemon=True)
    yield w, thread
    w.stop()
    thread.join(timeout=10)
    w.close()


def test_decorated_functions_run_pulled_tasks(client, worker):
    w, thread = worker
    calls = []

    @w.task("echo")
    def echo(args, ctx):
        ctx.progress(1, 2, "halfway")
        calls.append(ctx.attempt)
        if args.get("fail_once") and ctx.attempt == 1:
            raise RuntimeError("a transient failure")
        if args.get("permanent"):
            raise PermanentError("never works")
        return {"echo": args}

    thread.start()
    ok = client.enqueue("echo", {"w": 64}, queue=QUEUE)
    retried = client.enqueue("echo", {"fail_once": True}, queue=QUEUE, retry_delay=0.1, max_retries=2)
    doomed = client.enqueue("echo", {"permanent": True}, queue=QUEUE, max_retries=3)
    assert client.result(ok.task_id, timeout=20) == {"echo": {"w": 64}}
    assert client.get(ok.task_id)["progress"]["message"] == "halfway"
    assert client.result(retried.task_id, timeout=20) == {"echo": {"fail_once": True}}
    assert client.get(retried.task_id)["attempt"] == 2
    record = client.wait(doomed.task_id, timeout=20)
    assert record["state"] == "FAILURE" and record["attempt"] == 1 and "never works" in record["error"]["message"]
    workers = httpx.get(f"{client.base_url}/workers", headers={"Authorization": f"Bearer {TOKEN}"}).json()["workers"]
    assert any(x["id"] == w.worker_id for x in workers), workers
