"""A client generated from openapi.yaml by a standard generator (openapi-python-client, pinned
in scripts/python/requirements.txt) runs the README's curl session against a real gateway and
worker: send an e-mail and wait for it, build a PDF report and download it, enqueue `add`
with a countdown and revoke it, find the e-mail in the archive's history by its arguments, and
retry the revoked task. Generation must not warn (the generator reports schemas it
cannot use), and every answer must parse into the generated models."""

import importlib
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from celeriac_stack import ROOT, Stack  # noqa: E402

TOKEN = "generated-client-admin-token"


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("generated")
    generator = Path(sys.executable).parent / "openapi-python-client"
    run = subprocess.run(
        [str(generator), "generate", "--path", str(ROOT / "openapi.yaml"), "--meta", "none",
         "--output-path", str(out / "celeriac_generated"), "--config", str(HERE.parent / "openapi-python-client.yaml")],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Warning" not in run.stdout + run.stderr, run.stdout + run.stderr
    sys.path.insert(0, str(out))
    yield importlib.import_module("celeriac_generated")
    sys.path.remove(str(out))


@pytest.fixture(scope="module")
def stack():
    with Stack.start(extra_env={"CELERIAC__AUTH__ADMIN_TOKENS": TOKEN}, archive=True) as running:
        yield running


def test_the_readme_curl_session_through_a_generated_client(generated, stack):
    from celeriac_generated import AuthenticatedClient
    from celeriac_generated.api.emails import post_email
    from celeriac_generated.api.reports import download_report, post_report
    from celeriac_generated.api.tasks import get_task, list_tasks, post_task, retry_task, revoke_task
    from celeriac_generated.models import (
        Accepted, ActionResult, EmailRequest, ReportFormat, ReportRequest, RevokeRequest, TaskList, TaskRequest, TaskState,
        TaskView,
    )

    client = AuthenticatedClient(base_url=stack.url, token=TOKEN, raise_on_unexpected_status=True)

    # Send an e-mail in the background: 202 and a task id, at once; then wait for it.
    sent = post_email.sync_detailed(client=client, body=EmailRequest(to="ada@example.com", subject="Welcome", body="Thanks for signing up."))
    assert sent.status_code == 202 and isinstance(sent.parsed, Accepted), sent.content
    done = get_task.sync(sent.parsed.task_id, client=client, wait=10)
    assert isinstance(done, TaskView) and done.state == TaskState.SUCCESS, done
    assert any("ada@example.com" in p.read_text(errors="replace") for p in stack.mail_dir.glob("*.eml"))

    # Build a PDF report, watch it finish, download it.
    report = post_report.sync("42", client=client, body=ReportRequest(format_=ReportFormat.PDF))
    assert isinstance(report, Accepted), report
    finished = get_task.sync(report.task_id, client=client, wait=10)
    assert finished.state == TaskState.SUCCESS and finished.progress is not None
    file = download_report.sync_detailed(report.task_id, client=client)
    assert file.status_code == 200 and file.headers["content-type"] == "application/pdf"
    assert file.content.startswith(b"%PDF")

    # Any registered task, with options; then revoke it before it runs.
    later = post_task.sync(client=client, body=TaskRequest(task="add", args=[2, 2], countdown=5))
    assert isinstance(later, Accepted) and later.task_id.startswith("default-"), later
    revoked = revoke_task.sync(later.task_id, client=client, body=RevokeRequest(terminate=True))
    assert isinstance(revoked, ActionResult) and revoked.outcome == "revoked", revoked
    assert get_task.sync(later.task_id, client=client).state == TaskState.REVOKED

    # History, from PostgreSQL: the e-mail found by its task, arguments and time.
    deadline = time.monotonic() + 30
    while True:
        found = list_tasks.sync(client=client, task="send_email", args='{"to":"ada@example.com"}',
                                from_="2026-11-28T00:00:00Z")
        assert isinstance(found, TaskList) and found.source == "archive", found
        if [t.task_id for t in found.tasks] == [sent.parsed.task_id]:
            break
        assert time.monotonic() < deadline, f"the e-mail never reached the archive: {found}"
        time.sleep(0.2)

    # A failed or revoked task runs again.
    retried = retry_task.sync(later.task_id, client=client)
    assert isinstance(retried, ActionResult) and retried.outcome == "queued", retried
    assert get_task.sync(later.task_id, client=client, wait=10).state == TaskState.SUCCESS
