"""Fixtures: one real Celeriac system (redis-server, SMTP sink, gateway, worker) for the
session, started by scripts/python/celeriac_stack.py from the built binaries."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts" / "python"))
from celeriac_stack import Stack  # noqa: E402

from celeriac import Client  # noqa: E402

TOKEN = "python-client-admin-token"
WEBHOOK_SECRET = "python-client-webhook-secret"


@pytest.fixture(scope="session")
def stack():
    env = {"CELERIAC__AUTH__ADMIN_TOKENS": TOKEN, "CELERIAC__WEBHOOKS__SECRET": WEBHOOK_SECRET}
    with Stack.start(extra_env=env) as running:
        yield running


@pytest.fixture
def client(stack):
    with Client(stack.url, token=TOKEN) as c:
        yield c
