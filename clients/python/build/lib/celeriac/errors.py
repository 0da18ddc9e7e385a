"""The errors the client raises: every gateway error answer, with its code and field."""

from __future__ import annotations

from typing import Any, Optional


class CeleriacError(Exception):
    """An error answer of the gateway: `{"error": {"code", "message", "field"?}}`."""

    def __init__(self, status: int, code: str, message: str, field: Optional[str] = None, body: Any = None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.body = body


class TaskFailed(Exception):
    """`Client.result` of a task that ended FAILURE or REVOKED."""

    def __init__(self, record: dict):
        error = record.get("error") or {}
        super().__init__(f"task {record.get('task_id')} is {record.get('state')}: {error.get('message', '')}")
        self.record = record


class InvalidSignature(Exception):
    """A pushed task's `Celeriac-Signature` header is missing, malformed, stale or wrong."""
