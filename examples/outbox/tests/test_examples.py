"""The outbox examples, run against a real system with an archive (PostgreSQL, redis-server,
the gateway, a worker, the SMTP sink and celeriac-archiver, whose relay moves committed rows to
Redis): the Python one (psycopg) and the Rust one (sqlx, the built example binary). Each
committed welcome e-mail is sent once under the id celeriac_enqueue() returned; the Python
example's rolled-back transaction enqueues nothing."""

import importlib.util
import re
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "python"))
from celeriac_stack import Stack, bin_dir  # noqa: E402

from celeriac import Client  # noqa: E402

QUEUED = re.compile(r"^user (\S+) created; welcome e-mail (\S+) queued with it$", re.M)


@pytest.fixture(scope="module")
def stack():
    with Stack.start(archive=True) as running:
        yield running


def run_python_example(url: str, monkeypatch, capsys) -> str:
    spec = importlib.util.spec_from_file_location("enqueue_in_transaction", HERE.parent / "enqueue_in_transaction.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    monkeypatch.setenv("CELERIAC_ARCHIVE_DATABASE_URL", url)
    example.main()
    return capsys.readouterr().out


def sent_to(client: Client, email: str) -> list:
    """The ids of the send_email tasks to `email`: in the archive (searched by their
    arguments, once the archiver has caught up) and the same in Redis."""
    deadline = time.monotonic() + 20
    while True:
        archived = [t["task_id"] for t in client.tasks(task="send_email", args={"to": email})["tasks"]]
        if archived or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    live = client.tasks(source="live", task="send_email", limit=200)["tasks"]
    assert archived == [t["task_id"] for t in live if t["args"].get("to") == email]
    return archived


def test_the_python_example_commits_one_email_and_rolls_back_the_other(stack, monkeypatch, capsys):
    out = run_python_example(stack.postgres.url, monkeypatch, capsys)
    email, task_id = QUEUED.search(out).groups()
    assert "rolled back: no e-mail" in out
    with Client(stack.url) as client:
        record = client.wait(task_id, timeout=30)
        assert record["state"] == "SUCCESS" and record["options"]["tags"] == {"kind": "welcome"}
        # Only the committed one reached Redis and the archive: the rolled-back row never
        # existed.
        assert sent_to(client, email) == [task_id]
    with psycopg.connect(stack.postgres.url) as conn:
        assert conn.execute("SELECT count(*) FROM example_users WHERE email = %s", (email,)).fetchone() == (1,)
        # The relay deleted the row it sent.
        assert conn.execute("SELECT count(*) FROM celeriac_outbox").fetchone() == (0,)


def test_the_rust_example_commits_the_user_and_the_email_together(stack):
    example = bin_dir() / "examples" / "outbox"
    assert example.exists(), f"{example}: build it with cargo build --workspace --all-targets"
    done = subprocess.run([str(example)], env={**stack.env, "CELERIAC_ARCHIVE_DATABASE_URL": stack.postgres.url},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    email, task_id = QUEUED.search(done.stdout).groups()
    with Client(stack.url) as client:
        assert client.wait(task_id, timeout=30)["state"] == "SUCCESS"
        assert sent_to(client, email) == [task_id]
    with psycopg.connect(stack.postgres.url) as conn:
        assert conn.execute("SELECT count(*) FROM example_users WHERE email = %s", (email,)).fetchone() == (1,)
