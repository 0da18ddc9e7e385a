"""The client against a real gateway and worker: enqueue, wait, options, idempotency, errors,
e-mails, reports with their progress events (resumed with Last-Event-ID), workflows."""

import uuid

import pytest

from celeriac import CeleriacError, Client, TaskFailed
from conftest import TOKEN


def test_enqueue_any_task_and_wait_for_its_result(client):
    accepted = client.enqueue("add", [2, 3])
    assert accepted.task_id.startswith("default-") and accepted.state == "PENDING"
    assert client.result(accepted.task_id, timeout=20) == 5


def test_options_are_sent_and_unknown_ones_refused_before_sending(client):
    accepted = client.enqueue("noop", None, countdown=3600, max_retries=1)
    record = client.get(accepted.task_id)
    assert record["state"] == "SCHEDULED"
    assert record["options"]["max_retries"] == 1
    client.revoke(accepted.task_id)
    with pytest.raises(TypeError, match="prio"):
        client.enqueue("noop", prio=1)


def test_every_call_option_of_the_gateway_is_accepted(client):
    """The client's option names are the gateway's: flow control and tags reach the record."""
    accepted = client.enqueue(
        "noop", None, countdown=3600, priority=5, limit_key="customer-7",
        unique_for=60, unique_key=f"k-{uuid.uuid4()}", tags={"tenant": "acme"},
    )
    options = client.get(accepted.task_id)["options"]
    assert (options["priority"], options["limit_key"], options["tags"]) == (5, "customer-7", {"tenant": "acme"})
    client.revoke(accepted.task_id)
    debounced = client.enqueue("noop", None, debounce=60, debounce_key=f"d-{uuid.uuid4()}")
    assert client.get(debounced.task_id)["state"] == "SCHEDULED"
    client.revoke(debounced.task_id)


def test_an_invalid_field_is_an_error_naming_it(client):
    with pytest.raises(CeleriacError) as e:
        client.enqueue("add", [1], countdown=-1)
    assert e.value.status == 422 and e.value.field == "countdown"
    with pytest.raises(CeleriacError) as e:
        client.enqueue("no_such_task")
    assert e.value.code == "unknown_task"


def test_a_wrong_token_is_refused(stack):
    with Client(stack.url, token="not-the-token-at-all") as other, pytest.raises(CeleriacError) as e:
        other.enqueue("noop")
    assert e.value.status == 401


def test_an_idempotency_key_returns_the_first_task(client):
    key = f"signup-{uuid.uuid4()}"
    first = client.send_email("ada@example.com", "Welcome", "Hi", idempotency_key=key)
    again = client.send_email("ada@example.com", "Welcome", "Hi", idempotency_key=key)
    assert again.task_id == first.task_id


def test_an_email_is_sent_through_the_smtp_sink(client, stack):
    accepted = client.send_email("grace@example.com", "Report ready", "See attached.", max_retries=2)
    result = client.result(accepted.task_id, timeout=20)
    assert result["accepted"] is True
    mails = [p.read_text(errors="replace") for p in stack.mail_dir.glob("*.eml")]
    assert any("grace@example.com" in m and "Report ready" in m for m in mails)


def test_a_failed_task_raises_task_failed(client):
    accepted = client.enqueue("fail", {"message": "boom", "retryable": False})
    with pytest.raises(TaskFailed) as e:
        client.result(accepted.task_id, timeout=20)
    assert e.value.record["state"] == "FAILURE"


def test_a_revoked_task_is_retried_and_a_success_is_not(client):
    accepted = client.enqueue("add", [2, 2], countdown=3600)
    client.revoke(accepted.task_id)
    assert client.get(accepted.task_id)["state"] == "REVOKED"
    assert client.retry(accepted.task_id) == {"task_id": accepted.task_id, "outcome": "queued"}
    assert client.result(accepted.task_id, timeout=30) == 4
    with pytest.raises(CeleriacError) as e:
        client.retry(accepted.task_id)
    assert e.value.status == 409 and "only failed or revoked" in str(e.value)


def test_report_progress_events_resume_after_a_dropped_stream(client):
    # A countdown, so the first event (the snapshot) comes before the run does.
    accepted = client.generate_report("42", "csv", countdown=1)
    stream = client.events(accepted.task_id)
    first = next(stream)
    assert first.event == "snapshot" and first.data["state"] == "SCHEDULED"
    stream.close()  # the connection drops after one event
    rest = list(client.events(accepted.task_id, last_event_id=first.id))
    ids = [int(e.id) for e in rest]
    assert ids == sorted(set(ids)) and all(i > int(first.id) for i in ids), "no event repeated or out of order"
    assert rest[-1].data["state"] == "SUCCESS"
    record = client.get(accepted.task_id)
    assert record["progress"]["current"] == record["progress"]["total"]
    progress = [e.data["progress"]["current"] for e in rest if e.event == "progress"]
    assert len(progress) >= 2 and progress == sorted(progress), [e.event for e in rest]
    # The test stack keeps no archive, so the report says so instead of inventing figures.
    report = client.download_report(accepted.task_id)
    assert report.startswith(b"note") and b"No history is kept" in report, report


def test_a_report_takes_an_integer_user_id(client):
    accepted = client.generate_report(7)
    assert client.result(accepted.task_id, timeout=20)["user_id"] == "7"


def test_a_workflow_runs_and_is_read_back(client):
    started = client.start_workflow({"chain": [{"task": "add", "args": [2, 2]}, {"task": "add", "args": [4]}]})
    status = client.wait_workflow(started["workflow_id"], timeout=20)
    assert status["state"] == "SUCCESS" and status["result"] == 8


def test_tasks_lists_by_task_and_tag_page_by_page(client):
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    ids = [client.enqueue("add", [i, 1], tags={"tenant": tenant}).task_id for i in range(3)]
    client.enqueue("add", [9, 9])  # untagged: not listed
    for task_id in ids:
        client.wait(task_id, timeout=20)
    found, cursor = [], None
    while True:
        page = client.tasks(task="add", tag={"tenant": tenant}, limit=2, cursor=cursor)
        assert page["source"] == "live"
        found += [t["task_id"] for t in page["tasks"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(found) == sorted(ids)


def test_tasks_refuses_bad_filters_naming_them(client):
    with pytest.raises(TypeError, match="one tag"):
        client.tasks(tag={"a": "1", "b": "2"})
    with pytest.raises(CeleriacError) as e:
        client.tasks(state="NOT_A_STATE")
    assert e.value.status == 422 and e.value.field == "state"
    # This stack keeps no archive: a history search says so, naming the field.
    with pytest.raises(CeleriacError) as e:
        client.tasks(error="timeout")
    assert e.value.status == 422 and e.value.field == "source"
