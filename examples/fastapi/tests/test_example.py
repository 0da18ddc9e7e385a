"""The FastAPI example end to end: a real Celeriac (redis-server, SMTP sink, gateway, worker)
and the example served by uvicorn on a real port. An e-mail is sent through the SMTP sink, a
report's progress reaches its end, and the Python task `summarize_activity` is run by
Celeriac's worker over HTTP, signed, retried after its first attempt answers 503; a call with
a wrong signature is refused by the example."""

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2] / "scripts" / "python"))
from celeriac_stack import Stack, free_port, wait_until  # noqa: E402

from celeriac import sign  # noqa: E402

TOKEN = "fastapi-example-admin-token"
SECRET = "fastapi-example-task-secret"


@pytest.fixture(scope="module")
def system():
    port = free_port()
    with Stack.start(extra_env={"CELERIAC__AUTH__ADMIN_TOKENS": TOKEN}, progress_urls=True) as stack:
        if httpx.get(f"{stack.url}/task-types", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404:
            pytest.skip("this gateway has no remote task types (PUT /task-types) yet")
        env = {
            **os.environ,
            "CELERIAC_URL": stack.url,
            "CELERIAC_TOKEN": TOKEN,
            "APP_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "CELERIAC_TASK_SECRET": SECRET,
        }
        log = open(stack.dir / "logs" / "example.log", "ab")
        app = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app:app", "--host", "127.0.0.1", "--port", str(port)],
            cwd=HERE.parent, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
        try:
            wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/docs").status_code == 200, "the example app")
            yield stack, f"http://127.0.0.1:{port}"
        finally:
            app.terminate()
            app.wait(timeout=10)
            log.close()


def wait_status(app_url, task_id, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = httpx.get(f"{app_url}/tasks/{task_id}").json()
        if status["status"] in ("SUCCESS", "FAILURE", "REVOKED"):
            return status
        time.sleep(0.1)
    raise TimeoutError(f"task {task_id} did not end: {status}")


def test_an_email_is_sent(system):
    stack, app = system
    answer = httpx.post(f"{app}/emails", json={"to": "ada@example.com", "subject": "Welcome", "body": "Hello from FastAPI"})
    assert answer.status_code == 202
    assert wait_status(app, answer.json()["task_id"])["status"] == "SUCCESS"
    assert any("Hello from FastAPI" in p.read_text(errors="replace") for p in stack.mail_dir.glob("*.eml"))


def test_a_report_progresses_to_its_end(system):
    _, app = system
    answer = httpx.post(f"{app}/reports/42", json={"format": "pdf"})
    status = wait_status(app, answer.json()["task_id"])
    assert status["status"] == "SUCCESS"
    assert status["progress"]["current"] == status["progress"]["total"] > 0


def test_the_python_task_is_run_by_celeriac_with_a_retry(system):
    _, app = system
    answer = httpx.post(f"{app}/activity/5/summary", params={"flaky": "true"})
    status = wait_status(app, answer.json()["task_id"])
    assert status["status"] == "SUCCESS", status
    assert status["attempt"] == 2 and status["result"]["attempt"] == 2, status
    assert status["result"]["days"] == 7
    assert status["progress"] == {"current": 7, "total": 7, "message": "day 7"}


def test_a_call_with_a_wrong_signature_is_refused(system):
    _, app = system
    body = b'{"id":"default-1","task":"summarize_activity","args":{"user_id":"1"},"attempt":1}'
    for header in (sign("not-the-right-secret!", body), None):
        headers = {"content-type": "application/json", **({"Celeriac-Signature": header} if header else {})}
        assert httpx.post(f"{app}/celeriac/summarize_activity", content=body, headers=headers).status_code == 401
    assert httpx.post(f"{app}/celeriac/summarize_activity", content=body, headers={"Celeriac-Signature": sign(SECRET, body)}).status_code == 200
