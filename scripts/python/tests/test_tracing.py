"""OpenTelemetry export, end to end: a real gateway and worker (`[telemetry] otlp_endpoint`)
send their spans over OTLP/HTTP JSON to this test's own collector on a loopback port. One HTTP
enqueue carrying a client's `traceparent` and the task it caused are one trace: the request's
span is a child of the client's, the enqueue a child of the request, and the task's time in
its queue and its run children of the enqueue, across the two processes; a retry shows as an
event of the failed run."""

import json
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from celeriac_stack import Stack  # noqa: E402

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"


@pytest.fixture
def collector():
    """An OTLP/HTTP receiver: every span posted to /v1/traces, with its service's name."""
    spans: list[dict] = []
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with lock:
                for resource in body.get("resourceSpans", []):
                    attributes = resource.get("resource", {}).get("attributes", [])
                    service = next((a["value"].get("stringValue") for a in attributes if a["key"] == "service.name"), None)
                    for scope in resource.get("scopeSpans", []):
                        for span in scope.get("spans", []):
                            spans.append({**span, "service": service})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def snapshot() -> list[dict]:
        with lock:
            return list(spans)

    yield f"http://127.0.0.1:{server.server_address[1]}", snapshot
    server.shutdown()


def post(url: str, body: dict, traceparent: str) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "traceparent": traceparent},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def wait_for(what: str, found, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = found()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_an_http_enqueue_and_the_run_it_caused_are_one_trace(collector):
    endpoint, spans = collector
    with Stack.start(extra_env={"CELERIAC__TELEMETRY__OTLP_ENDPOINT": endpoint}) as stack:
        traceparent = f"00-{TRACE_ID}-{CLIENT_SPAN}-01"
        task_id = post(stack.url + "/tasks", {"task": "add", "args": [2, 3]}, traceparent)["task_id"]
        retried = post(
            stack.url + "/tasks",
            {"task": "fail", "args": {"message": "flaky", "retryable": True}, "max_retries": 1, "retry_delay": 0.1},
            f"00-{'1' * 32}-{CLIENT_SPAN}-01",
        )["task_id"]

        def of_task(task: str) -> list[dict]:
            trace = [s for s in spans() if s["traceId"] == task]
            return trace

        def complete():
            trace = of_task(TRACE_ID)
            names = {s["name"] for s in trace}
            return trace if {"POST /tasks", "enqueue", "queued", "task"} <= names else None

        trace = wait_for(f"the spans of {task_id}", complete)
        by_name = {s["name"]: s for s in trace}
        request, enqueue, queued, run = (by_name[n] for n in ("POST /tasks", "enqueue", "queued", "task"))
        assert request["parentSpanId"] == CLIENT_SPAN, request
        assert enqueue["parentSpanId"] == request["spanId"], (enqueue, request)
        assert queued["parentSpanId"] == enqueue["spanId"], (queued, enqueue)
        assert run["parentSpanId"] == enqueue["spanId"], (run, enqueue)
        assert (request["service"], enqueue["service"]) == ("celeriac-api", "celeriac-api")
        assert (queued["service"], run["service"]) == ("celeriac-worker", "celeriac-worker")
        attributes = {a["key"]: a["value"] for a in run.get("attributes", [])}
        assert attributes["task_id"] == {"stringValue": task_id}, attributes

        # Two runs of the retried task, each a child of its enqueue; the first says it will retry.
        runs = wait_for(
            "two runs of the retried task",
            lambda: (lambda r: r if len(r) == 2 else None)([s for s in of_task("1" * 32) if s["name"] == "task"]),
        )
        events = [e["name"] for s in runs for e in s.get("events", [])]
        assert "failed; will retry" in events, runs
        assert retried
