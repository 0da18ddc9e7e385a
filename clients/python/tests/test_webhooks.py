"""Completion webhooks: a task enqueued with `callback_url` is POSTed to a real HTTP receiver
(this test's own server on a loopback port) when it ends, signed with the `[webhooks]` secret,
which `verify_signature` checks in a line; a forged body does not verify."""

import json
import queue
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from celeriac import InvalidSignature, verify_signature
from conftest import WEBHOOK_SECRET


@pytest.fixture
def receiver():
    """A server that answers 200 to every POST and queues (signature header, body)."""
    got: "queue.Queue[tuple[str, bytes]]" = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.put((self.headers.get("Celeriac-Signature"), body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/celeriac/done", got
    server.shutdown()


def test_a_finished_task_posts_a_signed_webhook_to_its_callback_url(client, receiver):
    url, got = receiver
    accepted = client.enqueue("add", [40, 2], callback_url=url)
    signature, body = got.get(timeout=30)
    verify_signature(WEBHOOK_SECRET, signature, body)
    event = json.loads(body)
    assert event["task_id"] == accepted.task_id
    assert event["state"] == "SUCCESS"
    assert event["task"]["result"] == 42
    with pytest.raises(InvalidSignature):
        verify_signature(WEBHOOK_SECRET, signature, body.replace(b"42", b"43"))
