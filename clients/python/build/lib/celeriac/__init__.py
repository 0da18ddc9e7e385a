"""Celeriac's Python client: enqueue tasks and wait for their results, follow progress over
Server-Sent Events, start workflows, verify pushed tasks' signatures, and run Python task
functions as a worker over the pull protocol."""

from .client import Accepted, Client, Event, TERMINAL_STATES
from .errors import CeleriacError, InvalidSignature, TaskFailed
from .signing import SIGNATURE_HEADER, sign, verify_signature
from .worker import PermanentError, RunContext, RunLost, Worker

__all__ = [
    "Accepted", "CeleriacError", "Client", "Event", "InvalidSignature", "PermanentError", "RunContext",
    "RunLost", "SIGNATURE_HEADER", "TERMINAL_STATES", "TaskFailed", "Worker", "sign", "verify_signature",
]
