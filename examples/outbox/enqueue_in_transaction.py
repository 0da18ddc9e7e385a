"""Enqueue inside the application's own transaction (the outbox), from Python with psycopg 3.

The new user and the welcome e-mail commit together or not at all: celeriac_enqueue() returns
the task id at once, and celeriac-archiver's relay moves the committed row to Redis under that
id. A rolled-back transaction enqueues nothing.

    pip install "psycopg[binary]"
    CELERIAC_ARCHIVE_DATABASE_URL=postgres://postgres@127.0.0.1:5432/celeriac python3 enqueue_in_transaction.py
"""

import os
import uuid

import psycopg
from psycopg.types.json import Jsonb


def main() -> None:
    with psycopg.connect(os.environ["CELERIAC_ARCHIVE_DATABASE_URL"]) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS example_users (email text PRIMARY KEY)")
        conn.commit()
        email = f"ada+{uuid.uuid4().hex}@example.com"
        with conn.transaction():
            conn.execute("INSERT INTO example_users (email) VALUES (%s)", (email,))
            (task_id,) = conn.execute(
                "SELECT celeriac_enqueue('send_email', %s, call_options => %s)",
                (Jsonb({"to": email, "subject": "Welcome", "body": "Hello!"}), Jsonb({"tags": {"kind": "welcome"}})),
            ).fetchone()
        print(f"user {email} created; welcome e-mail {task_id} queued with it")

        # A transaction that fails enqueues nothing: its row never becomes visible.
        try:
            with conn.transaction():
                conn.execute("SELECT celeriac_enqueue('send_email', %s)", (Jsonb({"to": email, "subject": "x", "body": "y"}),))
                raise RuntimeError("the signup failed")
        except RuntimeError:
            print("rolled back: no e-mail")


if __name__ == "__main__":
    main()
